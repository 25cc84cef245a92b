package pyspy

import (
	"testing"
)

// mutable is a snapshot whose bytes a test can change between samples.
type mutable struct {
	*Snapshot
	patches map[uint64][]byte
}

func (m *mutable) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.Snapshot.ReadAt(p, off)
	for a, b := range m.patches {
		for i := range b {
			if x := a + uint64(i); x >= uint64(off) && x < uint64(off)+uint64(len(p)) {
				p[x-uint64(off)] = b[i]
			}
		}
	}
	return n, err
}

// TestCodeCacheRevalidates replaces a cached code object's name and
// filename pointers between two samples, as when a freed code object's
// memory is reused for another, and checks the second sample sees it.
func TestCodeCacheRevalidates(t *testing.T) {
	for _, file := range []string{"testdata/snapshots/pyenv-2.7.18.snap", "testdata/snapshots/pyenv-3.9.18.snap", "testdata/snapshots/pyenv-3.11.7.snap"} {
		t.Run(file, func(t *testing.T) {
			snap := loadSnapshot(t, file)
			mem := &mutable{Snapshot: snap, patches: map[uint64][]byte{}}
			cfg := snap.Config
			r0, err := snap.Open()
			if err != nil {
				t.Fatal(err)
			}
			cfg.Layout, cfg.Version, cfg.NoReadahead = r0.l, snap.Version, true
			r, err := New(mem, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := r.Sample(SampleOptions{NoNames: true})
			if err != nil {
				t.Fatal(err)
			}
			// Two frames of different functions in different files.
			var a, b Frame
			for _, th := range ts {
				for _, f := range th.Frames {
					switch {
					case a.Function == nil:
						a = f
					case b.Function == nil && f.Filename != a.Filename && f.Name != a.Name:
						b = f
					}
				}
			}
			if b.Function == nil {
				t.Fatal("no two distinct functions in the snapshot")
			}
			misses := r.Stats().CodeMisses
			// Give a's code object b's names: what reuse of freed memory
			// for another code object looks like.
			l := &r.l.Code
			for _, off := range []int64{l.Name, l.Filename, l.Qualname} {
				if off < 0 {
					continue
				}
				var p [8]byte
				if _, err := snap.ReadAt(p[:], int64(b.Code)+off); err != nil {
					t.Fatal(err)
				}
				mem.patches[a.Code+uint64(off)] = p[:]
			}
			ts2, _ := r.Sample(SampleOptions{NoNames: true})
			var got *Frame
			for _, th := range ts2 {
				for i, f := range th.Frames {
					if f.Addr == a.Addr {
						got = &th.Frames[i]
					}
				}
			}
			if got == nil {
				t.Fatal("frame gone")
			}
			if got.Name != b.Name || got.Filename != b.Filename {
				t.Errorf("after reuse the frame reads %s (%s), want %s (%s)", got.Name, got.Filename, b.Name, b.Filename)
			}
			if r.Stats().CodeMisses != misses+1 {
				t.Errorf("code misses %d -> %d, want one re-decode", misses, r.Stats().CodeMisses)
			}
		})
	}
}
