package pyspy

import (
	"testing"
)

// TestAttachWhileAThreadStarts opens snapshots in which a thread state has
// no thread id yet, as one being started has in a process that starts
// threads all the time: the interpreter must still be found, unless no
// thread state has an id at all.
func TestAttachWhileAThreadStarts(t *testing.T) {
	for _, file := range []string{"testdata/snapshots/pyenv-2.7.18.snap", "testdata/snapshots/pyenv-3.9.18.snap", "testdata/snapshots/pyenv-3.11.7.snap"} {
		t.Run(file, func(t *testing.T) {
			snap := loadSnapshot(t, file)
			r0, err := snap.Open()
			if err != nil {
				t.Fatal(err)
			}
			threads, err := r0.Sample(SampleOptions{NoNames: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(threads) < 2 {
				t.Fatalf("%d threads in the snapshot, want 2 or more", len(threads))
			}
			var all []uint64
			for _, th := range threads {
				all = append(all, th.Addr)
			}
			for _, tc := range []struct {
				name string
				zero []uint64 // thread states whose id is zeroed
				ok   bool
			}{
				{"none starting", nil, true},
				{"last starting", all[len(all)-1:], true},
				{"first starting", all[:1], true},
				{"no thread id at all", all, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					mem := &mutable{Snapshot: snap, patches: map[uint64][]byte{}}
					for _, a := range tc.zero {
						mem.patches[a+uint64(r0.l.Thread.ThreadID)] = le(0)
					}
					cfg := snap.Config
					cfg.Layout, cfg.Version, cfg.NoReadahead = r0.l, snap.Version, true
					_, err := New(mem, cfg)
					if (err == nil) != tc.ok {
						t.Errorf("New: %v, want success %v", err, tc.ok)
					}
				})
			}
		})
	}
}
