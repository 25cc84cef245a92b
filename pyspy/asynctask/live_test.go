package asynctask_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/asynctask"
)

// ViewTask is one task as tasks.py sees it from inside its loop.
type ViewTask struct {
	ID       uint64                   `json:"id"`
	Name     string                   `json:"name"`
	Running  bool                     `json:"running"`
	Awaiting []uint64                 `json:"awaiting"`
	Frames   []testpython.ExpectFrame `json:"frames"`
}

// TasksView reads the tasks of tasks.py's report, by thread ident.
func TasksView(t testing.TB, tg *testpython.Target) map[uint64][]ViewTask {
	t.Helper()
	for _, line := range tg.Stdout() {
		if !strings.HasPrefix(line, testpython.ReadyPrefix) {
			continue
		}
		var rep struct {
			Tasks map[string][]ViewTask `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, testpython.ReadyPrefix)), &rep); err != nil {
			t.Fatal(err)
		}
		out := map[uint64][]ViewTask{}
		for k, v := range rep.Tasks {
			id, err := strconv.ParseUint(k, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			out[id] = v
		}
		return out
	}
	t.Fatal("no report")
	return nil
}

// DiffTasks compares tasks decoded from outside with the view, task by
// task (by address), frame for frame and edge for edge.
func DiffTasks(view map[uint64][]ViewTask, got map[uint64][]ViewTask) []string {
	var diffs []string
	for tid, want := range view {
		have := map[uint64]ViewTask{}
		for _, g := range got[tid] {
			have[g.ID] = g
		}
		for _, w := range want {
			g, ok := have[w.ID]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("thread %#x: task %q (%#x) missing", tid, w.Name, w.ID))
				continue
			}
			delete(have, w.ID)
			if g.Name != w.Name || g.Running != w.Running {
				diffs = append(diffs, fmt.Sprintf("task %q: got name %q running %v, want running %v", w.Name, g.Name, g.Running, w.Running))
			}
			slices.Sort(g.Awaiting)
			slices.Sort(w.Awaiting)
			if !slices.Equal(g.Awaiting, w.Awaiting) {
				diffs = append(diffs, fmt.Sprintf("task %q: awaiting %x, want %x", w.Name, g.Awaiting, w.Awaiting))
			}
			if fs := frameDiff(w.Frames, g.Frames); fs != "" {
				diffs = append(diffs, fmt.Sprintf("task %q frames:%s", w.Name, fs))
			}
		}
		for _, g := range have {
			diffs = append(diffs, fmt.Sprintf("thread %#x: unexpected task %q (%#x)", tid, g.Name, g.ID))
		}
	}
	for tid, g := range got {
		if _, ok := view[tid]; !ok && len(g) > 0 {
			diffs = append(diffs, fmt.Sprintf("%d tasks on thread %#x, which runs no loop of the view", len(g), tid))
		}
	}
	return diffs
}

func frameDiff(want, got []testpython.ExpectFrame) string {
	eq := len(want) == len(got)
	for i := 0; eq && i < len(want); i++ {
		eq = want[i].Function == got[i].Function && want[i].Filename == got[i].Filename && want[i].Line == got[i].Line
	}
	if eq {
		return ""
	}
	s := func(fs []testpython.ExpectFrame) string {
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "\n\t\t%s (%s:%d)", f.Function, f.Filename, f.Line)
		}
		return b.String()
	}
	return "\n\tgot:" + s(got) + "\n\twant:" + s(want)
}

// TestTasks reads the tasks of tasks.py's two loops on every interpreter
// and compares them with the target's own view.
func TestTasks(t *testing.T) {
	for _, py := range testpython.For(t, "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			view := TasksView(t, tg)
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
			tasks, err := p.Tasks(ths, false)
			paused.Resume()
			if err != nil {
				t.Errorf("tasks: %v", err)
			}
			got := map[uint64][]ViewTask{}
			for _, tk := range tasks {
				v := ViewTask{ID: tk.Addr, Name: tk.Name, Running: tk.Running, Awaiting: tk.Awaiting}
				for _, f := range tk.Frames {
					v.Frames = append(v.Frames, testpython.ExpectFrame{Function: f.Name, Filename: f.Filename, Line: f.Line})
				}
				got[tk.Thread] = append(got[tk.Thread], v)
				if tk.Err != nil {
					t.Errorf("task %q: %v", tk.Name, tk.Err)
				}
			}
			for _, d := range DiffTasks(view, got) {
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
