package push

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

// sample is one process's round of threads, each on its own stack.
func sample(pid, threads int, fn *pyspy.Function, line int) sampler.Sample {
	s := sampler.Sample{Pid: pid, Cmdline: "python3 app.py"}
	for i := range threads {
		s.Threads = append(s.Threads, sampler.Thread{NativeID: pid*100 + i, Name: "worker", HasName: true, Active: true,
			Frames: []pyspy.Frame{{Function: fn, Line: line + i}}})
	}
	return s
}

// TestRecorderLosesNothing adds samples from one goroutine while another
// cuts intervals, as record's sampler and push loop do: every sample is
// in exactly one interval, and the intervals follow each other.
func TestRecorderLosesNothing(t *testing.T) {
	start := time.Now()
	r := NewRecorder(start, 100, false)
	fn := &pyspy.Function{Name: "hot", Filename: "app.py", FirstLine: 1}
	var added atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r.Add(sample(1+i%3, 2, fn, i%50))
			added.Add(2)
		}
	}()
	var got int64
	prevEnd := start
	for i := 1; i <= 50; i++ {
		time.Sleep(time.Millisecond)
		end := start.Add(time.Duration(i) * time.Second)
		p := r.Cut(end)
		if !p.Start.Equal(prevEnd) || p.Duration != end.Sub(prevEnd) || p.Interval != 10*time.Millisecond {
			t.Fatalf("interval %d: start %v, duration %v, interval %v; want to follow %v", i, p.Start, p.Duration, p.Interval, prevEnd)
		}
		prevEnd = end
		got += p.Total()
	}
	close(stop)
	wg.Wait()
	got += r.Cut(prevEnd.Add(time.Second)).Total()
	if got != added.Load() {
		t.Errorf("%d samples in the intervals, %d added", got, added.Load())
	}
}

// TestRecorderMemoryFlat: intervals of new functions (as code compiled at
// run time gives) and new threads leave nothing behind once cut and
// encoded: the heap after 400 intervals is what it was after 100.
func TestRecorderMemoryFlat(t *testing.T) {
	r := NewRecorder(time.Now(), 100, false)
	e := Encoder{App: "app", Command: func(int) string { return "python3" }}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var at100 uint64
	for i := range 400 {
		for j := range 50 {
			fn := &pyspy.Function{Name: "f", Filename: "gen.py", FirstLine: i*50 + j}
			r.Add(sample(1000+i, 4, fn, j))
		}
		iv, err := e.Encode(r.Cut(time.Now()))
		if err != nil || iv.Body == nil {
			t.Fatal(err)
		}
		if i == 99 {
			at100 = heap()
		}
	}
	at400 := heap()
	t.Logf("heap after 100 intervals %d kB, after 400 %d kB", at100/1024, at400/1024)
	if at400 > at100+256<<10 {
		t.Errorf("heap grew from %d kB to %d kB between intervals 100 and 400", at100/1024, at400/1024)
	}
}
