package pyobj

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyversions"
)

// TestSplitValues decodes hand-built values objects of split tables, whose
// prefix (3.11, 3.12) or header and trailing order array (3.13) carry the
// insertion order that a dict of them iterates in.
func TestSplitValues(t *testing.T) {
	const at = 0x10000
	ptrs := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = append(b, le(v)...)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	for _, tc := range []struct {
		name    string
		version string
		// mem is placed at at-lead: lead bytes of prefix, then values.
		lead  int
		mem   []byte
		nkeys int
		order []uint8
		n     int
		valid bool
		bad   bool
	}{
		{
			// [-1] prefix size 8, [-2] two values, [-3] then [-4]: the
			// second key was set first.
			name: "3.12 reordered", version: "3.12.1", lead: 8,
			mem:   cat([]byte{0, 0, 0, 0, 0, 1, 2, 8}, ptrs(0xa0, 0xb0)),
			nkeys: 2, order: []uint8{1, 0}, n: 2, valid: true,
		},
		{
			name: "3.11 one of three", version: "3.11.7", lead: 8,
			mem:   cat([]byte{0, 0, 0, 0, 0, 2, 1, 8}, ptrs(0, 0, 0xc0)),
			nkeys: 3, order: []uint8{2}, n: 3, valid: true,
		},
		{
			name: "3.12 empty", version: "3.12.1", lead: 8,
			mem:   cat([]byte{0, 0, 0, 0, 0, 0, 0, 8}, ptrs(0)),
			nkeys: 1, order: []uint8{}, n: 1, valid: true,
		},
		{
			name: "3.12 order past the keys", version: "3.12.1", lead: 8,
			mem:   cat([]byte{0, 0, 0, 0, 0, 5, 1, 8}, ptrs(0)),
			nkeys: 2, bad: true,
		},
		{
			name: "3.12 size over the prefix", version: "3.12.1", lead: 8,
			mem:   cat([]byte{0, 0, 0, 0, 0, 0, 7, 8}, ptrs(0)),
			nkeys: 2, bad: true,
		},
		{
			name: "3.12 prefix smaller than its header", version: "3.12.1", lead: 8,
			mem:   cat([]byte{0, 0, 0, 0, 0, 0, 0, 1}, ptrs(0)),
			nkeys: 2, bad: true,
		},
		{
			// Capacity 3, size 2, embedded, valid; the order array
			// follows the three values.
			name: "3.13 inline", version: "3.13.0",
			mem:   cat([]byte{3, 2, 1, 1, 0, 0, 0, 0}, ptrs(0xa0, 0xb0, 0), []byte{1, 0, 0, 0, 0, 0, 0, 0}),
			nkeys: 2, order: []uint8{1, 0}, n: 2, valid: true,
		},
		{
			name: "3.13 capacity below the keys", version: "3.13.0",
			mem:   cat([]byte{1, 1, 1, 1, 0, 0, 0, 0}, ptrs(0xa0), []byte{0, 0, 0, 0, 0, 0, 0, 0}),
			nkeys: 4, order: []uint8{0}, n: 1, valid: true,
		},
		{
			name: "3.13 moved to a dict", version: "3.13.0",
			mem:   cat([]byte{2, 0, 1, 0, 0, 0, 0, 0}, ptrs(0, 0), []byte{0, 0, 0, 0, 0, 0, 0, 0}),
			nkeys: 2, order: []uint8{}, n: 2, valid: false,
		},
		{
			name: "3.13 size over capacity", version: "3.13.0",
			mem:   cat([]byte{1, 2, 1, 1, 0, 0, 0, 0}, ptrs(0xa0), []byte{0, 0, 0, 0, 0, 0, 0, 0}),
			nkeys: 2, bad: true,
		},
		{
			name: "3.13 order past capacity", version: "3.13.0",
			mem:   cat([]byte{2, 1, 1, 1, 0, 0, 0, 0}, ptrs(0xa0, 0xb0), []byte{2, 0, 0, 0, 0, 0, 0, 0}),
			nkeys: 3, bad: true,
		},
		{
			// Before 3.11 all instances share one order: slot order.
			name: "3.10 slot order", version: "3.10.13",
			mem:   ptrs(0xa0, 0xb0),
			nkeys: 2, order: nil, n: 2, valid: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := pyversions.Parse(tc.version)
			if err != nil {
				t.Fatal(err)
			}
			l, err := pyversions.LayoutFor(v)
			if err != nil {
				t.Fatal(err)
			}
			c := mem.NewCache(&span{addr: at - uint64(tc.lead), data: tc.mem}, false)
			c.Begin()
			d := NewDecoder(c, NewFacts(l, v))
			sv, err := d.readSplitValues(at, tc.nkeys)
			if tc.bad {
				if err == nil {
					t.Fatalf("no error; got order %v", sv.order)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sv.order, tc.order) || (sv.order == nil) != (tc.order == nil) || sv.n != tc.n || sv.valid != tc.valid {
				t.Errorf("order %v n %d valid %v, want %v %d %v", sv.order, sv.n, sv.valid, tc.order, tc.n, tc.valid)
			}
			slots, err := d.slots(sv)
			if err != nil {
				t.Fatal(err)
			}
			if len(slots) != sv.n || sv.n > 0 && slots[0] != mem.LE64(tc.mem[tc.lead+int(l.Dict.ValuesArray):]) {
				t.Errorf("slots %#x", slots)
			}
		})
	}
}

// span is a memory of one region: reads elsewhere fail, as reads of
// unmapped memory do.
type span struct {
	addr uint64
	data []byte
}

func (s *span) ReadAt(p []byte, off int64) (int, error) {
	a := uint64(off)
	if a < s.addr || a+uint64(len(p)) > s.addr+uint64(len(s.data)) {
		return 0, fmt.Errorf("read %#x+%d: not in memory", a, len(p))
	}
	return copy(p, s.data[a-s.addr:]), nil
}

func le(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}
