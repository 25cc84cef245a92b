package sampler

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// churnVersions are the interpreters the churn tests run on: one layout
// before 3.11's frames and one after.
var churnVersions = []string{"3.9", "3.13"}

// TestExitedChildrenLeaveNoState samples a root that forks short-lived
// Python children, as gunicorn replaces its workers, until 30 of them have
// been sampled, then stops the forking and checks that the sampler keeps
// nothing of the children that exited: no reader, no /proc file, no entry
// in its maps, and Exited was told of each. The live heap after GC must
// stay within a generous bound of what it was before.
func TestExitedChildrenLeaveNoState(t *testing.T) {
	const children = 30
	for _, py := range testpython.OnePerMinor(testpython.For(t, churnVersions...)) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "children.py")
			heapBefore := liveHeap()
			exited := map[int]int{}
			s, err := New(tg.Pid, Options{Rate: 100, Subprocesses: true, Exited: func(pid int) { exited[pid]++ }})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Not a timing goal: the bound only keeps a broken target
			// from hanging the test.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			err = s.Run(ctx, func(Sample) {
				if len(s.seen) > children {
					cancel()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.seen) <= children {
				t.Fatalf("sampled %d processes in 3 minutes, want the root and %d children\ntarget stderr: %s", len(s.seen), children, tg.Stderr())
			}

			// Let every child exit, then have the sampler notice.
			if err := syscall.Kill(tg.Pid, syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			waitNoChildren(t, tg.Pid)
			s.rescan(time.Now())
			s.Round(func(Sample) {})

			if len(s.procs) != 1 || s.procs[tg.Pid] == nil {
				t.Errorf("sampler holds processes %v, want only the root %d", s.Current(), tg.Pid)
			}
			for pid := range s.skipped {
				if pid != tg.Pid {
					t.Errorf("sampler remembers skipping process %d, which has exited", pid)
				}
			}
			for pid := range s.seen {
				if pid != tg.Pid && exited[pid] != 1 {
					t.Errorf("Exited was called %d times for child %d, want once", exited[pid], pid)
				}
			}
			if root := s.procs[tg.Pid]; root != nil {
				if n := root.states.Open(); n > 1 {
					t.Errorf("%d stat files open for the root, which has one thread", n)
				}
			}
			s.Close()
			if len(s.procs) != 0 || exited[tg.Pid] != 1 {
				t.Errorf("after Close: %d processes held, Exited called %d times for the root", len(s.procs), exited[tg.Pid])
			}
			// Generous: a child's reader holds a few hundred kB, so 30
			// retained ones would exceed it.
			const bound = 8 << 20
			if grew := liveHeap() - heapBefore; grew > bound {
				t.Errorf("live heap grew by %d kB over %d children, want under %d kB", grew>>10, len(s.seen)-1, bound>>10)
			}
		})
	}
}

// TestThreadChurnClosesStatFiles samples a process that starts and ends a
// thread every few milliseconds and checks that the /proc stat files held
// open stay about as many as the process has threads, however many have
// come and gone.
func TestThreadChurnClosesStatFiles(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, churnVersions...)) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "threadchurn.py", "--every", "0.01", "--sleep", "0.01")
			// Idle, so that every thread is reported and its run state
			// read all the same.
			s, err := New(tg.Pid, Options{Rate: 100, Idle: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			p := s.procs[tg.Pid]
			seen, mostFiles, mostIdle := map[int]bool{}, 0, 0
			for range 20 * forgetEvery {
				s.Round(func(smp Sample) {
					for _, th := range smp.Threads {
						seen[th.NativeID] = true
					}
				})
				mostFiles = max(mostFiles, p.states.Open())
				mostIdle = max(mostIdle, len(p.idle))
				time.Sleep(5 * time.Millisecond)
			}
			// The root, the thread alive now, and those started and
			// ended since the last sweep: at most one a round, since
			// a round takes longer than this target's threads live.
			const limit = 2 + forgetEvery
			if mostFiles > limit || mostIdle > limit {
				t.Errorf("up to %d stat files open and %d waiting threads remembered, want at most %d", mostFiles, mostIdle, limit)
			}
			if len(seen) < 3*limit {
				t.Errorf("only %d threads seen: the target does not churn enough to tell", len(seen))
			}
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

// waitNoChildren waits for pid to have no children left.
func waitNoChildren(t *testing.T, pid int) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	for range 600 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("process %d still has children after 60 s", pid)
}
