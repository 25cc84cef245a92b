package pyspy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

const (
	pageSize = 4096
	// maxFootprint bounds what a sample prefetches from the previous
	// sample's footprint, so a huge earlier stack cannot make every later
	// sample copy more. A process of many threads needs a large one: 500
	// threads parked in a wait leave about 4 MB of thread states and data
	// stack pages, which one batched read copies for less CPU than the
	// 600 reads of a page each that a walk makes without them.
	maxFootprint = 8 << 20
	// maxRegion bounds a single region prefetched, or a data stack chunk
	// read in one go.
	maxRegion = 512 << 10
	// maxDirect is the largest read served by fetching whole pages; bigger
	// reads (long strings) go straight to memory and are not cached.
	maxDirect = 64 << 10
)

// span is a region of target memory fetched during the current sample.
type span struct {
	addr uint64
	data []byte
	used bool
	// seq numbers the fetch that copied the span: spans of a later fetch
	// were copied later, and one fetch copies its regions in address
	// order.
	seq int
}

func (s *span) end() uint64 { return s.addr + uint64(len(s.data)) }

// sampleCache serves the reads of one sample. Every region is fetched from
// the target at most once per sample, and the regions a sample used are
// fetched again, all in one batched read, at the start of the next sample:
// a stack that did not move between samples then costs a single syscall.
//
// Fetched bytes live in an arena reused from sample to sample, so a steady
// sample allocates nothing here. Slices handed out alias the arena and are
// valid only until the next begin.
type sampleCache struct {
	mem   Memory
	batch BatchReader
	spans []span // sorted by addr, not overlapping
	last  int    // index of the span that served the last hit
	// reads counts fetches from the target in this sample.
	reads int
	// pages widens small reads to whole pages.
	pages bool
	// bodyFirst copies the body of an ordered batch before its first
	// words, when no frame lies in it (3.11+: the frames are in the
	// data stack, read last): the sooner the data stack follows the
	// frame pointers, the less can have moved between them.
	bodyFirst bool

	arena []byte
	used  int
	// early holds the words a sample's batch copied first, and tail the
	// addresses of the regions it copied last.
	early []earlyWord
	tail  []uint64
	// scratch for fetch
	foot  []region
	addrs []uint64
	bufs  [][]byte
}

type region struct{ addr, n uint64 }

func newSampleCache(mem Memory, pages bool) *sampleCache {
	c := &sampleCache{mem: mem, pages: pages}
	c.batch, _ = mem.(BatchReader)
	return c
}

// alloc returns n bytes of arena. When the arena is full a bigger one is
// started; the old one stays alive through the spans that use it.
func (c *sampleCache) alloc(n uint64) []byte {
	if c.used+int(n) > len(c.arena) {
		size := max(2*len(c.arena), int(n), 64<<10)
		c.arena, c.used = make([]byte, size), 0
	}
	b := c.arena[c.used : c.used+int(n) : c.used+int(n)]
	c.used += int(n)
	return b
}

// begin starts a sample: it forgets the last sample's bytes and prefetches
// the regions that sample used.
func (c *sampleCache) begin() { c.beginOrdered(nil, nil, nil) }

// beginOrdered is begin with more regions to read (also) and an order
// imposed on the one batched read,
// which the kernel copies region after region: the words at first are
// copied before everything else, and their values are served by early
// rather than from the spans; the regions in last are copied after
// everything else, and their newer bytes serve every read of them.
//
// A stack walk wants it so: the innermost frame's address read before
// the frames, so that those can only be newer than the pointer (a frame
// that ran on since is still its caller's callee); the frames copied
// outermost first (the data stack of 3.11+ grows upwards, and frame
// objects are listed in last), so that no frame is older than its callers,
// which outlive it; and the thread state's data stack top read after them,
// so that a frame popped meanwhile is seen to be dead.
func (c *sampleCache) beginOrdered(first []uint64, also, last []region) {
	c.reads = 0
	c.foot = c.foot[:0]
	var total uint64
	for i := range c.spans {
		s := &c.spans[i]
		if s.used && total+uint64(len(s.data)) <= maxFootprint {
			// What the batch copies last anyway need not be copied
			// before too (a data stack chunk that grew shrinks again).
			c.foot = appendOutside(c.foot, region{s.addr, uint64(len(s.data))}, last)
			total += uint64(len(s.data))
		}
	}
	for _, r := range also {
		if total+r.n <= maxFootprint {
			c.foot = append(c.foot, r)
			total += r.n
		}
	}
	c.spans = c.spans[:0]
	c.used = 0
	c.early, c.tail = c.early[:0], c.tail[:0]
	for _, a := range first {
		if checkRange(a, 8) == nil {
			c.early = append(c.early, earlyWord{addr: a})
		}
	}
	c.fetchOrdered(c.early, c.foot, last)
}

// appendOutside appends to dst the parts of r that lie outside every
// region of regs.
func appendOutside(dst []region, r region, regs []region) []region {
	for i, x := range regs {
		lo, hi := max(r.addr, x.addr), min(r.addr+r.n, x.addr+x.n)
		if lo >= hi {
			continue
		}
		if r.addr < lo {
			dst = appendOutside(dst, region{r.addr, lo - r.addr}, regs[i+1:])
		}
		if end := r.addr + r.n; hi < end {
			dst = appendOutside(dst, region{hi, end - hi}, regs[i+1:])
		}
		return dst
	}
	return append(dst, r)
}

// earlyWord is a word copied at the start of a batch.
type earlyWord struct {
	addr uint64
	val  uint64
	ok   bool
}

// inTail reports whether the sample's batch copied a region starting at
// addr last.
func (c *sampleCache) inTail(addr uint64) bool { return slices.Contains(c.tail, addr) }

// earlyU64 returns the word at addr as the start of the sample's batch
// copied it.
func (c *sampleCache) earlyU64(addr uint64) (uint64, bool) {
	for i := range c.early {
		if e := &c.early[i]; e.addr == addr {
			return e.val, e.ok
		}
	}
	return 0, false
}

// reset forgets every span without prefetching anything, for a cache that
// serves one batch of wanted regions (verify's second read).
func (c *sampleCache) reset() {
	c.reads = 0
	c.spans = c.spans[:0]
	c.foot = c.foot[:0]
	c.used = 0
}

// want adds a region to the next fetchWanted.
func (c *sampleCache) want(addr, n uint64) {
	if n > 0 && checkRange(addr, n) == nil {
		c.foot = append(c.foot, region{addr, n})
	}
}

// fetchWanted reads every wanted region in one batch.
func (c *sampleCache) fetchWanted() {
	c.fetch(c.foot)
	c.foot = c.foot[:0]
}

// u64 returns the 8 bytes at addr, if a fetch held them.
func (c *sampleCache) u64(addr uint64) (uint64, bool) {
	b := c.find(addr, 8)
	if b == nil {
		return 0, false
	}
	return le64(b), true
}

// fetch reads the regions in one batch, keeping those that succeed.
func (c *sampleCache) fetch(regs []region) { c.fetchOrdered(nil, regs, nil) }

// fetchOrdered reads, in one batch, the words in early, the regions in
// body (sorted and merged) and then those in last, in that order, keeping
// what succeeds.
func (c *sampleCache) fetchOrdered(early []earlyWord, body, last []region) {
	gap := uint64(0)
	if c.pages {
		gap = mergeGap
	}
	body = coalesce(body, gap)
	if len(body)+len(last)+len(early) == 0 {
		return
	}
	c.addrs, c.bufs = c.addrs[:0], c.bufs[:0]
	addEarly := func() {
		for i := range early {
			c.addrs = append(c.addrs, early[i].addr)
			c.bufs = append(c.bufs, c.alloc(8))
		}
	}
	// Where the early words are in the batch.
	first := 0
	if c.bodyFirst {
		first = len(body)
	} else {
		addEarly()
	}
	for _, r := range body {
		c.addrs = append(c.addrs, r.addr)
		c.bufs = append(c.bufs, c.alloc(r.n))
	}
	if c.bodyFirst {
		addEarly()
	}
	tail := len(c.addrs)
	for _, r := range last {
		if r.n > 0 && r.n <= maxDirect && checkRange(r.addr, r.n) == nil {
			c.addrs = append(c.addrs, r.addr)
			c.bufs = append(c.bufs, c.alloc(r.n))
		}
	}
	c.reads++
	var failed []int
	if c.batch != nil {
		if err := c.batch.ReadBatch(c.addrs, c.bufs); err != nil {
			be, ok := batchFailure(err)
			if !ok {
				return
			}
			failed = be.Failed()
		}
	} else {
		for i := range c.addrs {
			if _, err := c.mem.ReadAt(c.bufs[i], int64(c.addrs[i])); err != nil {
				failed = append(failed, i)
			}
			if i > 0 {
				c.reads++
			}
		}
	}
	for i := range c.addrs {
		if slices.Contains(failed, i) {
			continue
		}
		switch {
		case i >= first && i < first+len(early):
			early[i-first].val, early[i-first].ok = le64(c.bufs[i]), true
		case i >= tail:
			c.overwrite(c.addrs[i], c.bufs[i])
			c.tail = append(c.tail, c.addrs[i])
		default:
			c.insert(span{addr: c.addrs[i], data: c.bufs[i], seq: c.reads})
		}
	}
}

// failer is a batch read error that names the regions that failed.
type failer interface{ Failed() []int }

// batchFailure finds the failer in err's chain. Unlike errors.As it takes
// no pointer to a local, which would escape and cost an allocation on
// every sample whose batch reaches past the end of a mapping.
func batchFailure(err error) (failer, bool) {
	for ; err != nil; err = errors.Unwrap(err) {
		if f, ok := err.(failer); ok {
			return f, true
		}
	}
	return nil, false
}

// overwrite puts newer bytes over a span that holds them, or adds them as
// a span of their own. Unlike insert it keeps the rest of an older span
// that covers them.
func (c *sampleCache) overwrite(addr uint64, b []byte) {
	n := uint64(len(b))
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > addr })
	if i < len(c.spans) && c.spans[i].addr <= addr && addr+n <= c.spans[i].end() {
		copy(c.spans[i].data[addr-c.spans[i].addr:], b)
		return
	}
	c.insert(span{addr: addr, data: b, seq: c.reads})
}

// mergeGap is the largest hole between two regions that a fetch reads
// through to save an iovec: each one costs the kernel a page walk, worth
// more than copying a few hundred bytes. A hole shorter than a page cannot
// contain an unmapped page, so reading through it is always safe.
const mergeGap = pageSize - 1

// coalesce sorts regions and merges, in place, those less than gap bytes
// apart. Without readahead (snapshots) the gap is zero, since bytes in a
// hole were never recorded.
func coalesce(regs []region, gap uint64) []region {
	if len(regs) < 2 {
		return regs
	}
	slices.SortFunc(regs, func(a, b region) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	out := regs[:1]
	for _, r := range regs[1:] {
		last := &out[len(out)-1]
		if r.addr <= last.addr+last.n+gap {
			if e := r.addr + r.n; e > last.addr+last.n {
				last.n = e - last.addr
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// insert adds a span, dropping older spans it overlaps: the newer bytes are
// at least as fresh.
func (c *sampleCache) insert(s span) {
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > s.addr })
	j := i
	for j < len(c.spans) && c.spans[j].addr < s.end() {
		j++
	}
	if j == i {
		c.spans = slices.Insert(c.spans, i, s)
		return
	}
	c.spans[i] = s
	c.spans = slices.Delete(c.spans, i+1, j)
}

// copiedAfter reports whether the bytes at a were copied after those at b,
// and whether the cache can tell: both must lie in its spans.
func (c *sampleCache) copiedAfter(a, b uint64) (after, known bool) {
	sa, sb := c.spanOf(a), c.spanOf(b)
	if sa == nil || sb == nil {
		return false, false
	}
	if sa.seq != sb.seq {
		return sa.seq > sb.seq, true
	}
	return a > b, true
}

func (c *sampleCache) spanOf(addr uint64) *span {
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > addr })
	if i < len(c.spans) && c.spans[i].addr <= addr {
		return &c.spans[i]
	}
	return nil
}

// find returns the bytes [addr, addr+n) if one span holds them.
func (c *sampleCache) find(addr, n uint64) []byte {
	if checkRange(addr, n) != nil {
		return nil
	}
	// Most reads hit the span of the previous read: a stack walk moves
	// through one data stack chunk or one page of frames.
	if c.last < len(c.spans) {
		s := &c.spans[c.last]
		if s.addr <= addr && addr+n <= s.end() {
			s.used = true
			off := addr - s.addr
			return s.data[off : off+n : off+n]
		}
	}
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > addr })
	c.last = i
	if i < len(c.spans) {
		s := &c.spans[i]
		if s.addr <= addr && addr+n <= s.end() {
			s.used = true
			off := addr - s.addr
			return s.data[off : off+n : off+n]
		}
	}
	return nil
}

// bytes returns n bytes at addr. Small reads fetch the whole pages around
// them, since the structs a walk reads next are often neighbours. The
// result aliases the cache and must not be modified or kept past the
// sample.
func (c *sampleCache) bytes(addr, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if err := checkRange(addr, n); err != nil {
		return nil, err
	}
	if b := c.find(addr, n); b != nil {
		return b, nil
	}
	if n > maxDirect || !c.pages {
		return c.direct(addr, n)
	}
	start := addr &^ (pageSize - 1)
	end := (addr + n + pageSize - 1) &^ (pageSize - 1)
	c.fetch([]region{{start, end - start}})
	if b := c.find(addr, n); b != nil {
		return b, nil
	}
	// The whole pages failed, perhaps because a neighbour page is
	// unmapped; try the exact range so the error names it.
	return c.direct(addr, n)
}

// maxUserAddr bounds user-space addresses (2^56 with 5-level paging). A
// range beyond it can only come from a corrupt pointer, and rejecting it
// early keeps every later address computation, such as rounding to pages,
// from overflowing.
const maxUserAddr = 1 << 56

// checkRange rejects a range outside user space.
func checkRange(addr, n uint64) error {
	if addr >= maxUserAddr || n >= maxUserAddr || addr+n > maxUserAddr {
		return fmt.Errorf("read %#x+%d: not a user-space address", addr, n)
	}
	return nil
}

// direct reads exactly [addr, addr+n), caching it unless it is large.
func (c *sampleCache) direct(addr, n uint64) ([]byte, error) {
	var b []byte
	if n <= maxDirect {
		b = c.alloc(n)
	} else {
		b = make([]byte, n)
	}
	c.reads++
	if _, err := c.mem.ReadAt(b, int64(addr)); err != nil {
		return nil, fmt.Errorf("read %#x+%d: %w", addr, n, err)
	}
	if n <= maxDirect {
		c.insert(span{addr: addr, data: b, used: true, seq: c.reads})
	}
	return b, nil
}

// exact reads [addr, addr+n) without widening to pages, for scattered
// small objects whose neighbours are of no use (code object headers).
func (c *sampleCache) exact(addr, n uint64) ([]byte, error) {
	if err := checkRange(addr, n); err != nil {
		return nil, err
	}
	if b := c.find(addr, n); b != nil {
		return b, nil
	}
	return c.direct(addr, n)
}

// prefetch fetches ranges that are about to be walked, in one read, if
// they are not already held. Failures are left for the reads that follow
// to report.
func (c *sampleCache) prefetch(regs ...region) {
	if !c.pages {
		return
	}
	var miss [8]region
	m := miss[:0]
	for _, r := range regs {
		if r.n == 0 || r.n > maxRegion || checkRange(r.addr, r.n) != nil {
			continue
		}
		if c.find(r.addr, r.n) == nil {
			m = append(m, r)
		}
	}
	c.fetch(m)
}
