package asynctask

import (
	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/pyobj"
)

// maxAncestors bounds the tasks a logical stack goes up through.
const maxAncestors = 256

// Stacker builds tasks' logical stacks: a task's frames, then a frame
// "task NAME", then the frames of the task that awaits it and its own
// "task" frame, up to a task that no task awaits. It keeps the Functions
// of the "task" frames, so that a profile keyed by Function pointer sees
// one function per task name. It is not safe for concurrent use.
type Stacker struct {
	funcs map[string]*pyobj.Function
}

// TaskFile is the file name of the frames that stand for tasks, which run
// no code of their own.
const TaskFile = "<asyncio>"

// maxTaskFuncs bounds the task names a Stacker remembers.
const maxTaskFuncs = 1 << 14

// taskFrame returns the frame that stands for task t.
func (s *Stacker) taskFrame(t *Task) frames.Frame {
	name := "task " + t.Name
	if t.Name == "" {
		name = "task"
	}
	fn, ok := s.funcs[name]
	if !ok {
		if s.funcs == nil || len(s.funcs) >= maxTaskFuncs {
			s.funcs = map[string]*pyobj.Function{}
		}
		fn = &pyobj.Function{Name: name, ShortName: name, Filename: TaskFile}
		s.funcs[name] = fn
	}
	return frames.Frame{Function: fn}
}

// Stacks returns the logical stack of each task, innermost first, indexed
// as tasks. Where several tasks await one (a task shielded and awaited),
// its stack goes up through the first.
func (s *Stacker) Stacks(tasks []Task) [][]frames.Frame {
	index := make(map[uint64]int, len(tasks))
	for i := range tasks {
		index[tasks[i].Addr] = i
	}
	parent := make([]int, len(tasks))
	for i := range parent {
		parent[i] = -1
	}
	for i := range tasks {
		for _, a := range tasks[i].Awaiting {
			if c, ok := index[a]; ok && parent[c] < 0 && c != i {
				parent[c] = i
			}
		}
	}
	out := make([][]frames.Frame, len(tasks))
	// seen[c] == i+1 marks task c as met on the way up from task i.
	seen := make([]int, len(tasks))
	for i := range tasks {
		n := 0
		for c, up := i, 0; c >= 0 && seen[c] != i+1 && up < maxAncestors; c, up = parent[c], up+1 {
			seen[c] = i + 1
			n += len(tasks[c].Frames) + 1
		}
		st := make([]frames.Frame, 0, n)
		for c, up := i, 0; c >= 0 && up < maxAncestors && len(st) < n; c, up = parent[c], up+1 {
			st = append(st, tasks[c].Frames...)
			st = append(st, s.taskFrame(&tasks[c]))
		}
		out[i] = st
	}
	return out
}
