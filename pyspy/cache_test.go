package pyspy

import (
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
