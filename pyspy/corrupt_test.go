package pyspy

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pyprof/pyprof/pyspy/frames"
)

func openMutable(t *testing.T, file string) (*Reader, *mutable) {
	t.Helper()
	snap := loadSnapshot(t, file)
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
// itself, as torn or corrupt memory can: the walk must report frames.ErrCycle and
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
			if !errors.Is(err, frames.ErrCycle) && !(r.l.IFrame.Code >= 0 && errors.Is(err, frames.ErrTorn)) {
				t.Errorf("frame cycle: err = %v", err)
			}
			var te *ThreadError
			if !errors.As(err, &te) || te.Thread != deep.Addr {
				t.Errorf("error does not name thread %#x: %v", deep.Addr, err)
			}
			clear(mem.patches)
			mem.patches[deep.Addr+uint64(r.l.Thread.Next)] = le(deep.Addr)
			if _, err := r.Sample(SampleOptions{NoNames: true}); !errors.Is(err, frames.ErrCycle) {
				t.Errorf("thread cycle: err = %v", err)
			}
		})
	}
}
