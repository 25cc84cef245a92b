package aggregate

import (
	"testing"

	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/testpython"
)

// TestSampleAllocsLive measures the allocations of the whole hot path on a
// live target, as record runs it: one round of the sampler (reading and
// verifying the stacks, run states) and aggregating the sample into the
// profile. A steady round allocates only the sample's thread and frame
// arrays.
func TestSampleAllocsLive(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.9", "3.11", "3.13")) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "busy.py")
			s, err := sampler.New(tg.Pid, sampler.Options{Rate: 100})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			b := profile.NewBuilder()
			agg := New(b, Options{KeepThreads: true})
			emit := func(smp sampler.Sample) { agg.Add(smp) }
			for range 200 {
				s.Round(emit)
			}
			n := testing.AllocsPerRun(500, func() { s.Round(emit) })
			t.Logf("%.2f allocations per sample", n)
			if n > 2 {
				t.Errorf("%.2f allocations per sample, want at most 2", n)
			}
		})
	}
}
