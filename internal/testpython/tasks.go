package testpython

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ViewTask is one asyncio task as testdata/targets/tasks.py sees it from
// inside its loop, and as tests render what pyprof read.
type ViewTask struct {
	ID       uint64        `json:"id"`
	Name     string        `json:"name"`
	Running  bool          `json:"running"`
	Awaiting []uint64      `json:"awaiting"`
	Frames   []ExpectFrame `json:"frames"`
}

// TasksView reads the tasks of tasks.py's report, by thread ident.
func TasksView(t testing.TB, tg *Target) map[uint64][]ViewTask {
	t.Helper()
	for _, line := range tg.Stdout() {
		if !strings.HasPrefix(line, ReadyPrefix) {
			continue
		}
		var rep struct {
			Tasks map[string][]ViewTask `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, ReadyPrefix)), &rep); err != nil {
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

func frameDiff(want, got []ExpectFrame) string {
	eq := len(want) == len(got)
	for i := 0; eq && i < len(want); i++ {
		eq = want[i].Function == got[i].Function && want[i].Filename == got[i].Filename && want[i].Line == got[i].Line
	}
	if eq {
		return ""
	}
	s := func(fs []ExpectFrame) string {
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "\n\t\t%s (%s:%d)", f.Function, f.Filename, f.Line)
		}
		return b.String()
	}
	return "\n\tgot:" + s(got) + "\n\twant:" + s(want)
}
