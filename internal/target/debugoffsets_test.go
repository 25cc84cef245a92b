package target

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/layoutgen"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyversions"
)

var recordDebugOffsets = flag.Bool("record-debugoffsets", false, "record pyversions/testdata/debugoffsets from a live 3.13 interpreter")

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

// TestDebugOffsetsOnRealInterpreter attaches to every live 3.13+ and checks
// that the layout comes from its _Py_DebugOffsets, and that every offset
// the descriptor provides equals what the compiler says for the same
// release: the generated table where it was read from that release, else
// the release's own -dev headers (Debian's builds).
func TestDebugOffsetsOnRealInterpreter(t *testing.T) {
	for _, py := range testpython.For(t, "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
			exact := exactLayout(t, py, tg.Expect.Version)
			p, err := Attach(tg.Pid, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.LayoutSource != LayoutDebugOffsets || p.DebugOffsets == nil {
				t.Fatalf("layout source %q, want %q", p.LayoutSource, LayoutDebugOffsets)
			}
			d := p.DebugOffsets
			if d.Version.String() != tg.Expect.Version || d.Format.MinorString() != py.MinorVersion() || d.FreeThreaded {
				t.Errorf("descriptor of %s in format %s (free-threaded %v), target says %s",
					d.Version, d.Format.MinorString(), d.FreeThreaded, tg.Expect.Version)
			}
			if *recordDebugOffsets {
				recordDescriptor(t, p, py)
			}
			rows := []struct {
				path, field string
				from        string // the first minor whose descriptor has it
			}{
				{"runtime_state.size", "Runtime.Size", ""},
				{"runtime_state.interpreters_head", "Runtime.InterpretersHead", ""},
				{"interpreter_state.size", "Interp.Size", ""},
				{"interpreter_state.next", "Interp.Next", ""},
				{"interpreter_state.threads_head", "Interp.ThreadsHead", ""},
				{"interpreter_state.imports_modules", "Interp.Modules", ""},
				{"interpreter_state.ceval_gil", "Interp.CevalGIL", ""},
				{"interpreter_state.gil_runtime_state_holder", "GIL.LastHolder", ""},
				{"interpreter_state.gil_runtime_state_locked", "GIL.Locked", ""},
				{"thread_state.size", "Thread.Size", ""},
				{"thread_state.next", "Thread.Next", ""},
				{"thread_state.interp", "Thread.Interp", ""},
				{"thread_state.current_frame", "Thread.CurrentFrame", ""},
				{"thread_state.thread_id", "Thread.ThreadID", ""},
				{"thread_state.native_thread_id", "Thread.NativeThreadID", ""},
				{"thread_state.datastack_chunk", "Thread.DatastackChunk", ""},
				{"thread_state.base_frame", "Thread.BaseFrame", "3.15"},
				{"thread_state.holds_gil", "Thread.HoldsGIL", "3.15"},
				{"interpreter_frame.size", "IFrame.Size", ""},
				{"interpreter_frame.previous", "IFrame.Previous", ""},
				{"interpreter_frame.executable", "IFrame.Code", ""},
				{"interpreter_frame.instr_ptr", "IFrame.Instr", ""},
				{"interpreter_frame.localsplus", "IFrame.Localsplus", ""},
				{"interpreter_frame.owner", "IFrame.Owner", ""},
				{"code_object.size", "Code.Size", ""},
				{"code_object.filename", "Code.Filename", ""},
				{"code_object.name", "Code.Name", ""},
				{"code_object.qualname", "Code.Qualname", ""},
				{"code_object.linetable", "Code.Linetable", ""},
				{"code_object.firstlineno", "Code.Firstlineno", ""},
				{"code_object.argcount", "Code.Argcount", ""},
				{"code_object.localsplusnames", "Code.Localsplusnames", ""},
				{"code_object.localspluskinds", "Code.Localspluskinds", ""},
				{"code_object.co_code_adaptive", "Code.CodeAdaptive", ""},
				{"pyobject.ob_type", "Object.Type", ""},
				{"tuple_object.ob_size", "Object.Size", ""},
				{"type_object.tp_name", "Type.Name", ""},
				{"type_object.tp_flags", "Type.Flags", ""},
				{"type_object.tp_basicsize", "Type.Basicsize", "3.15"},
				{"type_object.tp_dictoffset", "Type.Dictoffset", "3.15"},
				{"heap_type_object.ht_cached_keys", "Type.CachedKeys", "3.15"},
				{"tuple_object.ob_item", "Tuple.Item", ""},
				{"list_object.ob_item", "List.Item", ""},
				{"set_object.used", "Set.Used", "3.14"},
				{"set_object.table", "Set.Table", "3.14"},
				{"set_object.mask", "Set.Mask", "3.14"},
				{"dict_object.ma_keys", "Dict.Keys", ""},
				{"dict_object.ma_values", "Dict.Values", ""},
				{"float_object.ob_fval", "Float.Fval", ""},
				{"long_object.lv_tag", "Long.Tag", ""},
				{"long_object.ob_digit", "Long.Digit", ""},
				{"bytes_object.ob_sval", "Bytes.Sval", ""},
				{"unicode_object.state", "Unicode.State", ""},
				{"unicode_object.length", "Unicode.Length", ""},
				{"unicode_object.asciiobject_size", "Unicode.ASCIISize", ""},
				{"unicode_object.compactunicodeobject_size", "Unicode.CompactSize", "3.15"},
			}
			got := map[string]pyversions.DebugOffsetsOverride{}
			for _, o := range d.Overrides() {
				got[o.Path] = o
			}
			for _, row := range rows {
				if row.from != "" {
					if m, _ := pyversions.Parse(row.from); !d.Version.AtLeast(m.Major, m.Minor) {
						continue
					}
				}
				t.Run(row.path, func(t *testing.T) {
					o, ok := got[row.path]
					if !ok {
						t.Fatalf("descriptor provides no %s", row.path)
					}
					delete(got, row.path)
					want := layoutField(t, &exact, row.field)
					if o.Field != row.field || o.Value != want {
						t.Errorf("%s gives %s = %d, %s has %s = %d", row.path, o.Field, o.Value, exact.Origin, row.field, want)
					}
					if used := layoutField(t, p.Config.Layout, row.field); used != o.Value {
						t.Errorf("reader uses %s = %d, descriptor says %d", row.field, used, o.Value)
					}
				})
			}
			for path, o := range got {
				t.Errorf("descriptor also provides %s (%s = %d); add a row", path, o.Field, o.Value)
			}
			// Everything else comes from the generated table of the same
			// minor, so the whole layout must be the release's own.
			used := *p.Config.Layout
			used.Origin, exact.Origin = "", ""
			if !reflect.DeepEqual(used, exact) {
				t.Errorf("layout differs from %s's own:\n got: %+v\nwant: %+v", tg.Expect.Version, used, exact)
			}
		})
	}
}

// exactLayout returns the layout of release version as the compiler laid
// it out: the generated table when it was read from that release, else
// what the release's -dev headers give.
func exactLayout(t *testing.T, py testpython.Interpreter, version string) pyversions.Layout {
	t.Helper()
	gen := generatedLayout(t, py.MinorVersion())
	if gen.Version.String() == version {
		return gen
	}
	hs, err := layoutgen.FindHeaderBuilds()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Version.String() == version {
			l, _, err := layoutgen.ExtractHeaders(h)
			if err != nil {
				t.Fatal(err)
			}
			return *l
		}
	}
	t.Fatalf("no layout of %s: the table is from %s and no headers of %s are installed", version, gen.Version, version)
	return pyversions.Layout{}
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
// 3.16, a minor pyprof has no table for: the descriptor must admit it, in
// the 3.13 format, after the newer 3.15 and 3.14 formats were tried and
// rejected, and the members it lacks must come from 3.13's table.
func TestDebugOffsetsFutureRelease(t *testing.T) {
	for _, py := range testpython.For(t, "3.13") {
		if py.System {
			continue
		}
		t.Run(py.Name, func(t *testing.T) {
			lib := testpython.FutureLibpython(t, py, 3, 16, nil)
			tg := testpython.StartWithEnv(t, py, []string{"LD_PRELOAD=" + lib}, "stacks.py", "--shapes", "recursion")
			p, err := Attach(tg.Pid, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Binary != lib {
				t.Fatalf("interpreter found in %s, not the patched %s", p.Binary, lib)
			}
			if p.Version.String() != "3.16.0" || p.LayoutSource != LayoutDebugOffsets {
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
