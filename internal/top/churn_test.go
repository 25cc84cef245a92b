package top

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

// TestStatsChurn: top's statistics hold nothing for a process that exited
// or a thread that ended. Worker processes come and go in turn, each with
// its reader's own Functions, and threads each sampled a few times; the
// rows are the same functions throughout, so the live heap must stay put
// once they exist (the table keeps a window, the times since the start).
func TestStatsChurn(t *testing.T) {
	names := make([]pyspy.Function, 400)
	for i := range names {
		names[i] = pyspy.Function{Name: fmt.Sprintf("method%d", i), Filename: fmt.Sprintf("/srv/app/mod%d.py", i%40), FirstLine: 10 * i}
	}
	sample := func(s *Stats, pid, tid int, fns []*pyspy.Function, k int) {
		frames := make([]pyspy.Frame, 30)
		for d := range frames {
			fn := fns[(d*13+k)%len(fns)]
			frames[d] = pyspy.Frame{Function: fn, Line: fn.FirstLine + 1 + d%3}
		}
		s.Add(sampler.Sample{Pid: pid, Cmdline: "gunicorn: worker", Threads: []sampler.Thread{{NativeID: tid, Active: true, Frames: frames}}})
	}
	s := NewStats(10 * time.Millisecond)
	var before int64
	const procs, warm = 2000, 100
	for p := range procs {
		if p == warm {
			before = liveHeap()
		}
		fns := make([]*pyspy.Function, len(names))
		for i := range fns {
			fn := names[i]
			fns[i] = &fn
		}
		pid := 1000 + p
		s.SetProcess(pid, "gunicorn: worker", 12, 30<<20, time.Now())
		for k := range 50 {
			// The process's own threads come and go too.
			sample(s, pid, 100000+p*10+k%5, fns, k)
		}
		s.DropProcess(pid)
		if p%10 == 0 {
			s.EndWindow()
		}
	}
	per := float64(liveHeap()-before) / float64(procs-warm)
	runtime.KeepAlive(s)
	t.Logf("%.0f bytes a process", per)
	if per > 64 {
		t.Errorf("%.0f bytes a process, want nothing", per)
	}
}

func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
