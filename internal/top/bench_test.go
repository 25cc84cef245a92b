package top

import (
	"fmt"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

// steadySamples returns samples of one process as top sees them in steady
// state: four threads with stacks of about 50 frames, cycling through a
// few leaves and lines, so that every row exists once the cycle has been
// added once.
func steadySamples() []sampler.Sample {
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
			smp.Threads = append(smp.Threads, sampler.Thread{
				NativeID: 4242 + ti, Name: fmt.Sprintf("worker-%d", ti), HasName: true,
				Active: true, OwnsGIL: ti == 0, Frames: frames,
			})
		}
		out = append(out, smp)
	}
	return out
}

// BenchmarkTopAdd measures counting one sample into top's statistics once
// every row in it exists.
func BenchmarkTopAdd(b *testing.B) {
	samples := steadySamples()
	s := NewStats(10 * time.Millisecond)
	for _, smp := range samples {
		s.Add(smp)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Add(samples[i%len(samples)])
	}
}
