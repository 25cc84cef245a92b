package testpython

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// stacksShapes must match SHAPES in testdata/targets/stacks.py; listing them
// here catches a shape that silently stops being started.
var stacksShapes = []string{
	"main", "recursion", "mutual", "methods", "closure", "lambda", "generator",
	"listcomp", "dictcomp", "setcomp", "genexpr", "decorated", "init", "except",
	"finally", "multiline_arg", "multiline_callee", "generated", "asyncio",
	"unicode", "super", "raw_thread", "dummy_thread", "default_name", "locals",
}

// stacks27Shapes must match SHAPES in testdata/targets/stacks27.py, the
// Python 2 twin: no asyncio, and a classic (old-style) class.
var stacks27Shapes = []string{
	"main", "recursion", "mutual", "methods", "classic", "closure", "lambda",
	"generator", "listcomp", "dictcomp", "setcomp", "genexpr", "decorated",
	"except", "finally", "multiline_arg", "multiline_callee", "generated",
	"unicode", "super", "raw_thread", "dummy_thread", "default_name", "locals",
}

func stacksInterpreters(t *testing.T) []Interpreter {
	return For(t, DumpMinors...)
}

func TestStacks(t *testing.T) {
	for _, py := range stacksInterpreters(t) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := Start(t, py, "stacks.py")
			checkStacks(t, tg)
		})
	}
}

func checkStacks(t *testing.T, tg *Target) {
	exp := tg.Expect
	if exp.Version != tg.Interp.Version {
		t.Errorf("report version %q, interpreter %q", exp.Version, tg.Interp.Version)
	}
	if exp.Executable == "" {
		t.Error("report has no executable")
	}

	var shapes []string
	ids := map[uint64]bool{}
	for _, th := range exp.Threads {
		shapes = append(shapes, th.Shape)
		if ids[th.ThreadID] {
			t.Errorf("thread id %d reported twice", th.ThreadID)
		}
		ids[th.ThreadID] = true
		if len(th.Frames) < 2 {
			t.Errorf("%s: only %d frames", th.Shape, len(th.Frames))
			continue
		}
		if f := th.Frames[0]; f.Function != "park" || filepath.Base(f.Filename) != filepath.Base(tg.Script) {
			t.Errorf("%s: innermost frame is %s, want park in %s", th.Shape, frameString(f), filepath.Base(tg.Script))
		}
	}
	wantShapes := stacksShapes
	if tg.Interp.Major == 2 {
		wantShapes = stacks27Shapes
	}
	if !slices.Equal(shapes, wantShapes) {
		t.Errorf("shapes:\n got %v\nwant %v", shapes, wantShapes)
	}

	tids, err := Tasks(tg.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(tids) != len(exp.Threads) {
		t.Errorf("%d threads in /proc, %d in report", len(tids), len(exp.Threads))
	}
	if tg.Interp.Major > 3 || tg.Interp.Minor >= 8 {
		for _, th := range exp.Threads {
			if th.NativeID == nil || !slices.Contains(tids, *th.NativeID) {
				t.Errorf("%s: native id %v not among tasks %v", th.Shape, th.NativeID, tids)
			}
		}
	}

	names := map[string]func(string) bool{
		"main":         equals("MainThread"),
		"recursion":    equals("recurse"),
		"unicode":      equals("wörker-Ω"),
		"dummy_thread": func(s string) bool { return strings.HasPrefix(s, "Dummy-") },
		"default_name": func(s string) bool { return strings.HasPrefix(s, "Thread-") },
	}
	for shape, ok := range names {
		if th := exp.Shape(shape); th != nil && (th.Name == nil || !ok(*th.Name)) {
			t.Errorf("%s: name %s", shape, nameString(th.Name))
		}
	}
	if th := exp.Shape("raw_thread"); th != nil && th.Name != nil {
		t.Errorf("raw_thread: name %q, want null", *th.Name)
	}

	if th := exp.Shape("recursion"); th != nil {
		if n := countFunction(th, "recurse"); n < 60 {
			t.Errorf("recursion: %d recurse frames, want at least 60", n)
		}
	}
	if th := exp.Shape("generated"); th != nil {
		if f := findFrame(th, "generated_entry"); f == nil || f.Filename != "<generated>" || f.Line <= 700 {
			t.Errorf("generated: frame %+v, want generated_entry in <generated> past line 700", f)
		}
	}
	if th := exp.Shape("unicode"); th != nil {
		for _, fn := range []string{"función_ñ", "関数", "\U00020000"} {
			if findFrame(th, fn) == nil {
				t.Errorf("unicode: no frame for %s", fn)
			}
		}
	}
	if th := exp.Shape("asyncio"); th != nil {
		for _, fn := range []string{"aio_inner", "aio_middle", "aio_outer"} {
			if findFrame(th, fn) == nil {
				t.Errorf("asyncio: no frame for %s", fn)
			}
		}
	}
	checkLocals(t, exp, tg.Interp.Major == 2)
}

// checkLocals spot-checks the report of the locals shape against reprs known
// by heart, so that a target whose own reporting broke cannot pass the
// oracle tests by agreeing with a broken reader.
func checkLocals(t *testing.T, exp *Expect, py2 bool) {
	th := exp.Shape("locals")
	if th == nil {
		return
	}
	target, inner := findFrame(th, "locals_target"), findFrame(th, "inner")
	if target == nil || inner == nil {
		t.Fatalf("locals: frames missing: %+v", th.Frames)
	}
	byName := map[string]ExpectLocal{}
	for _, l := range target.Locals {
		byName[l.Name] = l
	}
	want := []ExpectLocal{
		{Name: "pos_a", Value: "1", Argument: true},
		{Name: "captured_arg", Value: "'captured'", Argument: true},
		{Name: "kw_only", Value: "'k'", Argument: true},
		{Name: "rest", Value: "('r1', 2)", Argument: true},
		{Name: "extra", Value: "{'extra_key': 3.5}", Argument: true},
		{Name: "v_digits_many_neg", Value: "-1" + strings.Repeat("0", 100)},
		{Name: "v_f_neg_zero", Value: "-0.0"},
		{Name: "v_s_escapes", Value: `'it\'s "quoted" \\ back\n\t\r\x01\x7f'`},
		{Name: "v_s_ucs4", Value: "'\U0001d11e clef'"},
		{Name: "v_s_surrogate", Value: `'\ud800'`},
		{Name: "v_d_deleted", Value: "{'k0': 0, 'k2': 2, 'k3': 3, 'k4': 4, 'k7': 7, 'k8': 8, 'k9': 9}"},
		{Name: "cell_v", Value: "[1, 2]"},
	}
	if py2 {
		// 2.7 has no keyword-only arguments; its str is bytes, its
		// unicode prints with a u prefix and its long with an L suffix.
		want = []ExpectLocal{
			{Name: "pos_a", Value: "1", Argument: true},
			{Name: "captured_arg", Value: "'captured'", Argument: true},
			{Name: "rest", Value: "('r1', 2)", Argument: true},
			{Name: "extra", Value: "{'extra_key': 3.5}", Argument: true},
			{Name: "v_int_min", Value: "-9223372036854775808"},
			{Name: "v_long_zero", Value: "0L"},
			{Name: "v_digits_many_neg", Value: "-1" + strings.Repeat("0", 100) + "L"},
			{Name: "v_f_neg_zero", Value: "-0.0"},
			{Name: "v_s_escapes", Value: `'it\'s "quoted" \\ back\n\t\r\x01\x7f'`},
			{Name: "v_s_high", Value: `'\xff\x80caf\xc3\xa9'`},
			{Name: "v_u_ucs4", Value: `u'\U0001d11e clef'`},
			{Name: "v_u_surrogate", Value: `u'\ud800'`},
			{Name: "v_set_empty", Value: "set([])"},
			{Name: "v_frozenset", Value: "frozenset([1, 2])"},
			{Name: "cell_v", Value: "[1, 2]"},
		}
	}
	for _, w := range want {
		g, ok := byName[w.Name]
		if !ok || g.Value != w.Value || g.Argument != w.Argument {
			t.Errorf("locals_target local %s: got %+v, want %+v", w.Name, g, w)
		}
	}
	if l := byName["v_object"]; !strings.HasPrefix(l.Value, "<object at 0x") {
		t.Errorf("v_object rendered %q", l.Value)
	}
	if l := byName["v_s_long"]; len(l.Value) != 302 || MatchValue(l.Value, l.Value) {
		t.Errorf("v_s_long: %d characters, and must only match when truncated", len(l.Value))
	}
	if len(target.Locals) < 60 {
		t.Errorf("locals_target: %d locals", len(target.Locals))
	}
	var innerNames []string
	for _, l := range inner.Locals {
		innerNames = append(innerNames, l.Name)
	}
	if !slices.Equal(innerNames, []string{"inner_local", "captured_arg", "cell_v"}) {
		t.Errorf("inner locals %v", innerNames)
	}
}

func TestStacksSubset(t *testing.T) {
	py := stacksInterpreters(t)[0]
	tg := Start(t, py, "stacks.py", "--shapes", "recursion,locals", "--recursion", "65")
	var shapes []string
	for _, th := range tg.Expect.Threads {
		shapes = append(shapes, th.Shape)
	}
	if !slices.Equal(shapes, []string{"main", "recursion", "locals"}) {
		t.Errorf("shapes %v", shapes)
	}
	if n := countFunction(tg.Expect.Shape("recursion"), "recurse"); n != 66 {
		t.Errorf("%d recurse frames, want 66", n)
	}
}

func TestBusy(t *testing.T) {
	for _, py := range stacksInterpreters(t) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--depth", "30", "--threads", "2"}
			want := []string{"spin", "spin", "spin"}
			if py.Minor%2 == 1 {
				// Half of the versions cover the split mode, to keep the
				// CPU these spinners burn down.
				args = []string{"--split", "60,30,10", "--threads", "1"}
				want = []string{"split", "split"}
			}
			tg := Start(t, py, "busy.py", args...)
			var shapes []string
			for _, th := range tg.Expect.Threads {
				shapes = append(shapes, th.Shape)
			}
			if !slices.Equal(shapes, want) {
				t.Errorf("shapes %v, want %v", shapes, want)
			}
			if name := tg.Expect.Threads[0].Name; name == nil || *name != "MainThread" {
				t.Errorf("first thread is %s, want MainThread", nameString(name))
			}
		})
	}
}

func TestStartScriptExits(t *testing.T) {
	py := stacksInterpreters(t)[0]
	script := filepath.Join(t.TempDir(), "exits.py")
	if err := os.WriteFile(script, []byte("import sys\nsys.exit('bye')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Start must fail, and say why; run it against a recorder.
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(rec, py, script)
	}()
	<-done
	if !rec.fatal || !strings.Contains(rec.msg, "bye") {
		t.Errorf("Start on an exiting script: fatal=%v, message %q", rec.fatal, rec.msg)
	}
}

// recorder stands in for a testing.TB so that the failure paths of helpers
// can be tested; Fatal ends the goroutine as the real one does.
type recorder struct {
	testing.TB
	fatal bool
	msg   string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.fatal = true
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestParseRequire(t *testing.T) {
	found := []Interpreter{
		{Path: "/p/3.9/python3.9", Major: 3, Minor: 9},
		{Path: SystemPython, Major: 3, Minor: 11, System: true},
	}
	for _, tc := range []struct {
		env       string
		want      []string
		nFatal    int
		nLog      int
		badParser bool
	}{
		{env: "", want: []string{"3.6", "3.9"}, nLog: 1},
		{env: "all", want: []string{"3.6", "3.9"}, nFatal: 1},
		{env: "3.6", want: []string{"3.6", "3.7", "3.9"}, nFatal: 1, nLog: 1},
		{env: "3.7, 3.8", want: []string{"3.6", "3.9"}, nLog: 1},
		{env: "3,11", badParser: true},
		{env: "all", want: []string{"3.9", "3.11"}},
	} {
		req, err := parseRequire(tc.env)
		if (err != nil) != tc.badParser {
			t.Errorf("parseRequire(%q): %v", tc.env, err)
			continue
		}
		if err != nil {
			continue
		}
		fatal, logs := checkMissing(tc.want, found, req)
		if len(fatal) != tc.nFatal || len(logs) != tc.nLog {
			t.Errorf("env %q want %v: fatal %q, logs %q", tc.env, tc.want, fatal, logs)
		}
	}

	// Without the system build, "all" and "system" must fail for 3.11.
	for _, env := range []string{"all", "system"} {
		req, _ := parseRequire(env)
		fatal, _ := checkMissing([]string{"3.9"}, found[:1], req)
		if env == "system" && len(fatal) != 0 {
			t.Errorf("%s without 3.11 wanted: fatal %q", env, fatal)
		}
		fatal, _ = checkMissing([]string{"3.11"}, found[:1], req)
		if len(fatal) == 0 {
			t.Errorf("%s: missing %s not fatal", env, SystemPython)
		}
	}
}

func TestDiffThreads(t *testing.T) {
	name := "worker"
	long := "'" + strings.Repeat("é", 250) + "'"
	want := []ExpectThread{{
		ThreadID: 1, Name: &name, Shape: "s",
		Frames: []ExpectFrame{
			{Function: "park", Filename: "a.py", Line: 3},
			{Function: "f", Filename: "a.py", Line: 9, Locals: []ExpectLocal{
				{Name: "x", Value: "1", Argument: true},
				{Name: "s", Value: long},
			}},
		},
	}}
	got := []ExpectThread{{
		ThreadID: 1, Name: &name,
		Frames: []ExpectFrame{
			{Function: "park", Filename: "a.py", Line: 3},
			{Function: "f", Filename: "a.py", Line: 9, Locals: []ExpectLocal{
				{Name: "x", Value: "1", Argument: true},
				{Name: "s", Value: string([]rune(long)[:197]) + "..."},
			}},
		},
	}}
	if d := DiffThreads(want, got); d != "" {
		t.Errorf("equal threads differ:\n%s", d)
	}

	got[0].Frames[1].Line = 10
	got[0].Frames[1].Locals[1].Value = long
	got[0].Name = nil
	got = append(got, ExpectThread{ThreadID: 2})
	d := DiffThreads(want, got)
	for _, s := range []string{"name: want \"worker\", got null", "frame 1: want f (a.py:9), got f (a.py:10)", "local s: want", "thread 2 null: unexpected"} {
		if !strings.Contains(d, s) {
			t.Errorf("diff lacks %q:\n%s", s, d)
		}
	}

	got[0].Frames = got[0].Frames[1:]
	if d := DiffThreads(want, got[:1]); !strings.Contains(d, "1 frames, want 2") {
		t.Errorf("diff of stacks of different depth:\n%s", d)
	}
}

func equals(want string) func(string) bool {
	return func(s string) bool { return s == want }
}

func countFunction(th *ExpectThread, fn string) int {
	if th == nil {
		return 0
	}
	n := 0
	for _, f := range th.Frames {
		if f.Function == fn {
			n++
		}
	}
	return n
}

// findFrame matches the last component of the qualified name, so one check
// covers co_name (before 3.11) and co_qualname.
func findFrame(th *ExpectThread, fn string) *ExpectFrame {
	for i, f := range th.Frames {
		if f.Function == fn || strings.HasSuffix(f.Function, "."+fn) {
			return &th.Frames[i]
		}
	}
	return nil
}

// TestStartInNamespace checks the container harness: the target is its
// namespace's init, runs a copy of the interpreter that the host cannot
// see, and its native ids map to threads of the host's /proc. 3.11 has a
// pyenv build with a shared libpython and Debian's static one; 3.13 to
// 3.15 have sid's, whose copy loads the prefix's C library.
func TestStartInNamespace(t *testing.T) {
	for _, py := range For(t, "3.11", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := StartInNamespace(t, py, "nogil.py")
			if tg.OwnPid != 1 || tg.Pid == 1 || tg.Expect.Pid != tg.OwnPid {
				t.Errorf("pid %d outside, %d inside, reported %d", tg.Pid, tg.OwnPid, tg.Expect.Pid)
			}
			exe := tg.Expect.Executable
			if !strings.HasPrefix(exe, tg.Root+"/") {
				t.Errorf("runs %s, not a copy under %s", exe, tg.Root)
			}
			if _, err := os.Stat(exe); !os.IsNotExist(err) {
				t.Errorf("%s is visible outside the namespace: %v", exe, err)
			}
			tids, err := Tasks(tg.Pid)
			if err != nil {
				t.Fatal(err)
			}
			if len(tids) != 2 || len(tg.Expect.Threads) != 2 {
				t.Fatalf("tasks %v, report %+v", tids, tg.Expect.Threads)
			}
			for _, th := range tg.Expect.Threads {
				host, err := tg.HostTID(*th.NativeID)
				if err != nil || !slices.Contains(tids, host) {
					t.Errorf("%s: native id %d is %d outside (%v), not among %v", th.Shape, *th.NativeID, host, err, tids)
				}
				if (th.Shape == "park") != (host == tg.Pid) {
					t.Errorf("%s: %d outside; the main thread parks and has the pid %d", th.Shape, host, tg.Pid)
				}
			}
		})
	}
}
