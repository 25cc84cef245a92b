package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/pyfile"
	"github.com/pyprof/pyprof/internal/testpython"
)

// tasksJSON is the part of dump --json that carries asyncio tasks.
type tasksJSON struct {
	Threads []struct {
		ThreadID uint64                `json:"thread_id"`
		Tasks    []testpython.ViewTask `json:"tasks"`
	} `json:"threads"`
	Tasks  []testpython.ViewTask `json:"tasks"`
	Errors []string              `json:"errors"`
}

// TestDumpTasks dumps tasks.py's two event loops on every interpreter:
// --json lists every task under the thread that runs its loop, equal to
// the target's own view frame for frame and edge for edge, and the text
// lists each task with what it awaits.
func TestDumpTasks(t *testing.T) {
	for _, py := range testpython.For(t, "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			view := testpython.TasksView(t, tg)
			out, errOut, code := runPyprof(t, "dump", "--json", "-p", itoa(tg.Pid))
			if code != 0 {
				t.Fatalf("dump --json exited %d: %s", code, errOut)
			}
			var ds []tasksJSON
			if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
				t.Fatalf("bad json (%v): %s", err, out)
			}
			d := ds[0]
			for _, e := range d.Errors {
				t.Errorf("dump error: %s", e)
			}
			if len(d.Tasks) > 0 {
				t.Errorf("%d tasks of loops no thread runs", len(d.Tasks))
			}
			got := map[uint64][]testpython.ViewTask{}
			for _, th := range d.Threads {
				if th.Tasks != nil {
					got[th.ThreadID] = th.Tasks
				}
			}
			for _, diff := range testpython.DiffTasks(view, got) {
				t.Error(diff)
			}

			text, errOut, code := runPyprof(t, "dump", "-p", itoa(tg.Pid))
			if code != 0 {
				t.Fatalf("dump exited %d: %s", code, errOut)
			}
			for _, tasks := range view {
				names := map[uint64]string{}
				for _, tk := range tasks {
					names[tk.ID] = tk.Name
					if tk.Name == "" {
						names[tk.ID] = fmt.Sprintf("%#x", tk.ID)
					}
				}
				for _, tk := range tasks {
					state := "pending"
					if tk.Running {
						state = "running"
					}
					line := fmt.Sprintf("    Task %s (%s)", names[tk.ID], state)
					if !strings.Contains(text, line) {
						t.Errorf("text dump lacks %q", line)
					}
					for _, a := range tk.Awaiting {
						if !strings.Contains(text, names[a]) {
							t.Errorf("text dump lacks awaited task %q", names[a])
						}
					}
				}
			}
			if t.Failed() {
				t.Logf("text dump:\n%s", text)
			}
		})
	}
}

// TestDumpTaskLocals checks that --locals shows the arguments of a
// suspended coroutine's frames: the 5-deep chain ends in
// asyncio.sleep(3600).
func TestDumpTaskLocals(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.9", "3.12", "3.14")) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			out, errOut, code := runPyprof(t, "dump", "--json", "--locals", "-p", itoa(tg.Pid))
			if code != 0 {
				t.Fatalf("dump exited %d: %s", code, errOut)
			}
			var ds []tasksJSON
			if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
				t.Fatalf("bad json (%v): %s", err, out)
			}
			found := false
			for _, th := range ds[0].Threads {
				for _, tk := range th.Tasks {
					if len(tk.Frames) != 6 || tk.Frames[5].Function != "c1" {
						continue
					}
					found = true
					var delay string
					for _, l := range tk.Frames[0].Locals {
						if l.Name == "delay" && l.Argument {
							delay = l.Value
						}
					}
					if delay != "3600" {
						t.Errorf("sleep's delay: %q, want 3600 (locals %+v)", delay, tk.Frames[0].Locals)
					}
				}
			}
			if !found {
				t.Error("no task with the 5-deep chain")
			}
		})
	}
}

// TestRecordAsync records tasks.py with --async --idle: every pending
// task's logical stack (its chain under a "task NAME" frame, under the
// tasks that await it) is sampled, and the busy task runs under the task
// that awaits it, without the event loop's frames.
func TestRecordAsync(t *testing.T) {
	for _, py := range testpython.For(t, "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			view := testpython.TasksView(t, tg)
			file := filepath.Join(t.TempDir(), "async.txt")
			_, errOut, code := runPyprof(t, "record", "--async", "--idle", "-p", itoa(tg.Pid), "-d", "1.5", "-f", "collapsed", "-o", file)
			if code != 0 {
				t.Fatalf("record exited %d: %s", code, errOut)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			stacks := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if i := strings.LastIndexByte(line, ' '); i > 0 {
					stacks[line[:i]] = true
				}
			}
			for _, tasks := range view {
				for _, want := range logicalStacks(tasks) {
					if !stacks[want] {
						t.Errorf("no sample of %s", want)
					}
				}
			}
			if t.Failed() {
				t.Logf("profile:\n%s", data)
			}
		})
	}
}

// logicalStacks renders each task's logical stack, root first, as
// collapsed stacks show it.
func logicalStacks(tasks []testpython.ViewTask) []string {
	parent := map[uint64]int{}
	for i, tk := range tasks {
		for _, a := range tk.Awaiting {
			if _, ok := parent[a]; !ok {
				parent[a] = i
			}
		}
	}
	var out []string
	for i := range tasks {
		var parts []string
		seen := map[int]bool{}
		for c := i; !seen[c]; {
			seen[c] = true
			tk := tasks[c]
			var own []string
			name := "task " + tk.Name
			if tk.Name == "" {
				name = "task"
			}
			own = append(own, name+" (<asyncio>)")
			for j := len(tk.Frames) - 1; j >= 0; j-- {
				f := tk.Frames[j]
				own = append(own, fmt.Sprintf("%s (%s:%d)", f.Function, pyfile.Short(f.Filename), f.Line))
			}
			parts = append(own, parts...)
			p, ok := parent[tk.ID]
			if !ok {
				break
			}
			c = p
		}
		out = append(out, strings.Join(parts, ";"))
	}
	return out
}

// TestTopAsync: top --async charges the busy task's time to its logical
// stack, under the tasks that await it, and not to the event loop.
func TestTopAsync(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.11", "3.14")) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			out, stderr, code := runPyprof(t, "top", "--async", "-p", itoa(tg.Pid), "--once", "--delay", "2")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range []string{"spin (", "busy (", "task busy (<asyncio>)", "main1 ("} {
				if !strings.Contains(out, want) {
					t.Errorf("no row %q", want)
				}
			}
			if strings.Contains(out, "_run_once") {
				t.Error("the event loop's frames are in the table")
			}
			if t.Failed() {
				t.Logf("top:\n%s", out)
			}
		})
	}
}
