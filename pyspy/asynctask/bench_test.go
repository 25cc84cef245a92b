package asynctask_test

import (
	"testing"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/asynctask"
)

// BenchmarkTasks reads the tasks of manytasks.py, a loop with 1,000
// pending tasks and a busy one, as record --async does for each sample:
// the running task's logical stack (running), and every task's
// (idle, as with --idle).
func BenchmarkTasks(b *testing.B) {
	for _, py := range testpython.OnePerMinor(testpython.For(b, "3.10", "3.12", "3.14")) {
		tg := testpython.Start(b, py, "manytasks.py", "1000")
		p, err := target.Attach(tg.Pid, target.Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := p.TaskReader()
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []struct {
			name string
			o    asynctask.ReadOptions
		}{{"running", asynctask.ReadOptions{RunningOnly: true}}, {"idle", asynctask.ReadOptions{}}} {
			b.Run(py.Name+"/"+mode.name, func(b *testing.B) {
				var ths []asynctask.Thread
				n := 0
				for b.Loop() {
					threads, _ := p.Sample(pyspy.SampleOptions{NoNames: true})
					ths = ths[:0]
					for _, th := range threads {
						ths = append(ths, asynctask.Thread{Addr: th.Addr, ID: th.ID, Frames: th.Frames})
					}
					tasks, _ := r.Tasks(ths, mode.o)
					n = len(tasks)
				}
				b.ReportMetric(float64(n), "tasks")
			})
		}
		p.Close()
	}
}
