package pyspy

import (
	"cmp"
	"encoding/binary"
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
			cache := newSampleCache(m, false)
			cache.bodyFirst = c.bodyFirst
			cache.beginOrdered([]uint64{word}, []region{{body, 64}}, []region{{last, 64}})
			if !slices.Equal(m.addrs, c.want) {
				t.Errorf("batch order %#x, want %#x", m.addrs, c.want)
			}
			if v, ok := cache.earlyU64(word); !ok || v != word {
				t.Errorf("early word = %#x, %v; want %#x", v, ok, word)
			}
			if !cache.inTail(last) {
				t.Errorf("last region not in the tail")
			}
		})
	}
}

func TestAppendOutside(t *testing.T) {
	tests := []struct {
		name string
		r    region
		regs []region
		want []region
	}{
		{"no overlap", region{100, 50}, []region{{200, 10}, {0, 100}}, []region{{100, 50}}},
		{"inside one", region{100, 50}, []region{{90, 100}}, nil},
		{"exactly one", region{100, 50}, []region{{100, 50}}, nil},
		{"covers the start", region{100, 50}, []region{{80, 40}}, []region{{120, 30}}},
		{"covers the end", region{100, 50}, []region{{140, 40}}, []region{{100, 40}}},
		{"in the middle", region{100, 50}, []region{{110, 10}}, []region{{100, 10}, {120, 30}}},
		{"two holes", region{100, 50}, []region{{110, 10}, {130, 5}}, []region{{100, 10}, {120, 10}, {135, 15}}},
		{"holes out of order", region{100, 50}, []region{{130, 5}, {110, 10}}, []region{{100, 10}, {120, 10}, {135, 15}}},
		{"a chunk that grew", region{0x1000, 8896}, []region{{0x1000, 8656}}, []region{{0x1000 + 8656, 240}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendOutside(nil, tc.r, tc.regs)
			slices.SortFunc(got, func(a, b region) int { return cmp.Compare(a.addr, b.addr) })
			if !slices.Equal(got, tc.want) {
				t.Fatalf("appendOutside(%v, %v) = %v, want %v", tc.r, tc.regs, got, tc.want)
			}
		})
	}
}
