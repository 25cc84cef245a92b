package mem

import (
	"fmt"
	"slices"
	"sort"

	"github.com/pyprof/pyprof/internal/errs"
)

const (
	// PageSize is the target's page size: the unit of readahead, and of
	// what a hole between two regions must be smaller than to be read
	// through.
	PageSize = 4096
	// maxFootprint bounds what a sample prefetches from the previous
	// sample's footprint, so a huge earlier stack cannot make every later
	// sample copy more. A process of many threads needs a large one: 500
	// threads parked in a wait leave about 4 MB of thread states and data
	// stack pages, which one batched read copies for less CPU than the
	// 600 reads of a page each that a walk makes without them.
	maxFootprint = 8 << 20
	// MaxRegion bounds a single region prefetched, or a data stack chunk
	// read in one go.
	MaxRegion = 512 << 10
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

// Cache serves the reads of one sample. Every region is fetched from the
// target at most once per sample, and the regions a sample used are
// fetched again, all in one batched read, at the start of the next sample:
// a stack that did not move between samples then costs a single syscall.
//
// A Cache is a Memory over the Memory it wraps (delve's memCache), so
// whatever takes a Memory can read through one; the decoders use Bytes,
// which hands out the cached bytes without copying them.
//
// Fetched bytes live in an arena reused from sample to sample, so a steady
// sample allocates nothing here. Slices handed out alias the arena and are
// valid only until the next Begin.
type Cache struct {
	mem   Memory
	batch BatchReader
	spans []span // sorted by addr, not overlapping
	last  int    // index of the span that served the last hit
	// reads counts fetches from the target in this sample.
	reads int
	// generation counts the samples begun.
	generation int
	// pages widens small reads to whole pages.
	pages bool
	// BodyFirst copies the body of an ordered batch before its first
	// words, for a reader whose frames are not in the body (3.11+: they
	// are in the data stack, read last): the sooner the data stack
	// follows the frame pointers, the less can have moved between them.
	BodyFirst bool

	arena []byte
	used  int
	// early holds the words a sample's batch copied first, and tail the
	// addresses of the regions it copied last.
	early []earlyWord
	tail  []uint64
	// scratch for fetch
	foot  []Region
	addrs []uint64
	bufs  [][]byte
}

// NewCache returns a cache over m. With readahead, small reads fetch the
// whole pages around them, since the structs a walk reads next are often
// neighbours; without it (a snapshot, which holds only the bytes once
// read) exactly what is asked for is fetched.
func NewCache(m Memory, readahead bool) *Cache {
	c := &Cache{mem: m, pages: readahead}
	c.batch, _ = m.(BatchReader)
	return c
}

var _ Memory = (*Cache)(nil)

// alloc returns n bytes of arena. When the arena is full a bigger one is
// started; the old one stays alive through the spans that use it.
func (c *Cache) alloc(n uint64) []byte {
	if c.used+int(n) > len(c.arena) {
		size := max(2*len(c.arena), int(n), 64<<10)
		c.arena, c.used = make([]byte, size), 0
	}
	b := c.arena[c.used : c.used+int(n) : c.used+int(n)]
	c.used += int(n)
	return b
}

// Begin starts a sample: it forgets the last sample's bytes and prefetches
// the regions that sample used.
func (c *Cache) Begin() { c.BeginOrdered(nil, nil, nil) }

// Generation counts the samples begun: bytes read in an earlier
// generation may have changed since.
func (c *Cache) Generation() int { return c.generation }

// Reads counts the fetches from the target since the sample began.
func (c *Cache) Reads() int { return c.reads }

// BeginOrdered is Begin with more regions to read (also) and an order
// imposed on the one batched read, which the kernel copies region after
// region: the words at first are copied before everything else, and
// their values are served by Early rather than from the cache; the
// regions in last are copied after everything else, and their newer
// bytes serve every read of them (CopiedLast tells which).
//
// A stack walk wants it so: the innermost frame's address read before
// the frames, so that those can only be newer than the pointer (a frame
// that ran on since is still its caller's callee); the frames copied
// outermost first (the data stack of 3.11+ grows upwards, and frame
// objects are listed in last), so that no frame is older than its callers,
// which outlive it; and the thread state's data stack top read after them,
// so that a frame popped meanwhile is seen to be dead.
func (c *Cache) BeginOrdered(first []uint64, also, last []Region) {
	c.reads = 0
	c.generation++
	c.foot = c.foot[:0]
	var total uint64
	for i := range c.spans {
		s := &c.spans[i]
		if s.used && total+uint64(len(s.data)) <= maxFootprint {
			// What the batch copies last anyway need not be copied
			// before too (a data stack chunk that grew shrinks again).
			c.foot = appendOutside(c.foot, Region{s.addr, uint64(len(s.data))}, last)
			total += uint64(len(s.data))
		}
	}
	for _, r := range also {
		if total+r.Len <= maxFootprint {
			c.foot = append(c.foot, r)
			total += r.Len
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
func appendOutside(dst []Region, r Region, regs []Region) []Region {
	for i, x := range regs {
		lo, hi := max(r.Addr, x.Addr), min(r.Addr+r.Len, x.Addr+x.Len)
		if lo >= hi {
			continue
		}
		if r.Addr < lo {
			dst = appendOutside(dst, Region{r.Addr, lo - r.Addr}, regs[i+1:])
		}
		if end := r.Addr + r.Len; hi < end {
			dst = appendOutside(dst, Region{hi, end - hi}, regs[i+1:])
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

// CopiedLast reports whether the sample's batch copied a region starting
// at addr last.
func (c *Cache) CopiedLast(addr uint64) bool { return slices.Contains(c.tail, addr) }

// Early returns the word at addr as the start of the sample's batch
// copied it, if it was one of the first words.
func (c *Cache) Early(addr uint64) (uint64, bool) {
	for i := range c.early {
		if e := &c.early[i]; e.addr == addr {
			return e.val, e.ok
		}
	}
	return 0, false
}

// Reset forgets every span without prefetching anything, for a cache that
// serves one batch of wanted regions (a second read of what a sample
// walked).
func (c *Cache) Reset() {
	c.reads = 0
	c.generation++
	c.spans = c.spans[:0]
	c.foot = c.foot[:0]
	c.used = 0
}

// Want adds a region to the next FetchWanted.
func (c *Cache) Want(addr, n uint64) {
	if n > 0 && checkRange(addr, n) == nil {
		c.foot = append(c.foot, Region{addr, n})
	}
}

// Wanting reports whether regions wait for FetchWanted.
func (c *Cache) Wanting() bool { return len(c.foot) > 0 }

// FetchWanted reads every wanted region in one batch.
func (c *Cache) FetchWanted() {
	c.fetch(c.foot)
	c.foot = c.foot[:0]
}

// U64 returns the 8 bytes at addr, if a fetch held them.
func (c *Cache) U64(addr uint64) (uint64, bool) {
	b := c.Held(addr, 8)
	if b == nil {
		return 0, false
	}
	return LE64(b), true
}

// fetch reads the regions in one batch, keeping those that succeed.
func (c *Cache) fetch(regs []Region) { c.fetchOrdered(nil, regs, nil) }

// fetchOrdered reads, in one batch, the words in early, the regions in
// body (sorted and merged) and then those in last, in that order (or the
// body before the early words, BodyFirst), keeping what succeeds.
func (c *Cache) fetchOrdered(early []earlyWord, body, last []Region) {
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
	if c.BodyFirst {
		first = len(body)
	} else {
		addEarly()
	}
	for _, r := range body {
		c.addrs = append(c.addrs, r.Addr)
		c.bufs = append(c.bufs, c.alloc(r.Len))
	}
	if c.BodyFirst {
		addEarly()
	}
	tail := len(c.addrs)
	for _, r := range last {
		if r.Len > 0 && r.Len <= maxDirect && checkRange(r.Addr, r.Len) == nil {
			c.addrs = append(c.addrs, r.Addr)
			c.bufs = append(c.bufs, c.alloc(r.Len))
		}
	}
	c.reads++
	var failed []int
	if c.batch != nil {
		if err := c.batch.ReadBatch(c.addrs, c.bufs); err != nil {
			pe, ok := errs.As[PartialError](err)
			if !ok {
				return
			}
			failed = pe.Failed()
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
			early[i-first].val, early[i-first].ok = LE64(c.bufs[i]), true
		case i >= tail:
			c.overwrite(c.addrs[i], c.bufs[i])
			c.tail = append(c.tail, c.addrs[i])
		default:
			c.insert(span{addr: c.addrs[i], data: c.bufs[i], seq: c.reads})
		}
	}
}

// overwrite puts newer bytes over a span that holds them, or adds them as
// a span of their own. Unlike insert it keeps the rest of an older span
// that covers them.
func (c *Cache) overwrite(addr uint64, b []byte) {
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
const mergeGap = PageSize - 1

// coalesce sorts regions and merges, in place, those less than gap bytes
// apart. Without readahead (snapshots) the gap is zero, since bytes in a
// hole were never recorded.
func coalesce(regs []Region, gap uint64) []Region {
	if len(regs) < 2 {
		return regs
	}
	slices.SortFunc(regs, func(a, b Region) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	out := regs[:1]
	for _, r := range regs[1:] {
		last := &out[len(out)-1]
		if r.Addr <= last.Addr+last.Len+gap {
			if e := r.Addr + r.Len; e > last.Addr+last.Len {
				last.Len = e - last.Addr
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// insert adds a span, dropping older spans it overlaps: the newer bytes are
// at least as fresh.
func (c *Cache) insert(s span) {
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

// CopiedAfter reports whether the bytes at a were copied after those at b,
// and whether the cache can tell: both must lie in its spans.
func (c *Cache) CopiedAfter(a, b uint64) (after, known bool) {
	sa, sb := c.spanOf(a), c.spanOf(b)
	if sa == nil || sb == nil {
		return false, false
	}
	if sa.seq != sb.seq {
		return sa.seq > sb.seq, true
	}
	return a > b, true
}

func (c *Cache) spanOf(addr uint64) *span {
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > addr })
	if i < len(c.spans) && c.spans[i].addr <= addr {
		return &c.spans[i]
	}
	return nil
}

// Held returns the bytes [addr, addr+n) if the cache holds them, without
// reading the target, or nil. The result aliases the cache.
func (c *Cache) Held(addr, n uint64) []byte {
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

// Bytes returns n bytes at addr. Small reads fetch the whole pages around
// them, with readahead. The result aliases the cache and must not be
// modified or kept past the sample.
func (c *Cache) Bytes(addr, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if err := checkRange(addr, n); err != nil {
		return nil, err
	}
	if b := c.Held(addr, n); b != nil {
		return b, nil
	}
	if n > maxDirect || !c.pages {
		return c.direct(addr, n)
	}
	start := addr &^ (PageSize - 1)
	end := (addr + n + PageSize - 1) &^ (PageSize - 1)
	c.fetch([]Region{{start, end - start}})
	if b := c.Held(addr, n); b != nil {
		return b, nil
	}
	// The whole pages failed, perhaps because a neighbour page is
	// unmapped; try the exact range so the error names it.
	return c.direct(addr, n)
}

// ReadAt makes the cache a Memory: bytes the sample holds are copied from
// the cache, others are read from the memory below and not kept, as a
// read of this size is of no use to the next ones.
func (c *Cache) ReadAt(p []byte, off int64) (int, error) {
	if b := c.Held(uint64(off), uint64(len(p))); b != nil {
		return copy(p, b), nil
	}
	c.reads++
	return c.mem.ReadAt(p, off)
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
func (c *Cache) direct(addr, n uint64) ([]byte, error) {
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

// Exact reads [addr, addr+n) without widening to pages, for scattered
// small objects whose neighbours are of no use (code object headers, a
// lone pointer).
func (c *Cache) Exact(addr, n uint64) ([]byte, error) {
	if err := checkRange(addr, n); err != nil {
		return nil, err
	}
	if b := c.Held(addr, n); b != nil {
		return b, nil
	}
	return c.direct(addr, n)
}

// Prefetch fetches regions that are about to be read, in one read, if
// they are not already held. Failures are left for the reads that follow
// to report.
func (c *Cache) Prefetch(regs ...Region) {
	if !c.pages {
		return
	}
	var miss [8]Region
	m := miss[:0]
	for _, r := range regs {
		if r.Len == 0 || r.Len > MaxRegion || checkRange(r.Addr, r.Len) != nil {
			continue
		}
		if c.Held(r.Addr, r.Len) == nil {
			m = append(m, r)
		}
	}
	c.fetch(m)
}
