package asynctask_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/asynctask"
)

// TestTasks reads the tasks of tasks.py's two loops on every interpreter
// and compares them with the target's own view.
func TestTasks(t *testing.T) {
	for _, py := range testpython.For(t, "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			view := testpython.TasksView(t, tg)
			p, err := target.Attach(tg.Pid, target.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Version.AtLeast(3, 14) {
				d, err := p.AsyncioDebugOffsets()
				if err != nil {
					t.Fatalf("asyncio debug offsets: %v", err)
				}
				t.Logf("asyncio debug offsets: %+v", *d)
			}
			paused, err := p.Proc.Pause()
			if err != nil {
				t.Fatal(err)
			}
			threads, err := p.Sample(pyspy.SampleOptions{})
			if err != nil {
				paused.Resume()
				t.Fatal(err)
			}
			var ths []asynctask.Thread
			for _, th := range threads {
				ths = append(ths, asynctask.Thread{Addr: th.Addr, ID: th.ID, Frames: th.Frames})
			}
			tasks, err := p.Tasks(ths, asynctask.ReadOptions{})
			fast, ferr := p.Tasks(ths, asynctask.ReadOptions{RunningOnly: true})
			paused.Resume()
			if ferr != nil {
				t.Errorf("tasks of running chains: %v", ferr)
			}
			checkRunningChains(t, tasks, fast)
			if err != nil {
				t.Errorf("tasks: %v", err)
			}
			got := map[uint64][]testpython.ViewTask{}
			for _, tk := range tasks {
				v := testpython.ViewTask{ID: tk.Addr, Name: tk.Name, Running: tk.Running, Awaiting: tk.Awaiting}
				for _, f := range tk.Frames {
					v.Frames = append(v.Frames, testpython.ExpectFrame{Function: f.Name, Filename: f.Filename, Line: f.Line})
				}
				got[tk.Thread] = append(got[tk.Thread], v)
				if tk.Err != nil {
					t.Errorf("task %q: %v", tk.Name, tk.Err)
				}
			}
			for _, d := range testpython.DiffTasks(view, got) {
				t.Error(d)
			}
			n := 0
			for _, v := range view {
				n += len(v)
			}
			t.Logf("%d tasks on %d loops", n, len(view))
		})
	}
}

// checkRunningChains compares the logical stacks of the running tasks as
// a read of every task and one of the running chains give them.
func checkRunningChains(t *testing.T, all, fast []asynctask.Task) {
	t.Helper()
	var st asynctask.Stacker
	render := func(tasks []asynctask.Task) map[uint64]string {
		out := map[uint64]string{}
		for i, s := range st.Stacks(tasks) {
			if !tasks[i].Running {
				continue
			}
			var b strings.Builder
			for _, f := range s {
				fmt.Fprintf(&b, "%s:%d;", f.Name, f.Line)
			}
			out[tasks[i].Addr] = b.String()
		}
		return out
	}
	// Every running task of tasks.py is awaited through a wakeup: the
	// chains are found from the running tasks up.
	if len(fast) >= len(all) {
		t.Errorf("the running-only read gave %d tasks of %d: it read every task", len(fast), len(all))
	}
	want, got := render(all), render(fast)
	if len(want) == 0 {
		t.Error("no running task")
	}
	for addr, w := range want {
		if got[addr] != w {
			t.Errorf("running task %#x: running-only stack\n\t%s\nwant\n\t%s", addr, got[addr], w)
		}
	}
}

// TestLayoutDebugOffsets: on 3.14 and later, the generated table's task
// and state members are those the target's own .AsyncioDebug section
// gives, so that a target whose section cannot be read is read right.
func TestLayoutDebugOffsets(t *testing.T) {
	for _, py := range testpython.For(t, "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			testpython.TasksView(t, tg)
			p, err := target.Attach(tg.Pid, target.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			d, err := p.AsyncioDebugOffsets()
			if err != nil {
				t.Fatalf("asyncio debug offsets: %v", err)
			}
			table := asynctask.TableDebugOffsets(p.Version.Minor)
			if table == nil {
				t.Fatalf("no row for python %s", p.Version)
			}
			live := map[string]uint64{
				"TaskSize": d.TaskSize, "TaskName": d.TaskName, "TaskCoro": d.TaskCoro, "TaskNode": d.TaskNode,
				"InterpTasksHead":   d.InterpTasksHead,
				"ThreadRunningLoop": d.ThreadRunningLoop, "ThreadRunningTask": d.ThreadRunningTask, "ThreadTasksHead": d.ThreadTasksHead,
			}
			for name, want := range live {
				if got := table[name]; got != int64(want) {
					t.Errorf("%s: table %d, target %d", name, got, want)
				}
			}
		})
	}
}
