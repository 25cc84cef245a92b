package profile

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// churnStacks returns 200 Python parts of 30 frames, root first, as frame
// IDs of b: a web worker's handful of code paths at many lines.
func churnStacks(b builder) [][]int {
	var frames []int
	for i := range 400 {
		frames = append(frames, b.FrameID(py(fmt.Sprintf("module%d.Class.method%d", i%40, i), fmt.Sprintf("/srv/app/venv/lib/python3.11/site-packages/pkg/mod%d.py", i%40), 10+i)))
	}
	var out [][]int
	for s := range 200 {
		var ids []int
		for d := range 30 {
			ids = append(ids, frames[(d*13+s*(d/20))%len(frames)])
		}
		out = append(out, ids)
	}
	return out
}

// churnCase is one kind of churn: processes that each add every stack
// under their own process frame, as gunicorn's workers do under
// --subprocesses, or threads that each add a few stacks, as a program
// that starts a thread per task does.
type churnCase struct {
	name       string
	processes  bool // else threads
	n, warm    int  // processes or threads, and how many before measuring
	perThread  int  // stacks each thread adds
	order      bool // KeepOrder (speedscope)
	frames     bool // a thread frame at the root (--threads)
	maxPerUnit float64
}

// churn feeds b the case's processes or threads in turn and returns the
// live heap each one added after the first warm.
func (c churnCase) churn(b builder) float64 {
	if c.order {
		b.KeepOrder()
	}
	stacks := churnStacks(b)
	ids := make([]int, 0, 32)
	var before int64
	for u := range c.n {
		if u == c.warm {
			before = liveHeap()
		}
		pid, tid := 1000, 2000+u
		// Names are made as the sampler makes them: one string each.
		name := "Thread-" + strconv.Itoa(u) + " (work)"
		if c.processes {
			pid, tid, name = 1000+u, 1000+u, "MainThread"
		}
		ids = ids[:0]
		switch {
		case c.processes:
			ids = append(ids, b.FrameID(ProcessFrame(pid, "/usr/bin/python3 /usr/bin/gunicorn -w 4 --max-requests 50 webapp:app")))
		case c.frames:
			ids = append(ids, b.FrameID(ThreadFrame(tid, name)))
		}
		if c.processes {
			for i, s := range stacks {
				// A few samples each, on the worker's two threads.
				for k := range 3 {
					b.AddStack(append(ids, s...), 1, pid, tid+k%2*(1+i%2), name)
				}
			}
			continue
		}
		for k := range c.perThread {
			// Each thread samples a few times at one of its stacks.
			s := stacks[(u+k*67)%len(stacks)]
			b.AddStack(append(ids, s...), 1, pid, tid, name)
			b.AddStack(append(ids, s...), 1, pid, tid, name)
		}
	}
	grew := liveHeap() - before
	runtime.KeepAlive(b)
	return float64(grew) / float64(c.n-c.warm)
}

// liveHeap returns the bytes of heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestBuilderChurn: what a new process or thread costs the builder is a
// few tens of bytes for each distinct stack it adds, not a copy of the
// stack. The figures go in the log, with the old builder's (which kept
// each stack whole: measured over fewer units, to spare the machine) for
// comparison; the bounds have a margin of about half over what was
// measured, and catch a return to copies, which cost several times as
// much.
func TestBuilderChurn(t *testing.T) {
	for _, c := range []churnCase{
		// Measured on amd64 with Go 1.26: 11.7 kB a process (29 bytes
		// a labelled stack), 171 bytes a thread, 390 with the order
		// kept, 301 with thread frames; the old builder took 175 kB,
		// 1266, 1508 and 1594.
		{name: "2000 processes of 200 stacks", processes: true, n: 2000, warm: 100, maxPerUnit: 18000},
		{name: "20000 threads of 3 stacks", n: 20000, warm: 1000, perThread: 3, maxPerUnit: 260},
		{name: "20000 threads of 3 stacks, order kept", n: 20000, warm: 1000, perThread: 3, order: true, maxPerUnit: 600},
		{name: "20000 threads of 3 stacks, thread frames", n: 20000, warm: 1000, perThread: 3, frames: true, maxPerUnit: 460},
	} {
		t.Run(c.name, func(t *testing.T) {
			per := c.churn(NewBuilder())
			ref := c
			ref.n, ref.warm = c.n/10, c.warm/10
			old := ref.churn(newRefBuilder())
			unit := "thread"
			if c.processes {
				unit = "process"
			}
			t.Logf("%.0f bytes a %s (%.1f a labelled stack); the old builder: %.0f", per, unit, per/float64(c.perUnitStacks()), old)
			if per > c.maxPerUnit {
				t.Errorf("%.0f bytes a %s, want at most %.0f", per, unit, c.maxPerUnit)
			}
		})
	}
}

// perUnitStacks is the number of distinct labelled stacks each process or
// thread adds.
func (c churnCase) perUnitStacks() int {
	if c.processes {
		return 400
	}
	return c.perThread
}
