package pyspy

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
)

// TestPlainWalk walks every thread of every snapshot with the walker alone,
// over a decoder of its own and without a judge, as dump or a walker of
// greenlets or tasks would: a snapshot is one moment of the target, so the
// plain walk must give the frames, lines and locals the judged sample
// gives.
func TestPlainWalk(t *testing.T) {
	files, _ := filepath.Glob("testdata/snapshots/*.snap")
	if len(files) == 0 {
		t.Fatal("no snapshots")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			snap := loadSnapshot(t, file)
			r, err := snap.Open()
			if err != nil {
				t.Fatal(err)
			}
			threads, err := r.Sample(SampleOptions{Locals: true, NoNames: true})
			if err != nil {
				t.Fatal(err)
			}
			c := mem.NewCache(snap, false)
			c.Begin()
			d := pyobj.NewDecoder(c, r.facts)
			w := frames.NewWalker(d, pyobj.NewCodes(d))
			for _, th := range threads {
				ts, err := r.readThread(th.Addr)
				if err != nil {
					t.Fatal(err)
				}
				var out frames.Walk
				if err := w.Walk(ts.frame, nil, true, &out); err != nil {
					t.Fatalf("thread %#x: %v", th.Addr, err)
				}
				if got, want := fmt.Sprint(describe(out.Frames)), fmt.Sprint(describe(th.Frames)); got != want {
					t.Errorf("thread %#x: plain walk\n%s\nsample\n%s", th.Addr, got, want)
				}
				if len(out.Links) < len(out.Frames) {
					t.Errorf("thread %#x: %d links for %d frames", th.Addr, len(out.Links), len(out.Frames))
				}
				// Walked again into the same arrays, with and without
				// the reader's judge, a walk allocates nothing: asking
				// a judge of every frame costs no allocation.
				for _, j := range []frames.Judge{nil, &r.judge} {
					r.judge.t = ts
					if n := testing.AllocsPerRun(20, func() {
						out.Frames, out.Links = out.Frames[:0], out.Links[:0]
						_ = w.Walk(ts.frame, j, false, &out)
					}); n != 0 {
						t.Errorf("thread %#x: %v allocations per walk (judge %T)", th.Addr, n, j)
					}
				}
			}
		})
	}
}

func describe(fs []Frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s (%s:%d) at %#x %v", f.Name, f.Filename, f.Line, f.Addr, f.Locals))
	}
	return out
}
