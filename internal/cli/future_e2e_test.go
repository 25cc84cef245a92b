package cli_test

import (
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestDumpFutureRelease dumps a 3.13 whose libpython claims to be 3.16, a
// release pyprof has no table for: the layout must come from the target's
// own _Py_DebugOffsets, read in the newest format that fits it (3.13's,
// after 3.15's and 3.14's), and the stacks must be the ones the target
// reports.
func TestDumpFutureRelease(t *testing.T) {
	for _, py := range testpython.For(t, "3.13") {
		if py.System {
			continue // FutureLibpython patches a shared libpython, which only pyenv builds have
		}
		t.Run(py.Name, func(t *testing.T) {
			lib := testpython.FutureLibpython(t, py, 3, 16, nil)
			tg := testpython.StartWithEnv(t, py, []string{"LD_PRELOAD=" + lib}, "stacks.py", "--shapes", "recursion,methods,generated")
			d := dump(t, tg.Pid)
			if d.PythonVersion != "3.16.0" || d.LayoutSource != "_Py_DebugOffsets" {
				t.Errorf("python %s from %q, want 3.16.0 from _Py_DebugOffsets", d.PythonVersion, d.LayoutSource)
			}
			if diff := testpython.DiffThreads(tg.Expect.Threads, toExpect(d)); diff != "" {
				t.Errorf("pyprof disagrees with the target's own view:\n%s", diff)
			}
		})
	}
}
