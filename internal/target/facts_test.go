package target

import (
	"fmt"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestProcessesShareFacts attaches two processes of one interpreter
// binary, as a gunicorn master and its worker are: their readers share one
// set of facts of the build, worked out once, whether the layout is the
// generated one or the target's own _Py_DebugOffsets (3.13+).
func TestProcessesShareFacts(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "2.7", "3.9", "3.11", "3.13", "3.14")) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			var procs []*Process
			for range 2 {
				tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
				p, err := Attach(tg.Pid, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				procs = append(procs, p)
			}
			a, b := procs[0].Config.Facts, procs[1].Config.Facts
			if a == nil || a != b {
				t.Errorf("facts %p and %p, want one shared (layout %s)", a, b, procs[0].LayoutSource)
			}
			if a != nil && a.Layout != procs[1].Config.Layout {
				t.Errorf("the second reader's layout is not its facts'")
			}
		})
	}
}

// TestSourceNames: the names dump prints (in --json too) for how the
// interpreter was located and where its layout came from.
func TestSourceNames(t *testing.T) {
	for _, tc := range []struct {
		got  fmt.Stringer
		want string
	}{
		{LocatedBySymbol, "symbol"},
		{LocatedByScan, "scan"},
		{LayoutGenerated, "generated"},
		{LayoutDebugOffsets, "_Py_DebugOffsets"},
	} {
		if tc.got.String() != tc.want {
			t.Errorf("%#v prints %q, want %q", tc.got, tc.got.String(), tc.want)
		}
	}
}
