package pyspy

import (
	"errors"
	"fmt"
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
type sampleCache struct {
	mem   Memory
	batch BatchReader
	spans []*span // sorted by addr, not overlapping
	// reads counts fetches from the target in this sample.
	reads int
	// pages widens small reads to whole pages.
	pages bool
}

type region struct{ addr, n uint64 }

func newSampleCache(mem Memory, pages bool) *sampleCache {
	c := &sampleCache{mem: mem, pages: pages}
	c.batch, _ = mem.(BatchReader)
	return c
}

// begin starts a sample: it forgets the last sample's bytes and prefetches
// the regions that sample used.
func (c *sampleCache) begin() {
	c.reads = 0
	var foot []region
	var total uint64
	for _, s := range c.spans {
		if s.used && total+uint64(len(s.data)) <= maxFootprint {
			foot = append(foot, region{s.addr, uint64(len(s.data))})
			total += uint64(len(s.data))
		}
	}
	c.spans = c.spans[:0]
	c.fetch(foot)
}

// fetch reads the regions in one batch, keeping those that succeed.
func (c *sampleCache) fetch(regs []region) {
	regs = coalesce(regs)
	if len(regs) == 0 {
		return
	}
	addrs := make([]uint64, len(regs))
	bufs := make([][]byte, len(regs))
	for i, r := range regs {
		addrs[i], bufs[i] = r.addr, make([]byte, r.n)
	}
	c.reads++
	if c.batch != nil {
		err := c.batch.ReadBatch(addrs, bufs)
		if err == nil {
			for i := range regs {
				c.insert(&span{addr: addrs[i], data: bufs[i]})
			}
			return
		}
		var be interface{ Failed() []int }
		if !errors.As(err, &be) {
			return
		}
		bad := map[int]bool{}
		for _, i := range be.Failed() {
			bad[i] = true
		}
		for i := range regs {
			if !bad[i] {
				c.insert(&span{addr: addrs[i], data: bufs[i]})
			}
		}
		return
	}
	for i := range regs {
		if _, err := c.mem.ReadAt(bufs[i], int64(addrs[i])); err == nil {
			c.insert(&span{addr: addrs[i], data: bufs[i]})
		}
		if i > 0 {
			c.reads++
		}
	}
}

func coalesce(regs []region) []region {
	if len(regs) < 2 {
		return regs
	}
	sort.Slice(regs, func(i, j int) bool { return regs[i].addr < regs[j].addr })
	out := regs[:1]
	for _, r := range regs[1:] {
		last := &out[len(out)-1]
		if r.addr <= last.addr+last.n {
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
func (c *sampleCache) insert(s *span) {
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > s.addr })
	j := i
	for j < len(c.spans) && c.spans[j].addr < s.end() {
		j++
	}
	c.spans = append(c.spans[:i], append([]*span{s}, c.spans[j:]...)...)
}

// find returns the bytes [addr, addr+n) if one span holds them.
func (c *sampleCache) find(addr, n uint64) []byte {
	i := sort.Search(len(c.spans), func(i int) bool { return c.spans[i].end() > addr })
	if i < len(c.spans) {
		s := c.spans[i]
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
	if addr+n < addr {
		return nil, fmt.Errorf("read %#x+%d: address overflow", addr, n)
	}
	if b := c.find(addr, n); b != nil {
		return b, nil
	}
	if n > maxDirect || !c.pages {
		b := make([]byte, n)
		c.reads++
		if _, err := c.mem.ReadAt(b, int64(addr)); err != nil {
			return nil, fmt.Errorf("read %#x+%d: %w", addr, n, err)
		}
		if n <= maxDirect {
			c.insert(&span{addr: addr, data: b, used: true})
		}
		return b, nil
	}
	start := addr &^ (pageSize - 1)
	end := (addr + n + pageSize - 1) &^ (pageSize - 1)
	c.fetch([]region{{start, end - start}})
	if b := c.find(addr, n); b != nil {
		return b, nil
	}
	// The whole pages failed, perhaps because a neighbour page is
	// unmapped; try the exact range so the error names it.
	b := make([]byte, n)
	c.reads++
	if _, err := c.mem.ReadAt(b, int64(addr)); err != nil {
		return nil, fmt.Errorf("read %#x+%d: %w", addr, n, err)
	}
	c.insert(&span{addr: addr, data: b, used: true})
	return b, nil
}

// exact reads [addr, addr+n) without widening to pages, for scattered
// small objects whose neighbours are of no use (code object headers).
func (c *sampleCache) exact(addr, n uint64) ([]byte, error) {
	if b := c.find(addr, n); b != nil {
		return b, nil
	}
	b := make([]byte, n)
	c.reads++
	if _, err := c.mem.ReadAt(b, int64(addr)); err != nil {
		return nil, fmt.Errorf("read %#x+%d: %w", addr, n, err)
	}
	c.insert(&span{addr: addr, data: b, used: true})
	return b, nil
}

// prefetch fetches a range that is about to be walked, in one read, if it
// is not already held. Failures are left for the reads that follow to
// report.
func (c *sampleCache) prefetch(regs ...region) {
	if !c.pages {
		return
	}
	var miss []region
	for _, r := range regs {
		if r.n == 0 || r.n > maxFootprint {
			continue
		}
		if c.find(r.addr, r.n) == nil {
			start := r.addr &^ (pageSize - 1)
			end := (r.addr + r.n + pageSize - 1) &^ (pageSize - 1)
			miss = append(miss, region{start, end - start})
		}
	}
	c.fetch(miss)
}
