package sampler

import (
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestAsyncIdlePending samples manytasks.py (300 tasks parked in a chain,
// one busy) with Async and AsyncIdle: once the pending tasks' goroutine
// has read them, every sample carries each parked task's stack under its
// "task" frame, and the busy task once, running or pending; Close stops
// that goroutine.
func TestAsyncIdlePending(t *testing.T) {
	const n = 300
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.9", "3.11", "3.12", "3.14")) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "manytasks.py", "300")
			s, err := New(tg.Pid, Options{Rate: 100, Mode: Nonblocking, Idle: true, Async: true, AsyncIdle: true})
			if err != nil {
				t.Fatal(err)
			}
			full := 0
			deadline := time.Now().Add(10 * time.Second)
			for full < 20 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				s.Round(func(smp Sample) {
					parked := map[string]bool{}
					busy := 0
					for _, th := range smp.Threads {
						if len(th.Frames) == 0 {
							continue
						}
						if root := th.Frames[len(th.Frames)-1].Name; strings.HasPrefix(root, "task parked-") {
							parked[root] = true
						}
						for _, f := range th.Frames {
							if f.Name == "task busy" {
								busy++
							}
						}
					}
					// The busy task is sampled running or pending, never both.
					if busy > 1 {
						t.Errorf("the busy task in %d stacks of one sample", busy)
					}
					if len(parked) == n {
						full++
					} else if full > 0 {
						t.Errorf("a sample after a full one has %d parked tasks", len(parked))
					}
				})
			}
			if full < 20 {
				t.Fatalf("%d samples with every parked task in 10 s", full)
			}
			var pending *pendingTasks
			for _, p := range s.procs {
				if p.async != nil {
					pending = p.async.pending
				}
			}
			s.Close()
			if pending == nil {
				t.Fatal("no pending tasks reader")
			}
			select {
			case <-pending.done:
			default:
				t.Error("the pending tasks' goroutine runs after Close")
			}
		})
	}
}
