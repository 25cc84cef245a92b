package sampler

import (
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// BenchmarkRoundManyThreads measures a round of the default mode on a
// target of 500 threads, 4 busy and 496 parked in Event.wait, as record
// takes it at every tick: µs, memory-read syscalls and /proc reads per
// round, and this process's CPU time per round, steadier than the wall
// time on a shared machine. internal/cmd/leakbench measures the same
// beside py-spy.
func BenchmarkRoundManyThreads(b *testing.B) {
	for _, py := range testpython.OnePerMinor(testpython.For(b, "3.9", "3.11", "3.13")) {
		b.Run(py.Name, func(b *testing.B) {
			tg := testpython.Start(b, py, "manythreads.py")
			s, err := New(tg.Pid, Options{Rate: 100})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := s.procs[tg.Pid]
			stacks := 0
			emit := func(smp Sample) { stacks += len(smp.Threads) }
			s.Round(emit)
			mem, states := p.t.Proc.Syscalls(), p.states.Syscalls()
			cpu := cpuTime()
			stacks = 0
			for b.Loop() {
				s.Round(emit)
			}
			n := float64(b.N)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "µs/round")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/n, "cpuµs/round")
			b.ReportMetric(float64(p.t.Proc.Syscalls()-mem)/n, "reads/round")
			b.ReportMetric(float64(p.states.Syscalls()-states)/n, "procreads/round")
			b.ReportMetric(float64(stacks)/n, "stacks/round")
		})
	}
}

// cpuTime is the user and system time of this process so far: on a
// shared machine it is steadier than the wall time of a round.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
