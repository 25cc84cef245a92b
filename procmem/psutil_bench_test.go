package procmem

import (
	"context"
	"os"
	"testing"

	"github.com/shirou/gopsutil/v4/process"
)

// BenchmarkThreadState reads one thread's run state as the sampler does
// for every thread it finds waiting, through the cached file, and as
// gopsutil would (Process.Status, which reads and parses the whole status
// file): the figures behind keeping the hot path's own reads.
func BenchmarkThreadState(b *testing.B) {
	p, err := Open(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	tid := os.Getpid()
	b.Run("cached", func(b *testing.B) {
		s := p.ThreadStates()
		if _, err := s.State(tid); err != nil {
			b.Fatal(err)
		}
		before := s.Syscalls()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.State(tid); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.Syscalls()-before)/float64(b.N), "syscalls/op")
	})
	b.Run("gopsutil", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			gp := &process.Process{Pid: int32(tid)}
			if _, err := gp.StatusWithContext(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
