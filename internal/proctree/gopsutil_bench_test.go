package proctree

import (
	"context"
	"os/exec"
	"slices"
	"testing"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/pyprof/pyprof/procmem"
)

// The benchmarks here measure what --pgrep and the subprocess rescan
// would cost if gopsutil did the listing, beside this package's own
// code, on the same processes: the figures behind keeping one scan of
// stat files here (see the package comment).

// gopsutilList is List through gopsutil: every process, its parent,
// state, start time, comm, executable and command line.
func gopsutilList(ctx context.Context) ([]Proc, error) {
	ps, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, p := range ps {
		status, err := p.StatusWithContext(ctx)
		if err != nil || status[0] == process.Zombie {
			continue
		}
		ppid, err := p.PpidWithContext(ctx)
		if err != nil {
			continue
		}
		name, _ := p.NameWithContext(ctx)
		start, _ := p.CreateTimeWithContext(ctx)
		exe, _ := p.ExeWithContext(ctx)
		args, _ := p.CmdlineSliceWithContext(ctx)
		out = append(out, Proc{Pid: int(p.Pid), PPid: int(ppid), Comm: name, Exe: exe, Cmdline: args, StartTime: uint64(start)})
	}
	return out, nil
}

// gopsutilDescendants walks Children down from root, breadth first.
func gopsutilDescendants(ctx context.Context, root int32) ([]Proc, error) {
	p, err := process.NewProcessWithContext(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []Proc
	queue := []*process.Process{p}
	for len(queue) > 0 {
		kids, err := queue[0].ChildrenWithContext(ctx)
		queue = queue[1:]
		if err != nil {
			continue
		}
		for _, k := range kids {
			args, _ := k.CmdlineSliceWithContext(ctx)
			exe, _ := k.ExeWithContext(ctx)
			out = append(out, Proc{Pid: int(k.Pid), Cmdline: args, Exe: exe})
			queue = append(queue, k)
		}
	}
	return out, nil
}

func BenchmarkListGopsutil(b *testing.B) {
	ctx := context.Background()
	b.Run("pyprof", func(b *testing.B) {
		cpu0 := cpuTime(b)
		for b.Loop() {
			if _, err := List(procmem.DefaultFS); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("gopsutil", func(b *testing.B) {
		cpu0 := cpuTime(b)
		for b.Loop() {
			if _, err := gopsutilList(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkDescendantsGopsutil follows a shell and its two children, as
// the rescan follows a small service.
func BenchmarkDescendantsGopsutil(b *testing.B) {
	sh := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	start(b, sh)
	waitFor(b, "two sleeps under sh", func() bool {
		kids, err := Descendants(procmem.DefaultFS, sh.Process.Pid)
		return err == nil && len(kids) == 2 && slices.Equal(kids[1].Cmdline, []string{"sleep", "30"})
	})
	ctx := context.Background()
	b.Run("pyprof", func(b *testing.B) {
		cpu0 := cpuTime(b)
		for b.Loop() {
			if kids, err := Descendants(procmem.DefaultFS, sh.Process.Pid); err != nil || len(kids) != 2 {
				b.Fatal(kids, err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("gopsutil", func(b *testing.B) {
		cpu0 := cpuTime(b)
		for b.Loop() {
			if kids, err := gopsutilDescendants(ctx, int32(sh.Process.Pid)); err != nil || len(kids) != 2 {
				b.Fatal(kids, err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	})
}
