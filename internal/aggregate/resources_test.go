package aggregate

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/testpython"
)

// TestRecordChildChurnFreesReaders samples, as record --subprocesses does
// (the sampler feeding record's aggregator), a root that forks Python
// children which each decode 60 long functions and exit, and compares the
// live heap after GC once 5 children have been sampled and once 35 have:
// what an exited child's reader decoded must be freed (its samples stay
// in the profile), and the sampler must hold only live processes.
func TestRecordChildChurnFreesReaders(t *testing.T) {
	const (
		warm     = 5
		children = 35
		// Generous: each child's samples add a few kB to the profile,
		// while a retained reader holds hundreds.
		bound = 4 << 20
	)
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.9", "3.13")) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "children.py")
			agg := New(profile.NewBuilder(), Options{Processes: true, KeepThreads: true})
			s, err := sampler.New(tg.Pid, sampler.Options{Rate: 100, Subprocesses: true, Exited: agg.Forget})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Not a timing goal: the bound only keeps a broken target
			// from hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			pids := map[int]bool{}
			var warmHeap, endHeap int64
			err = s.Run(ctx, func(smp sampler.Sample) {
				agg.Add(smp)
				if pids[smp.Pid] {
					return
				}
				pids[smp.Pid] = true
				switch len(pids) {
				case 1 + warm:
					warmHeap = liveHeap()
				case 1 + children:
					endHeap = liveHeap()
					cancel()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(pids) <= children {
				t.Fatalf("sampled %d processes in 3 minutes, want the root and %d children", len(pids), children)
			}
			if grew := endHeap - warmHeap; grew > bound {
				t.Errorf("live heap grew by %d kB over %d children, want under %d kB", grew>>10, children-warm, bound>>10)
			}
			// At most the root and the children alive at the last
			// round are held, by the sampler and the aggregator alike.
			if cur := s.Current(); len(cur) > 5 {
				t.Errorf("sampler holds %d processes", len(cur))
			}
			if len(agg.procs) > 5 {
				t.Errorf("aggregator holds the frames of %d processes", len(agg.procs))
			}
			t.Logf("live heap %d kB with %d children sampled, %d kB with %d", warmHeap>>10, warm, endHeap>>10, children)
		})
	}
}

// liveHeap returns the bytes of heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
