// Package samplertest makes samples for the tests and benchmarks of what
// consumes them (record's aggregation, top's table), without a target.
package samplertest

import (
	"fmt"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

// SteadySamples returns samples of one process as a profile or top's table
// sees them in steady state: four threads (one without a name) with stacks
// of about 50 frames, cycling through a few leaves and lines, so that
// every sample repeats a stack seen before, and every row exists, once the
// cycle has been added once.
func SteadySamples() []sampler.Sample {
	fns := make([]*pyspy.Function, 60)
	for i := range fns {
		fns[i] = &pyspy.Function{
			Name:      fmt.Sprintf("module%d.Class.method_%d", i%7, i),
			Filename:  fmt.Sprintf("/srv/app/venv/lib/python3.11/site-packages/pkg/mod%d.py", i%7),
			FirstLine: 10 * i,
		}
	}
	var out []sampler.Sample
	for round := range 8 {
		smp := sampler.Sample{Pid: 4242, Cmdline: "/usr/bin/python3 /usr/bin/gunicorn -w 3 webapp:app"}
		for ti := range 4 {
			depth := 46 + ti + round%3
			frames := make([]pyspy.Frame, depth) // innermost first
			for d := range depth {
				fn := fns[(d*5+ti)%len(fns)]
				line := fn.FirstLine + 1 + d%4
				if d == 0 {
					fn = fns[(round+ti)%len(fns)]
					line = fn.FirstLine + 1 + round%5
				}
				frames[d] = pyspy.Frame{Function: fn, Line: line}
			}
			t := sampler.Thread{NativeID: 4242 + ti, ID: 0x7f3e1c2b5000 + uint64(ti)<<12, Active: true, OwnsGIL: ti == 0, Frames: frames}
			if ti != 3 {
				t.Name, t.HasName = fmt.Sprintf("worker-%d", ti), true
			}
			smp.Threads = append(smp.Threads, t)
		}
		out = append(out, smp)
	}
	return out
}
