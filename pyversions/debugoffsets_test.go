package pyversions

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"
)

// realDescriptors are what live interpreters had at _PyRuntime, recorded
// by internal/target's TestDebugOffsetsOnRealInterpreter
// -record-debugoffsets: pyenv's 3.13.0 and Debian's 3.13.18, 3.14.10 and
// 3.15.2.
var realDescriptors = map[string]string{
	"3.13.0":  "testdata/debugoffsets/pyenv-3.13.0.bin",
	"3.13.18": "testdata/debugoffsets/sid-3.13.18.bin",
	"3.14.10": "testdata/debugoffsets/sid-3.14.10.bin",
	"3.15.2":  "testdata/debugoffsets/sid-3.15.2.bin",
}

func loadReal(t testing.TB, version string) []byte {
	t.Helper()
	path := realDescriptors[version]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < DebugOffsetsMaxSize() {
		t.Fatalf("%s has %d bytes, want %d; record it again", path, len(b), DebugOffsetsMaxSize())
	}
	return b
}

func loadReal313(t testing.TB) []byte { return loadReal(t, "3.13.0") }

func formatFor(t testing.TB, minor string) DebugOffsetsFormat {
	t.Helper()
	for _, f := range DebugOffsetsFormats() {
		if f.Version.MinorString() == minor {
			return f
		}
	}
	t.Fatalf("no %s descriptor format", minor)
	return DebugOffsetsFormat{}
}

func hexOf(major, minor int) uint64 { return uint64(major)<<24 | uint64(minor)<<16 | 0xf0 }

// withVersion returns a copy of b claiming major.minor.
func withVersion(b []byte, major, minor int) []byte {
	c := append([]byte(nil), b...)
	binary.LittleEndian.PutUint64(c[8:], hexOf(major, minor))
	return c
}

// encode lays values out in format f, over a copy of tail (the bytes that
// follow the descriptor in _PyRuntime).
func encode(t testing.TB, f DebugOffsetsFormat, values map[string]uint64, tail []byte) []byte {
	t.Helper()
	b := append([]byte(nil), tail...)
	copy(b, debugCookie)
	for _, fl := range f.Fields {
		if fl.Path == "cookie" {
			continue
		}
		v, ok := values[fl.Path]
		if !ok {
			t.Fatalf("no value for %s", fl.Path)
		}
		binary.LittleEndian.PutUint64(b[fl.Offset:], v)
	}
	return b
}

// synthetic314 is a plausible 3.14 descriptor: 3.13's values, some of them
// moved, and values for the members 3.14 added.
func synthetic314(t testing.TB) (b []byte, values map[string]uint64) {
	t.Helper()
	real := loadReal313(t)
	d, err := DecodeDebugOffsets(real)
	if err != nil {
		t.Fatal(err)
	}
	values = map[string]uint64{}
	for k, v := range d.Values {
		values[k] = v
	}
	values["version"] = hexOf(3, 14)
	for k, v := range map[string]uint64{
		"interpreter_state.threads_main":             values["interpreter_state.threads_head"] + 8,
		"interpreter_state.code_object_generation":   values["interpreter_state.size"] - 64,
		"interpreter_state.tlbc_generation":          0,
		"thread_state.size":                          1040,
		"thread_state.current_frame":                 80,
		"interpreter_frame.size":                     88,
		"interpreter_frame.stackpointer":             64,
		"interpreter_frame.owner":                    74,
		"interpreter_frame.localsplus":               80,
		"interpreter_frame.tlbc_index":               0,
		"code_object.co_tlbc":                        0,
		"set_object.size":                            200,
		"set_object.used":                            24,
		"set_object.table":                           40,
		"set_object.mask":                            32,
		"gen_object.size":                            152,
		"gen_object.gi_name":                         40,
		"gen_object.gi_iframe":                       80,
		"gen_object.gi_frame_state":                  67,
		"llist_node.next":                            0,
		"llist_node.prev":                            8,
		"debugger_support.eval_breaker":              24,
		"debugger_support.remote_debugger_support":   512,
		"debugger_support.remote_debugging_enabled":  4000,
		"debugger_support.debugger_pending_call":     0,
		"debugger_support.debugger_script_path":      4,
		"debugger_support.debugger_script_path_size": 512,
	} {
		values[k] = v
	}
	return encode(t, formatFor(t, "3.14"), values, real), values
}

// TestDecodeDebugOffsets covers synthetic descriptors: which formats are
// accepted for which claimed version, and that the layout takes the
// descriptor's offsets.
func TestDecodeDebugOffsets(t *testing.T) {
	real := loadReal313(t)
	moved := withVersion(real, 3, 16)
	// Move a member to check that the layout follows the descriptor, not
	// the generated table.
	f313 := formatFor(t, "3.13")
	for _, fl := range f313.Fields {
		if fl.Path == "thread_state.current_frame" {
			binary.LittleEndian.PutUint64(moved[fl.Offset:], 80)
		}
	}
	syn314, _ := synthetic314(t)
	syn316 := withVersion(syn314, 3, 16)
	for _, tc := range []struct {
		name         string
		b            []byte
		version      string
		format       string
		currentFrame int64
	}{
		{name: "real 3.13", b: real, version: "3.13.0", format: "3.13", currentFrame: 72},
		{name: "real 3.13.18", b: loadReal(t, "3.13.18"), version: "3.13.18", format: "3.13", currentFrame: 72},
		{name: "real 3.14", b: loadReal(t, "3.14.10"), version: "3.14.10", format: "3.14", currentFrame: 72},
		{name: "real 3.15", b: loadReal(t, "3.15.2"), version: "3.15.2", format: "3.15", currentFrame: 72},
		{name: "3.13 format claiming 3.16", b: moved, version: "3.16.0", format: "3.13", currentFrame: 80},
		{name: "3.14 format", b: syn314, version: "3.14.0", format: "3.14", currentFrame: 80},
		{name: "3.14 format claiming 3.16", b: syn316, version: "3.16.0", format: "3.14", currentFrame: 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, d, err := LayoutFromDebugOffsets(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if d.Version.String() != tc.version || d.Format.MinorString() != tc.format {
				t.Errorf("decoded python %s in the %s format, want %s in %s", d.Version, d.Format.MinorString(), tc.version, tc.format)
			}
			if l.Version != d.Version || l.Thread.CurrentFrame != tc.currentFrame {
				t.Errorf("layout of %s has current_frame at %d, want %d", l.Version, l.Thread.CurrentFrame, tc.currentFrame)
			}
			for _, o := range d.Overrides() {
				if o.Field == "?" {
					t.Errorf("%s maps to no layout field", o.Path)
				}
			}
			if tc.format != "3.13" {
				if l.Set.Used != 24 || l.Set.Table != 40 || l.Set.Mask != 32 || l.IFrame.Stacktop != Absent {
					t.Errorf("%s set %+v, frame %+v", tc.format, l.Set, l.IFrame)
				}
			}
			// Members the descriptor lacks come from the table of the
			// release's minor, or for a minor without one, of the
			// format's minor.
			var base Layout
			for _, g := range generated {
				if g.Version.MinorString() == tc.format {
					base = g
				}
			}
			if l.Thread.DatastackTop != base.Thread.DatastackTop || l.Code.Nlocals != base.Code.Nlocals {
				t.Errorf("fields outside the descriptor differ from %s's", base.Version)
			}
		})
	}
}

func TestDecodeDebugOffsetsRejects(t *testing.T) {
	real := loadReal313(t)
	syn314, _ := synthetic314(t)
	badCookie := append([]byte(nil), real...)
	badCookie[0] = 'X'
	ft := append([]byte(nil), real...)
	binary.LittleEndian.PutUint64(ft[16:], 1)
	notHex := append([]byte(nil), real...)
	binary.LittleEndian.PutUint64(notHex[8:], 0xdeadbeef00000000)
	for _, tc := range []struct {
		name string
		b    []byte
		want string // substring of the error
		is   error
	}{
		{name: "bad cookie", b: badCookie, is: ErrNoDebugOffsets},
		{name: "short", b: real[:10], is: ErrNoDebugOffsets},
		{name: "free-threaded", b: ft, is: ErrFreeThreaded},
		{name: "version not hex", b: notHex, want: "is not a python version"},
		{name: "3.13 bytes claiming 3.14", b: withVersion(real, 3, 14),
			want: "python 3.14.0: _Py_DebugOffsets layout not recognised (known formats: 3.13, 3.14, 3.15)"},
		{name: "3.14 bytes claiming 3.15", b: withVersion(loadReal(t, "3.14.10"), 3, 15),
			want: "python 3.15.0: _Py_DebugOffsets layout not recognised"},
		{name: "3.15 bytes claiming 3.14", b: withVersion(loadReal(t, "3.15.2"), 3, 14),
			want: "python 3.14.0: _Py_DebugOffsets layout not recognised"},
		{name: "3.14 bytes claiming 3.13", b: withVersion(syn314, 3, 13),
			want: "python 3.13.0: _Py_DebugOffsets layout not recognised"},
		{name: "claiming 3.12", b: withVersion(real, 3, 12), want: "python 3.12.0: _Py_DebugOffsets layout not recognised"},
		{name: "3.14 format cut short", b: withVersion(syn314[:formatFor(t, "3.14").Size-8], 3, 16),
			want: "python 3.16.0: _Py_DebugOffsets layout not recognised"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := LayoutFromDebugOffsets(tc.b)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) || tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %v %q", err, tc.is, tc.want)
			}
		})
	}
}

// TestDebugOffsetsShuffled checks that a descriptor whose members are in
// the wrong places is refused with the clear error rather than read.
func TestDebugOffsetsShuffled(t *testing.T) {
	real := loadReal313(t)
	f := formatFor(t, "3.13")
	rng := rand.New(rand.NewSource(1))
	for i := range 200 {
		b := withVersion(real, 3, 16)
		// Shuffle the words after cookie, version and free_threaded.
		words := (f.Size - 24) / 8
		perm := rng.Perm(int(words))
		orig := append([]byte(nil), b...)
		same := true
		for j, k := range perm {
			copy(b[24+8*j:24+8*j+8], orig[24+8*k:24+8*k+8])
			same = same && j == k
		}
		if same {
			continue
		}
		_, _, err := LayoutFromDebugOffsets(b)
		var de *DebugOffsetsError
		if !errors.As(err, &de) || err.Error() != "python 3.16.0: _Py_DebugOffsets layout not recognised (known formats: 3.13, 3.14, 3.15)" {
			t.Fatalf("shuffle %d: error %v", i, err)
		}
	}
	for i := range 200 {
		b := withVersion(real, 3, 16)
		rng.Read(b[24:f.Size])
		if _, _, err := LayoutFromDebugOffsets(b); err == nil {
			t.Fatalf("random descriptor %d accepted", i)
		}
	}
}

// TestDebugOffsetsFormatsAreComplete checks the tables against each
// other: every member of every format has a rule, every mapped member is
// in the formats, and the generated formats pack uint64_t members the way
// the formats written from headers assume.
func TestDebugOffsetsFormatsAreComplete(t *testing.T) {
	inFormats := map[string]bool{}
	for _, f := range DebugOffsetsFormats() {
		for _, fl := range f.Fields {
			inFormats[fl.Path] = true
			group, member, _ := strings.Cut(fl.Path, ".")
			_, sized := descGroups[group]
			switch {
			case fl.Path == "cookie" || fl.Path == "version" || fl.Path == "free_threaded":
			case member == "size" && sized:
			default:
				if _, ok := descRules[fl.Path]; !ok {
					t.Errorf("%s format: no rule for %s", f.Version.MinorString(), fl.Path)
				}
			}
		}
	}
	for _, m := range descMapping {
		if !inFormats[m.path] {
			t.Errorf("mapping names %s, which no format has", m.path)
		}
		if name := layoutFieldName(m.field); name == "?" {
			t.Errorf("mapping of %s names no Layout field", m.path)
		}
	}
	for p := range descRules {
		if !inFormats[p] {
			t.Errorf("rule for %s, which no format has", p)
		}
	}
	if len(generatedDebugFormats) == 0 {
		t.Fatal("no generated descriptor formats")
	}
	for _, f := range generatedDebugFormats {
		var groups [][]string
		last := "?"
		for _, fl := range f.Fields {
			group, member, ok := strings.Cut(fl.Path, ".")
			if !ok {
				group, member = "", fl.Path
			}
			if group != last {
				groups = append(groups, []string{group})
				last = group
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], member)
		}
		want := packedFormat(f.Version, groups...)
		want.Origin = f.Origin
		if !reflect.DeepEqual(f, want) {
			t.Errorf("%s format is not packed uint64_t members:\n got: %+v\nwant: %+v", f.Version, f, want)
		}
	}
}

func TestDebugOffsetsSupported(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"3.11.7", true},
		{"3.12.1", IsSupported(Version{Major: 3, Minor: 12})},
		{"3.13.0", IsSupported(Version{Major: 3, Minor: 13})},
		{"3.14.0", true},
		{"3.15.0a1", true},
		{"3.16.0", true},
		{"3.5.10", false},
	} {
		v, _ := Parse(tc.v)
		if got := DebugOffsetsSupported(v); got != tc.want {
			t.Errorf("DebugOffsetsSupported(%s) = %v, want %v", v, got, tc.want)
		}
	}
}

// packedFormat lays out groups of 8-byte members in order. Each group is
// its name ("" for top-level members) followed by its members.
func packedFormat(v Version, groups ...[]string) DebugOffsetsFormat {
	f := DebugOffsetsFormat{Version: v}
	for _, g := range groups {
		for _, m := range g[1:] {
			path := m
			if g[0] != "" {
				path = g[0] + "." + m
			}
			f.Fields = append(f.Fields, DebugOffsetsField{Path: path, Offset: f.Size, Size: 8})
			f.Size += 8
		}
	}
	return f
}
