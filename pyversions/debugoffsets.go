package pyversions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// From 3.13, _PyRuntime begins with _Py_DebugOffsets: a cookie, the
// version, and the offsets of the members an out-of-process reader needs,
// written by the interpreter's own compiler. Where it is present it is the
// best source of a layout, and it lets pyprof read minors released after
// it was built. Its own layout changes between minors, so it is decoded
// with the format of its minor, or, for a minor newer than every known
// format, with the first known format that validates, newest first.

// debugCookie starts every _Py_DebugOffsets.
const debugCookie = "xdebugpy"

// ErrNoDebugOffsets means the bytes do not start with _Py_DebugOffsets.
var ErrNoDebugOffsets = errors.New("no _Py_DebugOffsets")

// ErrFreeThreaded means the descriptor describes a free-threaded build,
// whose object and thread layouts pyprof does not read.
var ErrFreeThreaded = errors.New("free-threaded builds are not supported")

// DebugOffsetsError means the descriptor matches no known format.
type DebugOffsetsError struct {
	Version Version
	Known   string // the known formats, e.g. "3.13, 3.14"
	// Reasons says why each tried format was rejected, for debugging.
	Reasons []string
}

func (e *DebugOffsetsError) Error() string {
	return fmt.Sprintf("python %s: _Py_DebugOffsets layout not recognised (known formats: %s)", e.Version, e.Known)
}

// DebugOffsets is a decoded, validated descriptor.
type DebugOffsets struct {
	Version      Version
	Format       Version // the format that decoded it (its Version field)
	FreeThreaded bool
	// Values holds every member by C path ("thread_state.current_frame").
	Values map[string]uint64
}

// DebugOffsetsOverride is one layout field a descriptor provides.
type DebugOffsetsOverride struct {
	Path  string // descriptor member, "thread_state.current_frame"
	Field string // Layout field, "Thread.CurrentFrame"
	Value int64
}

// Limits on what a descriptor may claim. Real values are far below: in
// 3.13 _PyRuntimeState is 283 KB and PyInterpreterState 195 KB.
const (
	maxStateSize  = 1 << 24
	maxThreadSize = 1 << 16
	maxObjectSize = 1 << 12
	// maxGILSpan bounds the GIL members' distance from the start of the
	// _gil_runtime_state they belong to.
	maxGILSpan = 1 << 12
	// pyObjectSize is sizeof(PyObject) in a 64-bit build with the GIL:
	// ob_refcnt and ob_type. It anchors validation: a misread format
	// rarely lands on these two values in the right place.
	pyObjectSize = 16
	pyObjectType = 8
)

// descGroups are the descriptor groups that start with the size of the
// struct they describe, with a bound on that size. object marks structs
// that begin with a PyObject header.
var descGroups = map[string]struct {
	max    int64
	object bool
}{
	"runtime_state":     {maxStateSize, false},
	"interpreter_state": {maxStateSize, false},
	"thread_state":      {maxThreadSize, false},
	"interpreter_frame": {maxObjectSize, false},
	"gc":                {maxStateSize, false},
	"pyobject":          {maxObjectSize, false},
	"code_object":       {maxObjectSize, true},
	"type_object":       {maxObjectSize, true},
	"heap_type_object":  {maxObjectSize, true},
	"tuple_object":      {maxObjectSize, true},
	"list_object":       {maxObjectSize, true},
	"set_object":        {maxObjectSize, true},
	"dict_object":       {maxObjectSize, true},
	"float_object":      {maxObjectSize, true},
	"long_object":       {maxObjectSize, true},
	"bytes_object":      {maxObjectSize, true},
	"unicode_object":    {maxObjectSize, true},
	"gen_object":        {maxObjectSize, true},
}

// fixedStructs bound members that point into structs the descriptor gives
// no size for.
var fixedStructs = map[string]int64{
	"llist_node":              16,      // struct llist_node: next, prev
	"err_stackitem":           16,      // _PyErr_StackItem: exc_value, previous_item
	"gc_stats":                1 << 20, // struct gc_stats, allocated apart from the GC state
	"remote_debugger_support": 1 << 16, // _PyRemoteDebuggerSupport
}

// descRule says what one descriptor member must look like.
type descRule struct {
	in     string // the struct it is an offset into: a descGroups or fixedStructs key
	align  int64  // the member's alignment; an offset must be a multiple
	ftOnly bool   // set only by free-threaded builds, 0 otherwise
	isSize bool   // a size in bytes, not an offset
}

func member(in string, align int64) descRule { return descRule{in: in, align: align} }
func ftMember(in string, align int64) descRule {
	return descRule{in: in, align: align, ftOnly: true}
}
func sizeMember(in string) descRule { return descRule{in: in, align: 1, isSize: true} }

// descRules covers every member of every known format except the cookie,
// the version, free_threaded and the groups' size members.
var descRules = map[string]descRule{
	"runtime_state.finalizing":        member("runtime_state", 8),
	"runtime_state.interpreters_head": member("runtime_state", 8),

	"interpreter_state.id":                        member("interpreter_state", 8),
	"interpreter_state.next":                      member("interpreter_state", 8),
	"interpreter_state.threads_head":              member("interpreter_state", 8),
	"interpreter_state.threads_main":              member("interpreter_state", 8),
	"interpreter_state.gc":                        member("interpreter_state", 8),
	"interpreter_state.imports_modules":           member("interpreter_state", 8),
	"interpreter_state.sysdict":                   member("interpreter_state", 8),
	"interpreter_state.builtins":                  member("interpreter_state", 8),
	"interpreter_state.ceval_gil":                 member("interpreter_state", 8),
	"interpreter_state.gil_runtime_state":         member("interpreter_state", 8),
	"interpreter_state.gil_runtime_state_enabled": ftMember("interpreter_state", 4),
	"interpreter_state.gil_runtime_state_locked":  member("interpreter_state", 4),
	"interpreter_state.gil_runtime_state_holder":  member("interpreter_state", 8),
	"interpreter_state.code_object_generation":    member("interpreter_state", 4),
	"interpreter_state.tlbc_generation":           ftMember("interpreter_state", 4),

	"thread_state.prev":             member("thread_state", 8),
	"thread_state.next":             member("thread_state", 8),
	"thread_state.interp":           member("thread_state", 8),
	"thread_state.current_frame":    member("thread_state", 8),
	"thread_state.thread_id":        member("thread_state", 8),
	"thread_state.native_thread_id": member("thread_state", 8),
	"thread_state.datastack_chunk":  member("thread_state", 8),
	"thread_state.status":           member("thread_state", 4),
	// 3.15: the sentinel frame every stack ends at, the frame cache of
	// CPython's own sampling profiler, and who holds the GIL per thread.
	"thread_state.base_frame":              member("thread_state", 8),
	"thread_state.last_profiled_frame":     member("thread_state", 8),
	"thread_state.last_profiled_frame_seq": member("thread_state", 8),
	"thread_state.holds_gil":               member("thread_state", 4),
	"thread_state.gil_requested":           member("thread_state", 4),
	"thread_state.current_exception":       member("thread_state", 8),
	"thread_state.exc_state":               member("thread_state", 8),
	"err_stackitem.exc_value":              member("err_stackitem", 8),

	"interpreter_frame.previous":     member("interpreter_frame", 8),
	"interpreter_frame.executable":   member("interpreter_frame", 8),
	"interpreter_frame.instr_ptr":    member("interpreter_frame", 8),
	"interpreter_frame.localsplus":   member("interpreter_frame", 8),
	"interpreter_frame.owner":        member("interpreter_frame", 1),
	"interpreter_frame.stackpointer": member("interpreter_frame", 8),
	"interpreter_frame.tlbc_index":   ftMember("interpreter_frame", 4),

	"code_object.filename":         member("code_object", 8),
	"code_object.name":             member("code_object", 8),
	"code_object.qualname":         member("code_object", 8),
	"code_object.linetable":        member("code_object", 8),
	"code_object.firstlineno":      member("code_object", 4),
	"code_object.argcount":         member("code_object", 4),
	"code_object.localsplusnames":  member("code_object", 8),
	"code_object.localspluskinds":  member("code_object", 8),
	"code_object.co_code_adaptive": member("code_object", 1),
	"code_object.co_tlbc":          ftMember("code_object", 8),

	"pyobject.ob_type": member("pyobject", 8),

	"type_object.tp_name":             member("type_object", 8),
	"type_object.tp_repr":             member("type_object", 8),
	"type_object.tp_flags":            member("type_object", 8),
	"type_object.tp_basicsize":        member("type_object", 8),
	"type_object.tp_dictoffset":       member("type_object", 8),
	"heap_type_object.ht_cached_keys": member("heap_type_object", 8),

	"tuple_object.ob_item":  member("tuple_object", 8),
	"tuple_object.ob_size":  member("tuple_object", 8),
	"list_object.ob_item":   member("list_object", 8),
	"list_object.ob_size":   member("list_object", 8),
	"set_object.used":       member("set_object", 8),
	"set_object.table":      member("set_object", 8),
	"set_object.mask":       member("set_object", 8),
	"dict_object.ma_keys":   member("dict_object", 8),
	"dict_object.ma_values": member("dict_object", 8),
	"float_object.ob_fval":  member("float_object", 8),
	"long_object.lv_tag":    member("long_object", 8),
	"long_object.ob_digit":  member("long_object", 4),
	"bytes_object.ob_size":  member("bytes_object", 8),
	"bytes_object.ob_sval":  member("bytes_object", 1),

	"unicode_object.state":                     member("unicode_object", 4),
	"unicode_object.length":                    member("unicode_object", 8),
	"unicode_object.asciiobject_size":          sizeMember("unicode_object"),
	"unicode_object.compactunicodeobject_size": sizeMember("unicode_object"),

	"gc.collecting":            member("gc", 4),
	"gc.frame":                 member("gc", 8),
	"gc.generation_stats":      member("gc", 8),
	"gc.generation_stats_size": sizeMember("gc_stats"),

	"gen_object.gi_name":        member("gen_object", 8),
	"gen_object.gi_iframe":      member("gen_object", 8),
	"gen_object.gi_frame_state": member("gen_object", 1),

	"llist_node.next": member("llist_node", 8),
	"llist_node.prev": member("llist_node", 8),

	"debugger_support.eval_breaker":              member("thread_state", 8),
	"debugger_support.remote_debugger_support":   member("thread_state", 4),
	"debugger_support.remote_debugging_enabled":  member("interpreter_state", 4),
	"debugger_support.debugger_pending_call":     member("remote_debugger_support", 4),
	"debugger_support.debugger_script_path":      member("remote_debugger_support", 1),
	"debugger_support.debugger_script_path_size": sizeMember("remote_debugger_support"),
}

// descMapping ties descriptor members to the Layout fields they provide.
// base, if set, names a member whose value is subtracted: the descriptor
// gives the GIL members as offsets from the interpreter state, Layout from
// the _gil_runtime_state that ceval.gil points to.
// optional marks members that only some formats have (set_object from
// 3.14, the rest from 3.15); a format may lack those and no others.
var descMapping = []struct {
	path     string
	base     string
	optional bool
	field    func(*Layout) *int64
}{
	{path: "runtime_state.size", field: func(l *Layout) *int64 { return &l.Runtime.Size }},
	{path: "runtime_state.interpreters_head", field: func(l *Layout) *int64 { return &l.Runtime.InterpretersHead }},
	{path: "interpreter_state.size", field: func(l *Layout) *int64 { return &l.Interp.Size }},
	{path: "interpreter_state.next", field: func(l *Layout) *int64 { return &l.Interp.Next }},
	{path: "interpreter_state.threads_head", field: func(l *Layout) *int64 { return &l.Interp.ThreadsHead }},
	{path: "interpreter_state.imports_modules", field: func(l *Layout) *int64 { return &l.Interp.Modules }},
	{path: "interpreter_state.ceval_gil", field: func(l *Layout) *int64 { return &l.Interp.CevalGIL }},
	{path: "interpreter_state.gil_runtime_state_holder", base: "interpreter_state.gil_runtime_state", field: func(l *Layout) *int64 { return &l.GIL.LastHolder }},
	{path: "interpreter_state.gil_runtime_state_locked", base: "interpreter_state.gil_runtime_state", field: func(l *Layout) *int64 { return &l.GIL.Locked }},
	{path: "thread_state.size", field: func(l *Layout) *int64 { return &l.Thread.Size }},
	{path: "thread_state.next", field: func(l *Layout) *int64 { return &l.Thread.Next }},
	{path: "thread_state.interp", field: func(l *Layout) *int64 { return &l.Thread.Interp }},
	{path: "thread_state.current_frame", field: func(l *Layout) *int64 { return &l.Thread.CurrentFrame }},
	{path: "thread_state.thread_id", field: func(l *Layout) *int64 { return &l.Thread.ThreadID }},
	{path: "thread_state.native_thread_id", field: func(l *Layout) *int64 { return &l.Thread.NativeThreadID }},
	{path: "thread_state.datastack_chunk", field: func(l *Layout) *int64 { return &l.Thread.DatastackChunk }},
	{path: "thread_state.base_frame", optional: true, field: func(l *Layout) *int64 { return &l.Thread.BaseFrame }},
	{path: "thread_state.holds_gil", optional: true, field: func(l *Layout) *int64 { return &l.Thread.HoldsGIL }},
	{path: "interpreter_frame.size", field: func(l *Layout) *int64 { return &l.IFrame.Size }},
	{path: "interpreter_frame.previous", field: func(l *Layout) *int64 { return &l.IFrame.Previous }},
	{path: "interpreter_frame.executable", field: func(l *Layout) *int64 { return &l.IFrame.Code }},
	{path: "interpreter_frame.instr_ptr", field: func(l *Layout) *int64 { return &l.IFrame.Instr }},
	{path: "interpreter_frame.localsplus", field: func(l *Layout) *int64 { return &l.IFrame.Localsplus }},
	{path: "interpreter_frame.owner", field: func(l *Layout) *int64 { return &l.IFrame.Owner }},
	{path: "code_object.size", field: func(l *Layout) *int64 { return &l.Code.Size }},
	{path: "code_object.filename", field: func(l *Layout) *int64 { return &l.Code.Filename }},
	{path: "code_object.name", field: func(l *Layout) *int64 { return &l.Code.Name }},
	{path: "code_object.qualname", field: func(l *Layout) *int64 { return &l.Code.Qualname }},
	{path: "code_object.linetable", field: func(l *Layout) *int64 { return &l.Code.Linetable }},
	{path: "code_object.firstlineno", field: func(l *Layout) *int64 { return &l.Code.Firstlineno }},
	{path: "code_object.argcount", field: func(l *Layout) *int64 { return &l.Code.Argcount }},
	{path: "code_object.localsplusnames", field: func(l *Layout) *int64 { return &l.Code.Localsplusnames }},
	{path: "code_object.localspluskinds", field: func(l *Layout) *int64 { return &l.Code.Localspluskinds }},
	{path: "code_object.co_code_adaptive", field: func(l *Layout) *int64 { return &l.Code.CodeAdaptive }},
	{path: "pyobject.ob_type", field: func(l *Layout) *int64 { return &l.Object.Type }},
	// Tuples are PyVarObjects: their ob_size is PyVarObject's.
	{path: "tuple_object.ob_size", field: func(l *Layout) *int64 { return &l.Object.Size }},
	{path: "type_object.tp_name", field: func(l *Layout) *int64 { return &l.Type.Name }},
	{path: "type_object.tp_flags", field: func(l *Layout) *int64 { return &l.Type.Flags }},
	{path: "type_object.tp_basicsize", optional: true, field: func(l *Layout) *int64 { return &l.Type.Basicsize }},
	{path: "type_object.tp_dictoffset", optional: true, field: func(l *Layout) *int64 { return &l.Type.Dictoffset }},
	{path: "heap_type_object.ht_cached_keys", optional: true, field: func(l *Layout) *int64 { return &l.Type.CachedKeys }},
	{path: "tuple_object.ob_item", field: func(l *Layout) *int64 { return &l.Tuple.Item }},
	{path: "list_object.ob_item", field: func(l *Layout) *int64 { return &l.List.Item }},
	{path: "set_object.used", optional: true, field: func(l *Layout) *int64 { return &l.Set.Used }},
	{path: "set_object.table", optional: true, field: func(l *Layout) *int64 { return &l.Set.Table }},
	{path: "set_object.mask", optional: true, field: func(l *Layout) *int64 { return &l.Set.Mask }},
	{path: "dict_object.ma_keys", field: func(l *Layout) *int64 { return &l.Dict.Keys }},
	{path: "dict_object.ma_values", field: func(l *Layout) *int64 { return &l.Dict.Values }},
	{path: "float_object.ob_fval", field: func(l *Layout) *int64 { return &l.Float.Fval }},
	{path: "long_object.lv_tag", field: func(l *Layout) *int64 { return &l.Long.Tag }},
	{path: "long_object.ob_digit", field: func(l *Layout) *int64 { return &l.Long.Digit }},
	{path: "bytes_object.ob_sval", field: func(l *Layout) *int64 { return &l.Bytes.Sval }},
	{path: "unicode_object.state", field: func(l *Layout) *int64 { return &l.Unicode.State }},
	{path: "unicode_object.length", field: func(l *Layout) *int64 { return &l.Unicode.Length }},
	{path: "unicode_object.asciiobject_size", field: func(l *Layout) *int64 { return &l.Unicode.ASCIISize }},
	{path: "unicode_object.compactunicodeobject_size", optional: true, field: func(l *Layout) *int64 { return &l.Unicode.CompactSize }},
}

// DecodeDebugOffsets decodes the _Py_DebugOffsets at the start of b, which
// should hold DebugOffsetsMaxSize bytes from _PyRuntime (fewer only rule
// out the longer formats). It returns ErrNoDebugOffsets if the cookie is
// missing and a *DebugOffsetsError if no known format validates.
func DecodeDebugOffsets(b []byte) (*DebugOffsets, error) {
	if len(b) < 16 || !bytes.Equal(b[:8], []byte(debugCookie)) {
		return nil, ErrNoDebugOffsets
	}
	raw := binary.LittleEndian.Uint64(b[8:16])
	if raw>>32 != 0 {
		return nil, fmt.Errorf("_Py_DebugOffsets version %#x is not a python version", raw)
	}
	v := FromHex(uint32(raw))
	if level := raw >> 4 & 0xf; level < 0xa || level == 0xd || level == 0xe {
		return nil, fmt.Errorf("_Py_DebugOffsets version %#x is not a python version", raw)
	}
	e := &DebugOffsetsError{Version: v, Known: knownFormatNames()}
	for _, f := range candidateFormats(v, knownDebugFormats) {
		d, err := decodeFormat(b, v, f)
		if err != nil {
			e.Reasons = append(e.Reasons, fmt.Sprintf("%s format: %v", f.Version.MinorString(), err))
			continue
		}
		if d.FreeThreaded {
			return nil, fmt.Errorf("python %s: %w", v, ErrFreeThreaded)
		}
		return d, nil
	}
	if len(e.Reasons) == 0 {
		e.Reasons = []string{"no format for this version"}
	}
	return nil, e
}

// candidateFormats picks the formats to try: the one of v's minor, or all,
// newest first, for a minor newer than every known format. A version older
// than the newest format without a format of its own has no descriptor.
func candidateFormats(v Version, formats []DebugOffsetsFormat) []DebugOffsetsFormat {
	newer := len(formats) > 0
	for _, f := range formats {
		if f.Version.Major == v.Major && f.Version.Minor == v.Minor {
			return []DebugOffsetsFormat{f}
		}
		if !minorBefore(f.Version, v) {
			newer = false
		}
	}
	if !newer {
		return nil
	}
	out := append([]DebugOffsetsFormat(nil), formats...)
	sort.Slice(out, func(i, j int) bool { return out[j].Version.Less(out[i].Version) })
	return out
}

// minorBefore reports whether a's minor version precedes b's.
func minorBefore(a, b Version) bool {
	return a.Major < b.Major || a.Major == b.Major && a.Minor < b.Minor
}

func decodeFormat(b []byte, v Version, f DebugOffsetsFormat) (*DebugOffsets, error) {
	if f.Size <= 0 || int64(len(b)) < f.Size {
		return nil, fmt.Errorf("needs %d bytes, have %d", f.Size, len(b))
	}
	d := &DebugOffsets{Version: v, Format: f.Version, Values: make(map[string]uint64, len(f.Fields))}
	for _, fl := range f.Fields {
		if fl.Path == "cookie" {
			continue
		}
		if fl.Size != 8 || fl.Offset < 0 || fl.Offset+8 > f.Size {
			return nil, fmt.Errorf("format member %s is not a uint64_t inside the struct", fl.Path)
		}
		d.Values[fl.Path] = binary.LittleEndian.Uint64(b[fl.Offset:])
	}
	switch d.Values["free_threaded"] {
	case 0:
	case 1:
		d.FreeThreaded = true
	default:
		return nil, fmt.Errorf("free_threaded is %d", d.Values["free_threaded"])
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// validate checks that every member is plausible: each group's size is
// bounded, every offset lies inside its struct, is aligned and differs
// from its neighbours', and the members every build agrees on have their
// known values. A descriptor read with the wrong format fails these.
func (d *DebugOffsets) validate() error {
	sizes := map[string]int64{}
	groups := make([]string, 0, len(descGroups))
	for g := range descGroups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		lim := descGroups[g]
		s, ok := d.Values[g+".size"]
		if !ok {
			continue
		}
		if s < 8 || s > uint64(lim.max) || s%8 != 0 {
			return fmt.Errorf("%s.size is %d", g, s)
		}
		sizes[g] = int64(s)
	}
	for g, s := range fixedStructs {
		sizes[g] = s
	}
	if !d.FreeThreaded {
		if sizes["pyobject"] != pyObjectSize || d.Values["pyobject.ob_type"] != pyObjectType {
			return fmt.Errorf("PyObject is %d bytes with ob_type at %d, not %d and %d",
				sizes["pyobject"], d.Values["pyobject.ob_type"], pyObjectSize, pyObjectType)
		}
	}
	paths := make([]string, 0, len(d.Values))
	for p := range d.Values {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	// Members of one group that point into the same struct must differ.
	type slot struct {
		group, in string
		off       uint64
	}
	seen := map[slot]string{}
	for _, p := range paths {
		val := d.Values[p]
		if p == "version" || p == "free_threaded" {
			continue
		}
		if g, m, _ := strings.Cut(p, "."); m == "size" {
			if _, ok := descGroups[g]; ok {
				continue
			}
		}
		r, ok := descRules[p]
		if !ok {
			return fmt.Errorf("no rule for member %s", p)
		}
		if r.ftOnly && !d.FreeThreaded {
			if val != 0 {
				return fmt.Errorf("%s is %d in a build with the GIL", p, val)
			}
			continue
		}
		bound, ok := sizes[r.in]
		if !ok {
			return fmt.Errorf("%s: format has no %s.size", p, r.in)
		}
		if r.isSize {
			if val == 0 || val > uint64(bound) {
				return fmt.Errorf("%s is %d, outside 1..%d", p, val, bound)
			}
			continue
		}
		if val > uint64(bound) || int64(val)+r.align > bound || val%uint64(r.align) != 0 {
			return fmt.Errorf("%s is %d, outside its %d-byte struct or misaligned", p, val, bound)
		}
		if descGroups[r.in].object && int64(val) < sizes["pyobject"] {
			return fmt.Errorf("%s is %d, inside the PyObject header", p, val)
		}
		group, _, _ := strings.Cut(p, ".")
		key := slot{group, r.in, val}
		if other, dup := seen[key]; dup {
			return fmt.Errorf("%s and %s are both %d", other, p, val)
		}
		seen[key] = p
	}
	// Tuples, lists and bytes are all PyVarObjects.
	varSize := d.Values["tuple_object.ob_size"]
	for _, p := range []string{"list_object.ob_size", "bytes_object.ob_size"} {
		if v, ok := d.Values[p]; ok && v != varSize {
			return fmt.Errorf("%s is %d, tuple_object.ob_size %d", p, v, varSize)
		}
	}
	if !d.FreeThreaded {
		gil := d.Values["interpreter_state.gil_runtime_state"]
		for _, p := range []string{"interpreter_state.gil_runtime_state_locked", "interpreter_state.gil_runtime_state_holder"} {
			if v := d.Values[p]; v < gil || v-gil >= maxGILSpan {
				return fmt.Errorf("%s is %d, not within the GIL state at %d", p, v, gil)
			}
		}
	}
	if u, ok := d.Values["unicode_object.asciiobject_size"]; ok {
		if u <= d.Values["unicode_object.length"] || u <= d.Values["unicode_object.state"] {
			return fmt.Errorf("unicode_object.asciiobject_size %d does not cover length and state", u)
		}
	}
	for _, m := range descMapping {
		if _, ok := d.Values[m.path]; ok {
			continue
		}
		if !m.optional {
			return fmt.Errorf("format lacks %s", m.path)
		}
	}
	return nil
}

// Overrides lists the Layout fields the descriptor provides, in a fixed
// order.
func (d *DebugOffsets) Overrides() []DebugOffsetsOverride {
	var out []DebugOffsetsOverride
	d.provided(func(path string, field func(*Layout) *int64, v int64) {
		out = append(out, DebugOffsetsOverride{Path: path, Field: layoutFieldName(field), Value: v})
	})
	return out
}

// provided calls fn for each Layout field the descriptor gives, with its
// value relative to the struct Layout measures it from.
func (d *DebugOffsets) provided(fn func(path string, field func(*Layout) *int64, v int64)) {
	for _, m := range descMapping {
		v, ok := d.Values[m.path]
		if !ok {
			continue
		}
		if m.base != "" {
			v -= d.Values[m.base]
		}
		fn(m.path, m.field, int64(v))
	}
}

// Layout returns the layout of the descriptor's release: the descriptor's
// members over the generated layout of its minor. A minor newer than every
// table takes the table of the minor whose format decoded the descriptor:
// CPython changes the descriptor's format whenever it reworks the structs
// behind it, so a release that still writes an older minor's format is the
// likeliest to keep that minor's other members too. The result's Version
// is the descriptor's.
func (d *DebugOffsets) Layout() (*Layout, error) {
	var base *Layout
	for _, want := range []Version{d.Version, d.Format} {
		for i := range generated {
			if g := &generated[i]; base == nil && g.Version.Major == want.Major && g.Version.Minor == want.Minor {
				base = g
			}
		}
	}
	if base == nil {
		return nil, fmt.Errorf("python %s: no generated layout to start from", d.Version)
	}
	l := *base
	for _, p := range patches {
		if p.applies(d.Version) {
			p.apply(&l)
		}
	}
	l.Version = d.Version
	d.provided(func(_ string, field func(*Layout) *int64, v int64) { *field(&l) = v })
	if _, ok := d.Values["interpreter_frame.stackpointer"]; ok {
		// The frame keeps a stack pointer instead of stacktop, so the
		// older table's offset names nothing.
		l.IFrame.Stacktop = Absent
	}
	return &l, nil
}

// LayoutFromDebugOffsets decodes the descriptor at the start of b and
// returns the layout it describes.
func LayoutFromDebugOffsets(b []byte) (*Layout, *DebugOffsets, error) {
	d, err := DecodeDebugOffsets(b)
	if err != nil {
		return nil, nil, err
	}
	l, err := d.Layout()
	if err != nil {
		return nil, nil, err
	}
	return l, d, nil
}

// layoutFieldName names the Layout field that get returns, as
// "Thread.CurrentFrame".
func layoutFieldName(get func(*Layout) *int64) string {
	var l Layout
	want := reflect.ValueOf(get(&l)).Pointer()
	root := reflect.ValueOf(&l).Elem()
	for i := 0; i < root.NumField(); i++ {
		g := root.Field(i)
		if g.Kind() != reflect.Struct {
			continue
		}
		for j := 0; j < g.NumField(); j++ {
			if g.Field(j).Addr().Pointer() == want {
				return root.Type().Field(i).Name + "." + g.Type().Field(j).Name
			}
		}
	}
	return "?"
}
