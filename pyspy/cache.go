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
	// sample copy megabytes.
	maxFootprint = 512 << 10
	// maxDirect is the largest read served by fetching whole pages; bigger
	// reads (long strings) go straight to memory and are not cached.
	maxDirect = 64 << 10
)

// span is a region of target memory fetched during the current sample.
type span struct {
	addr uint64
	data []byte
	used bool
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

	arena []byte
	used  int
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
func (c *sampleCache) begin() {
	c.reads = 0
	c.foot = c.foot[:0]
	var total uint64
	for i := range c.spans {
		s := &c.spans[i]
		if s.used && total+uint64(len(s.data)) <= maxFootprint {
			c.foot = append(c.foot, region{s.addr, uint64(len(s.data))})
			total += uint64(len(s.data))
		}
	}
	c.spans = c.spans[:0]
	c.used = 0
	c.fetch(c.foot)
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
func (c *sampleCache) fetch(regs []region) {
	gap := uint64(0)
	if c.pages {
		gap = mergeGap
	}
	regs = coalesce(regs, gap)
	if len(regs) == 0 {
		return
	}
	c.addrs, c.bufs = c.addrs[:0], c.bufs[:0]
	for _, r := range regs {
		c.addrs = append(c.addrs, r.addr)
		c.bufs = append(c.bufs, c.alloc(r.n))
	}
	c.reads++
	if c.batch != nil {
		err := c.batch.ReadBatch(c.addrs, c.bufs)
		if err == nil {
			for i := range regs {
				c.insert(span{addr: c.addrs[i], data: c.bufs[i]})
			}
			return
		}
		var be interface{ Failed() []int }
		if !errors.As(err, &be) {
			return
		}
		failed := be.Failed()
		for i := range regs {
			if !slices.Contains(failed, i) {
				c.insert(span{addr: c.addrs[i], data: c.bufs[i]})
			}
		}
		return
	}
	for i := range regs {
		if _, err := c.mem.ReadAt(c.bufs[i], int64(c.addrs[i])); err == nil {
			c.insert(span{addr: c.addrs[i], data: c.bufs[i]})
		}
		if i > 0 {
			c.reads++
		}
	}
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
		c.insert(span{addr: addr, data: b, used: true})
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
		if r.n == 0 || r.n > maxFootprint || checkRange(r.addr, r.n) != nil {
			continue
		}
		if c.find(r.addr, r.n) == nil {
			m = append(m, r)
		}
	}
	c.fetch(m)
}
