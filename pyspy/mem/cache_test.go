package mem

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// orderRecorder records the order of a batch's regions, and fills each
// with its own address.
type orderRecorder struct{ addrs []uint64 }

func (o *orderRecorder) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

func (o *orderRecorder) ReadBatch(addrs []uint64, bufs [][]byte) error {
	o.addrs = append(o.addrs[:0], addrs...)
	for i, b := range bufs {
		clear(b)
		binary.LittleEndian.PutUint64(b, addrs[i])
	}
	return nil
}

// TestBatchOrder checks the order in which an ordered batch is copied: the
// frame pointers before the data stacks and thread states, and the body
// before them all when no frame lies in it.
func TestBatchOrder(t *testing.T) {
	const word, body, last = 0x10000, 0x20000, 0x30000
	for _, c := range []struct {
		name      string
		bodyFirst bool
		want      []uint64
	}{
		{"frames in the body (up to 3.10)", false, []uint64{word, body, last}},
		{"frames in the data stack (3.11+)", true, []uint64{body, word, last}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &orderRecorder{}
			cache := NewCache(m, false)
			cache.BodyFirst = c.bodyFirst
			cache.BeginOrdered([]uint64{word}, []Region{{body, 64}}, []Region{{last, 64}})
			if !slices.Equal(m.addrs, c.want) {
				t.Errorf("batch order %#x, want %#x", m.addrs, c.want)
			}
			if v, ok := cache.Early(word); !ok || v != word {
				t.Errorf("early word = %#x, %v; want %#x", v, ok, word)
			}
			if !cache.CopiedLast(last) {
				t.Errorf("last region not in the tail")
			}
		})
	}
}

func TestAppendOutside(t *testing.T) {
	tests := []struct {
		name string
		r    Region
		regs []Region
		want []Region
	}{
		{"no overlap", Region{100, 50}, []Region{{200, 10}, {0, 100}}, []Region{{100, 50}}},
		{"inside one", Region{100, 50}, []Region{{90, 100}}, nil},
		{"exactly one", Region{100, 50}, []Region{{100, 50}}, nil},
		{"covers the start", Region{100, 50}, []Region{{80, 40}}, []Region{{120, 30}}},
		{"covers the end", Region{100, 50}, []Region{{140, 40}}, []Region{{100, 40}}},
		{"in the middle", Region{100, 50}, []Region{{110, 10}}, []Region{{100, 10}, {120, 30}}},
		{"two holes", Region{100, 50}, []Region{{110, 10}, {130, 5}}, []Region{{100, 10}, {120, 10}, {135, 15}}},
		{"holes out of order", Region{100, 50}, []Region{{130, 5}, {110, 10}}, []Region{{100, 10}, {120, 10}, {135, 15}}},
		{"a chunk that grew", Region{0x1000, 8896}, []Region{{0x1000, 8656}}, []Region{{0x1000 + 8656, 240}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendOutside(nil, tc.r, tc.regs)
			slices.SortFunc(got, func(a, b Region) int { return cmp.Compare(a.Addr, b.Addr) })
			if !slices.Equal(got, tc.want) {
				t.Fatalf("appendOutside(%v, %v) = %v, want %v", tc.r, tc.regs, got, tc.want)
			}
		})
	}
}

// TestCoalesceNeverSpansAHole checks the rule that makes merging regions
// safe: merged regions only cover pages that a region touches.
func TestCoalesceNeverSpansAHole(t *testing.T) {
	regs := []Region{{0x1000, 8}, {0x1000 + 8 + PageSize - 1, 8}, {0x5000, 16}, {0x5010, 16}, {0x9000, 100}}
	out := coalesce(append([]Region(nil), regs...), mergeGap)
	touched := map[uint64]bool{}
	for _, r := range regs {
		for p := r.Addr &^ (PageSize - 1); p < r.Addr+r.Len; p += PageSize {
			touched[p] = true
		}
	}
	for _, r := range out {
		for p := r.Addr &^ (PageSize - 1); p < r.Addr+r.Len; p += PageSize {
			if !touched[p] {
				t.Errorf("merged region %#x+%d reads page %#x that no region touches", r.Addr, r.Len, p)
			}
		}
	}
	if len(out) != 3 {
		t.Errorf("got %d regions, want 3: %+v", len(out), out)
	}
}

// pages is a memory of whole pages, each filled with one byte, which
// counts its reads and fails batches the way a live process does.
type pages struct {
	fill  map[uint64]byte
	reads int
}

var errUnmapped = errors.New("unmapped")

func (p *pages) ReadAt(b []byte, off int64) (int, error) {
	p.reads++
	for i := range b {
		v, ok := p.fill[(uint64(off)+uint64(i))&^(PageSize-1)]
		if !ok {
			return i, errUnmapped
		}
		b[i] = v
	}
	return len(b), nil
}

type partial []int

func (f partial) Error() string { return fmt.Sprintf("%d regions unreadable", len(f)) }
func (f partial) Failed() []int { return f }

// batchPages adds batched reads, whose failure names the regions as the
// contract on BatchReader says, wrapped as a caller may wrap it.
type batchPages struct{ pages }

func (p *batchPages) ReadBatch(addrs []uint64, bufs [][]byte) error {
	var failed partial
	for i := range addrs {
		if _, err := p.ReadAt(bufs[i], int64(addrs[i])); err != nil {
			failed = append(failed, i)
		}
	}
	if failed != nil {
		return fmt.Errorf("batch: %w", failed)
	}
	return nil
}

// TestPartialBatch: the regions (pages apart, so not merged) a batch could read are kept and the ones
// it names as failed are not, so their reads go to the memory again.
func TestPartialBatch(t *testing.T) {
	m := &batchPages{pages{fill: map[uint64]byte{0x1000: 1, 0x9000: 3}}}
	c := NewCache(m, true)
	c.Begin()
	c.Prefetch(Region{0x1000, 8}, Region{0x5000, 8}, Region{0x9000, 8})
	if b := c.Held(0x1000, 8); b == nil || b[0] != 1 {
		t.Errorf("readable region not kept: %v", b)
	}
	if b := c.Held(0x9000, 8); b == nil || b[0] != 3 {
		t.Errorf("readable region after a failed one not kept: %v", b)
	}
	if b := c.Held(0x5000, 8); b != nil {
		t.Errorf("failed region kept: %v", b)
	}
	if _, err := c.Bytes(0x5000, 8); !errors.Is(err, errUnmapped) {
		t.Errorf("read of the failed region: %v", err)
	}
}

// TestCacheIsAMemory reads through a cache with ReadAt: bytes it holds
// come from it, others from the memory below, and neither changes what a
// reader of the memory sees.
func TestCacheIsAMemory(t *testing.T) {
	m := &pages{fill: map[uint64]byte{0x1000: 1, 0x2000: 2}}
	var c Memory = NewCache(m, true)
	cache := c.(*Cache)
	cache.Begin()
	if _, err := cache.Bytes(0x1000, 16); err != nil {
		t.Fatal(err)
	}
	before := m.reads
	b := make([]byte, 32)
	if n, err := c.ReadAt(b, 0x1010); err != nil || n != 32 || !bytes.Equal(b, bytes.Repeat([]byte{1}, 32)) {
		t.Errorf("held bytes: %d, %v, %v", n, err, b)
	}
	if m.reads != before {
		t.Errorf("held bytes read from the memory again")
	}
	if n, err := c.ReadAt(b, 0x2000); err != nil || n != 32 || b[0] != 2 || m.reads != before+1 {
		t.Errorf("bytes not held: %d, %v, %v, %d reads", n, err, b, m.reads-before)
	}
	if _, err := c.ReadAt(b, 0x5000); !errors.Is(err, errUnmapped) {
		t.Errorf("unmapped: %v", err)
	}
}
