package sampler

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestIntervalsAreRandomised checks the tick intervals: uniform between
// half and one and a half periods, so the mean rate is kept.
func TestIntervalsAreRandomised(t *testing.T) {
	for _, hz := range []float64{100, 250, 7} {
		s := &Sampler{opts: Options{Rate: hz}, rng: rand.New(rand.NewPCG(1, 2))}
		period := time.Duration(float64(time.Second) / hz)
		var sum time.Duration
		lo, hi := period, time.Duration(0)
		const n = 20000
		for range n {
			d := s.interval()
			sum += d
			lo, hi = min(lo, d), max(hi, d)
		}
		mean := sum / n
		if mean < period*98/100 || mean > period*102/100 {
			t.Errorf("%v Hz: mean interval %v, want %v", hz, mean, period)
		}
		if lo < period/2 || hi > period*3/2 || lo > period*55/100 || hi < period*145/100 {
			t.Errorf("%v Hz: intervals span %v..%v, want about %v..%v", hz, lo, hi, period/2, period*3/2)
		}
	}
}
