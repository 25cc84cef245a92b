package pyspy

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

func openMutable(t *testing.T, file string) (*Reader, *mutable) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	mem := &mutable{Snapshot: snap, patches: map[uint64][]byte{}}
	r0, err := snap.Open()
	if err != nil {
		t.Fatal(err)
	}
	cfg := snap.Config
	cfg.Layout, cfg.Version, cfg.NoReadahead = r0.l, snap.Version, true
	r, err := New(mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, mem
}

func le(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}

// TestCycles links a frame back to an outer frame, and a thread state to
// itself, as torn or corrupt memory can: the walk must report ErrCycle and
// stop, not loop.
func TestCycles(t *testing.T) {
	for _, file := range []string{"testdata/snapshots/pyenv-2.7.18.snap", "testdata/snapshots/pyenv-3.9.18.snap", "testdata/snapshots/pyenv-3.11.7.snap"} {
		t.Run(file, func(t *testing.T) {
			r, mem := openMutable(t, file)
			ts, err := r.Sample(SampleOptions{NoNames: true})
			if err != nil {
				t.Fatal(err)
			}
			var deep Thread
			for _, th := range ts {
				if len(th.Frames) > len(deep.Frames) {
					deep = th
				}
			}
			inner, outer := deep.Frames[3], deep.Frames[len(deep.Frames)-2]
			back := r.l.Frame.Back
			if r.l.IFrame.Code >= 0 {
				back = r.l.IFrame.Previous
			}
			mem.patches[outer.Addr+uint64(back)] = le(inner.Addr)
			_, err = r.Sample(SampleOptions{NoNames: true})
			// From 3.11 the data stack's order catches the link that
			// runs upwards before the cycle closes.
			if !errors.Is(err, ErrCycle) && !(r.l.IFrame.Code >= 0 && errors.Is(err, ErrTorn)) {
				t.Errorf("frame cycle: err = %v", err)
			}
			var te *ThreadError
			if !errors.As(err, &te) || te.Thread != deep.Addr {
				t.Errorf("error does not name thread %#x: %v", deep.Addr, err)
			}
			clear(mem.patches)
			mem.patches[deep.Addr+uint64(r.l.Thread.Next)] = le(deep.Addr)
			if _, err := r.Sample(SampleOptions{NoNames: true}); !errors.Is(err, ErrCycle) {
				t.Errorf("thread cycle: err = %v", err)
			}
		})
	}
}

func TestBrent(t *testing.T) {
	for _, tc := range []struct {
		seq  []uint64
		loop bool
	}{
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, false},
		{[]uint64{1, 1}, true},
		{[]uint64{1, 2, 3, 2, 3, 2, 3, 2, 3}, true},
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7}, true},
	} {
		var b brent
		found := false
		for _, a := range tc.seq {
			if b.step(a) {
				found = true
				break
			}
		}
		if found != tc.loop {
			t.Errorf("%v: cycle found = %v", tc.seq, found)
		}
	}
}

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
