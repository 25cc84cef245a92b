package aggregate

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/pyprof/pyprof/flamegraph"
	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/sampler/samplertest"
	"github.com/pyprof/pyprof/pyspy"
)

// churnFuncs are the names and files of a web worker's 400 functions.
var churnFuncs = func() []pyspy.Function {
	var out []pyspy.Function
	for i := range 400 {
		out = append(out, pyspy.Function{
			Name:      fmt.Sprintf("module%d.Class.method%d", i%40, i),
			Filename:  fmt.Sprintf("/srv/app/venv/lib/python3.11/site-packages/pkg/mod%d.py", i%40),
			FirstLine: 10 * i,
		})
	}
	return out
}()

// churnStack returns stack s of 200 as a reader gives it, innermost frame
// first, with the reader's own Functions fns.
func churnStack(fns []*pyspy.Function, s int) []pyspy.Frame {
	frames := make([]pyspy.Frame, 30)
	for d := range frames {
		fn := fns[(d*13+s*(d/20))%len(fns)]
		frames[len(frames)-1-d] = pyspy.Frame{Function: fn, Line: fn.FirstLine + 1 + d%3}
	}
	return frames
}

// readerFuncs returns the Functions a new reader decodes: its own, with
// the names of every other's.
func readerFuncs() []*pyspy.Function {
	fns := make([]*pyspy.Function, len(churnFuncs))
	for i := range fns {
		fn := churnFuncs[i]
		fns[i] = &fn
	}
	return fns
}

// TestAggregatorChurn feeds record's aggregator what the sampler gives
// for a gunicorn whose workers are replaced (2000 processes in turn, each
// sampled at 200 stacks on two threads, then reported exited) and for a
// program that starts a thread per task (20000 threads in turn, 3 stacks
// each), and measures the live heap each process or thread adds. What
// stays is the profile's: a few tens of bytes per distinct stack a worker
// adds, and for a thread nothing unless the output keeps threads apart
// (pprof, speedscope) or shows them (--threads). The figures go in the
// log; the bounds are about half again what was measured (amd64, Go 1.26).
func TestAggregatorChurn(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		max  float64 // bytes a process or thread
	}{
		// Measured: 6.0 kB a process (30 bytes a stack) either way.
		{"2000 processes, svg", Options{Processes: true}, 9000},
		{"2000 processes, pprof", Options{Processes: true, KeepThreads: true}, 9000},
		// Measured: 0, 175, 394 and 295 bytes a thread.
		{"20000 threads, svg", Options{}, 16},
		{"20000 threads, pprof", Options{KeepThreads: true}, 260},
		{"20000 threads, speedscope", Options{KeepThreads: true, KeepOrder: true}, 600},
		{"20000 threads, svg --threads", Options{Threads: true}, 450},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(profile.NewBuilder(), tc.o)
			n, warm := 20000, 1000
			if tc.o.Processes {
				n, warm = 2000, 100
			}
			shared := readerFuncs()
			var before int64
			for u := range n {
				if u == warm {
					before = liveHeap()
				}
				if tc.o.Processes {
					pid := 1000 + u
					fns := readerFuncs()
					for r := range 100 {
						smp := sampler.Sample{Pid: pid, Cmdline: "/usr/bin/python3 /usr/bin/gunicorn -w 4 --max-requests 50 webapp:app"}
						for k := range 2 {
							smp.Threads = append(smp.Threads, sampler.Thread{
								NativeID: pid + k, ID: 0x7f3e1c2b5000 + uint64(k)<<12, Name: []string{"MainThread", "Thread-1"}[k], HasName: true,
								Active: true, Frames: churnStack(fns, (2*r+k)%200)})
						}
						a.Add(smp)
					}
					a.Forget(pid)
					continue
				}
				th := sampler.Thread{NativeID: 5000 + u, ID: 0x7f3e1c2b5000 + uint64(u%8)<<12,
					Name: "Thread-" + strconv.Itoa(u) + " (work)", HasName: true, Active: true}
				for k := range 3 {
					th.Frames = churnStack(shared, (u+67*k)%200)
					a.Add(sampler.Sample{Pid: 999, Cmdline: "python app.py", Threads: []sampler.Thread{th}})
					a.Add(sampler.Sample{Pid: 999, Cmdline: "python app.py", Threads: []sampler.Thread{th}})
				}
			}
			per := float64(liveHeap()-before) / float64(n-warm)
			runtime.KeepAlive(a)
			t.Logf("%.0f bytes a process or thread; %d frames, %d stacks", per, len(a.b.Meta().Frames), len(a.b.Profile().Stacks))
			if per > tc.max {
				t.Errorf("%.0f bytes a process or thread, want at most %.0f", per, tc.max)
			}
		})
	}
}

// TestAggregatorMergesThreads: for the flame graph and collapsed stacks,
// which merge threads, the aggregator does not keep stacks apart by
// thread, and the files are those of a profile that did.
func TestAggregatorMergesThreads(t *testing.T) {
	samples := samplertest.SteadySamples()
	for i, smp := range samples {
		// A thread with another's stack, as a pool's idle workers have.
		twin := smp.Threads[0]
		twin.NativeID, twin.Name = 5000+i%3, fmt.Sprint("pool-", i%3)
		samples[i].Threads = append(slices.Clip(smp.Threads), twin)
	}
	for _, procs := range []bool{false, true} {
		profiles := map[string]*profile.Profile{}
		for format, keep := range map[string]bool{"svg": false, "collapsed": false, "pprof": true} {
			b := profile.NewBuilder()
			a := New(b, Options{Processes: procs, KeepThreads: keep})
			for _, smp := range samples {
				a.Add(smp)
			}
			p := b.Profile()
			p.Command = "gunicorn"
			profiles[format] = p
		}
		kept, merged := profiles["pprof"], profiles["svg"]
		if len(merged.Stacks) >= len(kept.Stacks) || merged.Total() != kept.Total() {
			t.Errorf("%d stacks of %d samples, kept apart %d of %d", len(merged.Stacks), merged.Total(), len(kept.Stacks), kept.Total())
		}
		for _, s := range append(merged.Stacks, profiles["collapsed"].Stacks...) {
			if s.Tid != 0 || s.ThreadName != "" {
				t.Fatalf("stack of thread %d %q kept apart", s.Tid, s.ThreadName)
			}
		}
		if !slices.Equal(merged.CollapsedLines(), kept.CollapsedLines()) {
			t.Errorf("collapsed stacks differ")
		}
		var a, b bytes.Buffer
		if err := flamegraph.Write(&a, merged.FlameGraph(), flamegraph.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := flamegraph.Write(&b, kept.FlameGraph(), flamegraph.Options{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("flame graphs differ")
		}
	}
}
