package asynctask

import (
	"testing"

	"github.com/pyprof/pyprof/pyversions"
)

// TestLayouts: the generated table has a row for every minor read, 3.7 to
// 3.15; a task's members lie inside its size; each minor has exactly the
// frame members its frames have (a frame object up to 3.10, an embedded
// interpreter frame from 3.11); a later minor reads as the last row.
func TestLayouts(t *testing.T) {
	for m := 7; m <= 15; m++ {
		a, err := layoutFor(pyversions.Version{Major: 3, Minor: m}, &pyversions.Layout{})
		if err != nil || a.minor != m {
			t.Errorf("3.%d: %+v, %v", m, a, err)
			continue
		}
		for _, off := range []int64{a.futLoop, a.futCallback0, a.futCallbacks, a.futState, a.taskFutWaiter, a.taskCoro, a.taskName, a.taskNode} {
			if off+8 > a.taskSize {
				t.Errorf("3.%d: member at %d outside a task of %d bytes", m, off, a.taskSize)
			}
		}
		frameObj := a.genFrame >= 0 && a.frameValuestack >= 0 && a.frameLasti >= 0 && (a.frameStacktop >= 0) != (a.frameStackdepth >= 0)
		iframe := a.genIFrame >= 0 && a.genFrameState >= 0 && (a.iframeStacktop >= 0) != (a.iframeStackpointer >= 0)
		if frameObj == iframe || frameObj != (m <= 10) {
			t.Errorf("3.%d: frame members %+v", m, a)
		}
		if (a.taskName < 0) != (m == 7) || (a.taskNode >= 0) != (m >= 14) || (a.tstateTasksHead >= 0) != (m >= 14) {
			t.Errorf("3.%d: task name %d, node %d, thread task list %d", m, a.taskName, a.taskNode, a.tstateTasksHead)
		}
	}
	last, _ := layoutFor(pyversions.Version{Major: 3, Minor: 15}, &pyversions.Layout{})
	later, _ := layoutFor(pyversions.Version{Major: 3, Minor: 16}, &pyversions.Layout{})
	if later.minor != 15 || *later != *last {
		t.Errorf("3.16 reads as %+v", later)
	}
	for _, v := range []pyversions.Version{{Major: 3, Minor: 6}, {Major: 2, Minor: 7}} {
		if _, err := layoutFor(v, &pyversions.Layout{}); err == nil {
			t.Errorf("%s: no error", v)
		}
	}
}

// TestRunningLoop313: 3.13 keeps its running loop right after the
// PyThreadState, whose size the patch release gives; unknown, it is not
// read.
func TestRunningLoop313(t *testing.T) {
	for _, size := range []int64{304, 312, 0} {
		l := &pyversions.Layout{}
		l.Thread.Size = size
		a, _ := layoutFor(pyversions.Version{Major: 3, Minor: 13}, l)
		want := size
		if size == 0 {
			want = absent
		}
		if a.tstateRunningLoop != want {
			t.Errorf("thread state of %d bytes: running loop at %d", size, a.tstateRunningLoop)
		}
	}
}
