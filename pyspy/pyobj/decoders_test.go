package pyobj

import (
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/pyprof/pyprof/internal/pyrepr"
)

func TestLineTables(t *testing.T) {
	type q struct{ addr, line int }
	for _, tc := range []struct {
		name  string
		table *lineTable
		want  []q
	}{
		{
			// co_lnotab: (+6 bytes, +1 line), (+8, +2), (+4, -1)
			name:  "lnotab",
			table: parseLnotab([]byte{6, 1, 8, 2, 4, 0xff}, 10, true),
			want:  []q{{-1, 10}, {0, 10}, {5, 10}, {6, 11}, {13, 11}, {14, 13}, {18, 12}, {500, 12}},
		},
		{
			// 2.7 reads line deltas unsigned.
			name:  "lnotab 2.7",
			table: parseLnotab([]byte{4, 200}, 1, false),
			want:  []q{{3, 1}, {4, 201}},
		},
		{
			// co_linetable (3.10): (end delta, line delta); -128 is no
			// line, which the code before lends its own.
			name:  "linetable 3.10",
			table: parseLinetable310([]byte{4, 1, 0, 2, 6, 0x80, 2, 0xfe}, 20),
			want:  []q{{-2, 20}, {0, 21}, {3, 21}, {4, 21}, {9, 21}, {10, 21}, {11, 21}, {12, -1}},
		},
		{
			// 3.11 locations: long form (14) with line delta +2 covering
			// 1 unit, one-line form (11: +1) covering 2 units, no
			// location (15) covering 1 unit (the line before lent to
			// it), short form (0) covering 3.
			name: "locations 3.11",
			table: mustLocations(t, []byte{
				0x80 | 14<<3, 4, 0, 0, 0, // 1 unit
				0x80 | 11<<3 | 1, 0, 0,
				0x80 | 15<<3, // 1 unit
				0x80 | 0<<3 | 2, 0,
			}, 100),
			want: []q{{-2, 100}, {0, 102}, {1, 102}, {2, 103}, {5, 103}, {6, 103}, {8, 103}, {13, 103}, {14, -1}},
		},
		{
			// A negative signed varint: 13 (line delta only), -3.
			name:  "locations negative",
			table: mustLocations(t, []byte{0x80 | 13<<3, 7, 0x80 | 13<<3, 6}, 50),
			want:  []q{{0, 47}, {2, 50}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				if got := tc.table.line(w.addr); got != w.line {
					t.Errorf("line(%d) = %d, want %d", w.addr, got, w.line)
				}
			}
		})
	}
}

func mustLocations(t *testing.T, b []byte, first int32) *lineTable {
	lt, err := parseLocations(b, first)
	if err != nil {
		t.Fatal(err)
	}
	return lt
}

// FuzzLineTables decodes arbitrary bytes in each line table format and
// checks that lookups stay within what the table can produce.
func FuzzLineTables(f *testing.F) {
	f.Add([]byte{0x06, 0x01, 0x08, 0x02, 0x04, 0xff}, int32(10), int32(8))
	f.Add([]byte{0x80, 0x00, 0xf0, 0x69, 0x03, 0x01, 0xd8, 0x00}, int32(1), int32(2))
	f.Add([]byte{0x02, 0x80, 0x04, 0x7f}, int32(700), int32(3))
	f.Fuzz(func(t *testing.T, data []byte, first, addrq int32) {
		for _, lt := range []*lineTable{parseLnotab(data, first, true), parseLnotab(data, first, false), parseLinetable310(data, first)} {
			_ = lt.line(int(addrq))
		}
		lt, err := parseLocations(data, first)
		if err == nil {
			_ = lt.line(int(addrq))
			if len(lt.entries) > len(data)+1 {
				t.Fatalf("%d entries from %d bytes", len(lt.entries), len(data))
			}
		}
	})
}

// FuzzDigits15 checks that the 15-bit digits of builds with 2-byte digits
// pair into 30-bit digits of the same value, as math/big reads them, and
// that a digit with its top bit set is refused.
func FuzzDigits15(f *testing.F) {
	f.Add([]byte{0x05, 0x00, 0x00, 0x00, 0x01, 0x00}) // 2**30 + 5
	f.Add([]byte{0xff, 0x7f, 0xff, 0x7f, 0xff})       // 2**30 - 1, and an odd byte
	f.Add([]byte{0x00, 0x80})                         // bit 15 set
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<12 {
			return
		}
		d, err := pairDigits15(0, b)
		want, valid := new(big.Int), true
		for i := len(b)/2 - 1; i >= 0; i-- {
			v := binary.LittleEndian.Uint16(b[2*i:])
			valid = valid && v>>15 == 0
			want.Lsh(want, 15).Or(want, big.NewInt(int64(v)))
		}
		if (err == nil) != valid {
			t.Fatalf("pairDigits15(%x): error %v, digits valid %v", b, err, valid)
		}
		if err != nil {
			return
		}
		if got := pyrepr.Int(d, false); got != want.String() {
			t.Fatalf("pairDigits15(%x) = %s, want %s", b, got, want)
		}
	})
}
