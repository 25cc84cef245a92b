package target

import (
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
)

// benchDepth is the stack depth of the benchmark target, below the
// interpreter's own frames.
const benchDepth = 50

// BenchmarkSample measures one full sample (every thread) of a live target
// 50 frames deep, on 3.9 and 3.11: one spinning in pure Python at that
// depth (busy.py) and one whose threads are parked (stacks.py, the main
// thread and one 50 deep). It reports microseconds and memory-read
// syscalls per sample:
//
//   - nonblocking: the stacks only, the process keeps running;
//   - threadstate: plus each thread's run state from /proc, which record
//     and top need to tell idle threads from active ones;
//   - paused: the process is paused with ptrace around the read.
func BenchmarkSample(b *testing.B) {
	for _, minor := range []string{"3.9", "3.11"} {
		for _, py := range testpython.For(b, minor) {
			if py.System {
				continue
			}
			b.Run(py.Name+"/spinning", func(b *testing.B) {
				benchTarget(b, testpython.Start(b, py, "busy.py", "--depth", "50"))
			})
			b.Run(py.Name+"/parked", func(b *testing.B) {
				benchTarget(b, testpython.Start(b, py, "stacks.py", "--shapes", "recursion", "--recursion", "50"))
			})
		}
	}
}

func benchTarget(b *testing.B, tg *testpython.Target) {
	p, err := Attach(tg.Pid, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ts, err := p.Reader.Sample(pyspy.SampleOptions{})
	if err != nil {
		b.Fatal(err)
	}
	deepest := 0
	for _, t := range ts {
		deepest = max(deepest, len(t.Frames))
	}
	if deepest < benchDepth {
		b.Fatalf("target not %d deep: %v", benchDepth, ts)
	}
	sample := func(b *testing.B) {
		if _, err := p.Reader.Sample(pyspy.SampleOptions{}); err != nil {
			// A running target can change under the reader; count
			// it rather than stop.
			b.ReportMetric(1, "torn")
		}
	}
	report := func(b *testing.B, before uint64, extra func() uint64) {
		sys := p.Proc.Syscalls() - before
		if extra != nil {
			sys += extra()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1000/float64(b.N), "µs/sample")
		b.ReportMetric(float64(sys)/float64(b.N), "syscalls/sample")
	}
	// One 8-byte process_vm_readv of the same target, measured in the
	// same run: on a noisy machine the sample cost is best read as a
	// multiple of it.
	b.Run("oneread", func(b *testing.B) {
		var buf [8]byte
		addr := int64(ts[0].Addr)
		for b.Loop() {
			if _, err := p.Proc.ReadAt(buf[:], addr); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1000/float64(b.N), "µs/sample")
	})
	b.Run("nonblocking", func(b *testing.B) {
		before := p.Proc.Syscalls()
		for b.Loop() {
			sample(b)
		}
		report(b, before, nil)
	})
	b.Run("threadstate", func(b *testing.B) {
		// The process's ThreadStater outlives this function, which the
		// framework may call more than once: count this call's reads.
		st := p.Proc.ThreadStates()
		defer st.Close()
		before, stBefore := p.Proc.Syscalls(), st.Syscalls()
		for b.Loop() {
			ts, _ := p.Reader.Sample(pyspy.SampleOptions{})
			for _, t := range ts {
				st.State(t.NativeID)
			}
		}
		report(b, before, func() uint64 { return st.Syscalls() - stBefore })
	})
	b.Run("paused", func(b *testing.B) {
		for b.Loop() {
			pp, err := p.Proc.Pause()
			if err != nil {
				b.Fatal(err)
			}
			sample(b)
			pp.Resume()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1000/float64(b.N), "µs/sample")
	})
}
