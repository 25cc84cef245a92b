package target

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyversions"
)

var recordDebugOffsets = flag.Bool("record-debugoffsets", false, "record pyversions/testdata/debugoffsets from a live 3.13 interpreter")

// allowMinor lets Attach read minor for the rest of the test even if
// pyversions does not support it yet: the point of these tests is the
// layout, not the stack walk.
func allowMinor(t *testing.T, minor string) {
	old := extraMinors
	extraMinors = append(append([]string(nil), old...), minor)
	t.Cleanup(func() { extraMinors = old })
}

func generatedLayout(t *testing.T, minor string) pyversions.Layout {
	t.Helper()
	for _, l := range pyversions.Generated() {
		if l.Version.MinorString() == minor {
			return l
		}
	}
	t.Fatalf("no generated layout for %s", minor)
	return pyversions.Layout{}
}

// layoutField returns the Layout field named "Group.Member".
func layoutField(t *testing.T, l *pyversions.Layout, name string) int64 {
	t.Helper()
	group, member, _ := strings.Cut(name, ".")
	f := reflect.ValueOf(l).Elem().FieldByName(group)
	if f.IsValid() {
		f = f.FieldByName(member)
	}
	if !f.IsValid() {
		t.Fatalf("Layout has no field %s", name)
	}
	return f.Int()
}

// TestDebugOffsetsOnRealInterpreter attaches to a live 3.13 and checks that
// the layout comes from its _Py_DebugOffsets, and that every offset the
// descriptor provides equals what the generated table has from the same
// build's DWARF.
func TestDebugOffsetsOnRealInterpreter(t *testing.T) {
	for _, py := range testpython.For(t, "3.13") {
		if py.System {
			continue
		}
		t.Run(py.Name, func(t *testing.T) {
			if !pyversions.IsSupported(pyversions.Version{Major: py.Major, Minor: py.Minor}) {
				allowMinor(t, py.MinorVersion())
			}
			tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
			p, err := Attach(tg.Pid, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.LayoutSource != LayoutDebugOffsets || p.DebugOffsets == nil {
				t.Fatalf("layout source %q, want %q", p.LayoutSource, LayoutDebugOffsets)
			}
			d := p.DebugOffsets
			if d.Version.String() != tg.Expect.Version || d.Format.MinorString() != "3.13" || d.FreeThreaded {
				t.Errorf("descriptor of %s in format %s (free-threaded %v), target says %s",
					d.Version, d.Format.MinorString(), d.FreeThreaded, tg.Expect.Version)
			}
			if *recordDebugOffsets {
				recordDescriptor(t, p, py)
			}
			gen := generatedLayout(t, "3.13")
			rows := []struct{ path, field string }{
				{"runtime_state.size", "Runtime.Size"},
				{"runtime_state.interpreters_head", "Runtime.InterpretersHead"},
				{"interpreter_state.size", "Interp.Size"},
				{"interpreter_state.next", "Interp.Next"},
				{"interpreter_state.threads_head", "Interp.ThreadsHead"},
				{"interpreter_state.imports_modules", "Interp.Modules"},
				{"interpreter_state.ceval_gil", "Interp.CevalGIL"},
				{"interpreter_state.gil_runtime_state_holder", "GIL.LastHolder"},
				{"interpreter_state.gil_runtime_state_locked", "GIL.Locked"},
				{"thread_state.size", "Thread.Size"},
				{"thread_state.next", "Thread.Next"},
				{"thread_state.interp", "Thread.Interp"},
				{"thread_state.current_frame", "Thread.CurrentFrame"},
				{"thread_state.thread_id", "Thread.ThreadID"},
				{"thread_state.native_thread_id", "Thread.NativeThreadID"},
				{"thread_state.datastack_chunk", "Thread.DatastackChunk"},
				{"interpreter_frame.size", "IFrame.Size"},
				{"interpreter_frame.previous", "IFrame.Previous"},
				{"interpreter_frame.executable", "IFrame.Code"},
				{"interpreter_frame.instr_ptr", "IFrame.Instr"},
				{"interpreter_frame.localsplus", "IFrame.Localsplus"},
				{"interpreter_frame.owner", "IFrame.Owner"},
				{"code_object.size", "Code.Size"},
				{"code_object.filename", "Code.Filename"},
				{"code_object.name", "Code.Name"},
				{"code_object.qualname", "Code.Qualname"},
				{"code_object.linetable", "Code.Linetable"},
				{"code_object.firstlineno", "Code.Firstlineno"},
				{"code_object.argcount", "Code.Argcount"},
				{"code_object.localsplusnames", "Code.Localsplusnames"},
				{"code_object.localspluskinds", "Code.Localspluskinds"},
				{"code_object.co_code_adaptive", "Code.CodeAdaptive"},
				{"pyobject.ob_type", "Object.Type"},
				{"tuple_object.ob_size", "Object.Size"},
				{"type_object.tp_name", "Type.Name"},
				{"type_object.tp_flags", "Type.Flags"},
				{"tuple_object.ob_item", "Tuple.Item"},
				{"list_object.ob_item", "List.Item"},
				{"dict_object.ma_keys", "Dict.Keys"},
				{"dict_object.ma_values", "Dict.Values"},
				{"float_object.ob_fval", "Float.Fval"},
				{"long_object.lv_tag", "Long.Tag"},
				{"long_object.ob_digit", "Long.Digit"},
				{"bytes_object.ob_sval", "Bytes.Sval"},
				{"unicode_object.state", "Unicode.State"},
				{"unicode_object.length", "Unicode.Length"},
				{"unicode_object.asciiobject_size", "Unicode.ASCIISize"},
			}
			got := map[string]pyversions.DebugOffsetsOverride{}
			for _, o := range d.Overrides() {
				got[o.Path] = o
			}
			for _, row := range rows {
				t.Run(row.path, func(t *testing.T) {
					o, ok := got[row.path]
					if !ok {
						t.Fatalf("descriptor provides no %s", row.path)
					}
					delete(got, row.path)
					want := layoutField(t, &gen, row.field)
					if o.Field != row.field || o.Value != want {
						t.Errorf("%s gives %s = %d, generated table has %s = %d", row.path, o.Field, o.Value, row.field, want)
					}
					if used := layoutField(t, p.Config.Layout, row.field); used != o.Value {
						t.Errorf("reader uses %s = %d, descriptor says %d", row.field, used, o.Value)
					}
				})
			}
			for path, o := range got {
				t.Errorf("descriptor also provides %s (%s = %d); add a row", path, o.Field, o.Value)
			}
			// Everything else comes from the same table, so the whole
			// layout must be the generated one.
			if !reflect.DeepEqual(*p.Config.Layout, gen) {
				t.Errorf("layout differs from the generated 3.13 table:\n got: %+v\nwant: %+v", *p.Config.Layout, gen)
			}
		})
	}
}

// recordDescriptor saves the bytes at the target's _PyRuntime that the
// decoder reads, for pyversions' hermetic tests and fuzz seeds.
func recordDescriptor(t *testing.T, p *Process, py testpython.Interpreter) {
	b := make([]byte, pyversions.DebugOffsetsMaxSize())
	if _, err := p.Proc.ReadAt(b, int64(p.Reader.Runtime())); err != nil {
		t.Fatal(err)
	}
	root, err := testpython.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pyversions", "testdata", "debugoffsets")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, py.Name+".bin")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", name)
}

// TestDebugOffsetsFutureRelease runs a 3.13 whose libpython claims to be
// 3.15, a minor pyprof has no table for: the descriptor must admit it, in
// the 3.13 format, after the newer 3.14 format was tried and rejected.
func TestDebugOffsetsFutureRelease(t *testing.T) {
	for _, py := range testpython.For(t, "3.13") {
		if py.System {
			continue
		}
		t.Run(py.Name, func(t *testing.T) {
			lib := testpython.FutureLibpython(t, py, 3, 15, nil)
			tg := testpython.StartWithEnv(t, py, []string{"LD_PRELOAD=" + lib}, "stacks.py", "--shapes", "recursion")
			p, err := Attach(tg.Pid, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Binary != lib {
				t.Fatalf("interpreter found in %s, not the patched %s", p.Binary, lib)
			}
			if p.Version.String() != "3.15.0" || p.LayoutSource != LayoutDebugOffsets {
				t.Fatalf("python %s from %s layout", p.Version, p.LayoutSource)
			}
			if f := p.DebugOffsets.Format.MinorString(); f != "3.13" {
				t.Errorf("decoded with the %s format, want 3.13", f)
			}
			want := generatedLayout(t, "3.13")
			want.Version = p.Version
			if !reflect.DeepEqual(*p.Config.Layout, want) {
				t.Errorf("layout differs from 3.13's:\n got: %+v\nwant: %+v", *p.Config.Layout, want)
			}
			if p.Reader.Interpreter() == 0 {
				t.Error("no interpreter located")
			}
		})
	}
}
