package cli_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// dumpJSON mirrors the --json contract from the reader's side, so that the
// test fails if the output drifts from it.
type dumpJSON struct {
	Pid           int    `json:"pid"`
	NamespacePid  int    `json:"namespace_pid"`
	CommandLine   string `json:"command_line"`
	PythonVersion string `json:"python_version"`
	Executable    string `json:"executable"`
	LayoutSource  string `json:"layout_source"`
	Threads       []struct {
		ThreadID uint64  `json:"thread_id"`
		NativeID int     `json:"native_id"`
		Name     *string `json:"name"`
		Active   bool    `json:"active"`
		OwnsGIL  bool    `json:"owns_gil"`
		Frames   []struct {
			Function string                   `json:"function"`
			Filename string                   `json:"filename"`
			Line     int                      `json:"line"`
			Locals   []testpython.ExpectLocal `json:"locals"`
		} `json:"frames"`
	} `json:"threads"`
}

func runPyprof(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testpython.BuildPyprof(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func dump(t *testing.T, pid int, args ...string) *dumpJSON {
	t.Helper()
	out, errOut, code := runPyprof(t, append([]string{"dump", "--json", "-p", itoa(pid)}, args...)...)
	if code != 0 {
		t.Fatalf("pyprof dump exited %d: %s", code, errOut)
	}
	var ds []dumpJSON
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("bad json: %v\n%s", err, out)
	}
	if len(ds) != 1 {
		t.Fatalf("want one process, got %d", len(ds))
	}
	return &ds[0]
}

func itoa(i int) string { return strconv.Itoa(i) }

// toExpect converts pyprof's view into the report's shape for DiffThreads.
func toExpect(d *dumpJSON) []testpython.ExpectThread {
	var out []testpython.ExpectThread
	for _, th := range d.Threads {
		et := testpython.ExpectThread{ThreadID: th.ThreadID, Name: th.Name}
		for _, f := range th.Frames {
			et.Frames = append(et.Frames, testpython.ExpectFrame{Function: f.Function, Filename: f.Filename, Line: f.Line, Locals: f.Locals})
		}
		out = append(out, et)
	}
	return out
}

// TestDumpMatchesTargetsOwnView is the oracle test: every thread of a target
// parked in many stack shapes must be read exactly as the target itself
// reported it (sys._current_frames), with locals equal to repr() inside the
// target, on every supported interpreter present.
func TestDumpMatchesTargetsOwnView(t *testing.T) {
	for _, py := range testpython.For(t, testpython.DumpMinors...) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := testpython.Start(t, py, "stacks.py")
			d := dump(t, tg.Pid, "--locals")
			if diff := testpython.DiffThreads(tg.Expect.Threads, toExpect(d)); diff != "" {
				t.Errorf("pyprof disagrees with the target's own view:\n%s", diff)
			}
			if d.Pid != tg.Pid || d.NamespacePid != 0 || d.PythonVersion != tg.Expect.Version {
				t.Errorf("header: pid %d (namespace pid %d) version %s, want %d (none) %s", d.Pid, d.NamespacePid, d.PythonVersion, tg.Pid, tg.Expect.Version)
			}
			// From 3.13 the target describes its own layout.
			wantSource := "generated"
			if py.Major == 3 && py.Minor >= 13 {
				wantSource = "_Py_DebugOffsets"
			}
			if d.LayoutSource != wantSource {
				t.Errorf("layout source %q, want %q", d.LayoutSource, wantSource)
			}
			exe, _ := filepath.EvalSymlinks(tg.Expect.Executable)
			if d.Executable != exe {
				t.Errorf("executable %q, want %q", d.Executable, exe)
			}
			if !strings.Contains(d.CommandLine, filepath.Base(tg.Script)) {
				t.Errorf("command line %q", d.CommandLine)
			}
			// The OS thread ids the target reported (3.8+) must match.
			native := map[uint64]int{}
			for _, th := range d.Threads {
				native[th.ThreadID] = th.NativeID
				if th.Active {
					t.Errorf("thread %d is parked but reported active", th.NativeID)
				}
			}
			for _, w := range tg.Expect.Threads {
				if w.NativeID != nil && native[w.ThreadID] != *w.NativeID {
					t.Errorf("thread %d [%s]: native id %d, want %d", w.ThreadID, w.Shape, native[w.ThreadID], *w.NativeID)
				}
			}
			if locals := tg.Expect.Shape("locals"); locals == nil || len(locals.Frames) < 3 {
				t.Fatal("report has no locals thread")
			}
		})
	}
}

var threadLine = regexp.MustCompile(`^Thread (\d+) \((idle|active)(, gil)?\)(: "(.*)")?$`)

// TestDumpText checks the text layout: a process header, then one line per
// thread and one per frame. 2.7 is there for its own reprs.
func TestDumpText(t *testing.T) {
	// The layout is the same for every build of a version.
	for _, py := range testpython.OnePerMinor(testpython.For(t, "2.7", "3.11")) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion,locals")
			out, errOut, code := runPyprof(t, "dump", "-p", itoa(tg.Pid), "--locals")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if want := "Process " + itoa(tg.Pid) + ": "; !strings.HasPrefix(lines[0], want) {
				t.Errorf("first line %q, want prefix %q", lines[0], want)
			}
			if !strings.HasPrefix(lines[1], "Python v"+tg.Expect.Version+" (") {
				t.Errorf("second line %q", lines[1])
			}
			names := map[string]bool{}
			for _, l := range lines {
				if m := threadLine.FindStringSubmatch(l); m != nil {
					names[m[5]] = true
				}
			}
			for _, n := range []string{"MainThread", "recurse", "locals"} {
				if !names[n] {
					t.Errorf("no thread line for %q in:\n%s", n, out)
				}
			}
			wants := []string{"    park (", "        Arguments:", "        Locals:", "            v_l_nested: [1, [2, [3, [4]]]]"}
			if py.Major == 2 {
				wants = append(wants, "            v_long_small: 7L\n", "            v_u_latin1: u'caf\\xe9'\n", "            v_set_ints: set([1, 2, 3])\n")
			}
			for _, want := range wants {
				if !strings.Contains(out, "\n"+want) {
					t.Errorf("output lacks a line starting %q", want)
				}
			}
		})
	}
}

// TestDumpActiveAndGIL checks the thread states on every interpreter: a
// thread spinning in Python is active and holds the GIL (the GIL-holder
// offsets differ per version and patch), while a parked one is idle.
func TestDumpActiveAndGIL(t *testing.T) {
	for _, py := range testpython.For(t, testpython.DumpMinors...) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := testpython.Start(t, py, "busy.py")
			d := dump(t, tg.Pid)
			holders := 0
			for _, th := range d.Threads {
				if th.OwnsGIL {
					holders++
				}
			}
			main := d.Threads[len(d.Threads)-1]
			for _, th := range d.Threads {
				if th.NativeID == tg.Pid {
					main = th
				}
			}
			if !main.Active || !main.OwnsGIL || holders != 1 {
				t.Errorf("spinning main thread: active=%v gil=%v; %d holders", main.Active, main.OwnsGIL, holders)
			}
		})
	}
}
