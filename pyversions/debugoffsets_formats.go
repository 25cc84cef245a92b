package pyversions

import (
	"sort"
	"strings"
)

// DebugOffsetsFormat is the layout of _Py_DebugOffsets itself in one minor
// version: where each of its members sits. CPython only promises it stable
// across the patch releases of one minor.
type DebugOffsetsFormat struct {
	// Version is the release the format was read from; a format written
	// from a header carries the minor only.
	Version Version
	Size    int64 // sizeof(_Py_DebugOffsets)
	Fields  []DebugOffsetsField
}

// DebugOffsetsField is one member of _Py_DebugOffsets, named by its C path
// ("thread_state.current_frame").
type DebugOffsetsField struct {
	Path   string
	Offset int64
	Size   int64
}

// headerDebugFormats are the formats of minors that have no debug build on
// the machines that run go generate. Every member after the 8-byte cookie
// is a uint64_t, so the members pack without padding and their offsets
// follow from their order.
var headerDebugFormats = []DebugOffsetsFormat{
	// Include/internal/pycore_debug_offsets.h at tag v3.14.0. Against
	// 3.13: interpreter_state gains threads_main, code_object_generation
	// and tlbc_generation; interpreter_frame gains stackpointer and
	// tlbc_index; code_object gains co_tlbc; set_object, gen_object,
	// llist_node and debugger_support are new.
	packedFormat(Version{Major: 3, Minor: 14},
		[]string{"", "cookie", "version", "free_threaded"},
		[]string{"runtime_state", "size", "finalizing", "interpreters_head"},
		[]string{"interpreter_state", "size", "id", "next", "threads_head", "threads_main", "gc",
			"imports_modules", "sysdict", "builtins", "ceval_gil", "gil_runtime_state",
			"gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder",
			"code_object_generation", "tlbc_generation"},
		[]string{"thread_state", "size", "prev", "next", "interp", "current_frame", "thread_id",
			"native_thread_id", "datastack_chunk", "status"},
		[]string{"interpreter_frame", "size", "previous", "executable", "instr_ptr", "localsplus",
			"owner", "stackpointer", "tlbc_index"},
		[]string{"code_object", "size", "filename", "name", "qualname", "linetable", "firstlineno",
			"argcount", "localsplusnames", "localspluskinds", "co_code_adaptive", "co_tlbc"},
		[]string{"pyobject", "size", "ob_type"},
		[]string{"type_object", "size", "tp_name", "tp_repr", "tp_flags"},
		[]string{"tuple_object", "size", "ob_item", "ob_size"},
		[]string{"list_object", "size", "ob_item", "ob_size"},
		[]string{"set_object", "size", "used", "table", "mask"},
		[]string{"dict_object", "size", "ma_keys", "ma_values"},
		[]string{"float_object", "size", "ob_fval"},
		[]string{"long_object", "size", "lv_tag", "ob_digit"},
		[]string{"bytes_object", "size", "ob_size", "ob_sval"},
		[]string{"unicode_object", "size", "state", "length", "asciiobject_size"},
		[]string{"gc", "size", "collecting"},
		[]string{"gen_object", "size", "gi_name", "gi_iframe", "gi_frame_state"},
		[]string{"llist_node", "next", "prev"},
		[]string{"debugger_support", "eval_breaker", "remote_debugger_support",
			"remote_debugging_enabled", "debugger_pending_call", "debugger_script_path",
			"debugger_script_path_size"},
	),
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

// DebugOffsetsFormats returns the known descriptor formats, oldest first:
// the generated ones, and those written from headers for minors that have
// none.
func DebugOffsetsFormats() []DebugOffsetsFormat {
	return append([]DebugOffsetsFormat(nil), knownDebugFormats...)
}

var knownDebugFormats = mergeDebugFormats()

func mergeDebugFormats() []DebugOffsetsFormat {
	byMinor := map[string]DebugOffsetsFormat{}
	for _, f := range headerDebugFormats {
		byMinor[f.Version.MinorString()] = f
	}
	for _, f := range generatedDebugFormats {
		byMinor[f.Version.MinorString()] = f
	}
	var out []DebugOffsetsFormat
	for _, f := range byMinor {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version.Less(out[j].Version) })
	return out
}

// GeneratedDebugOffsetsFormats returns the formats read from DWARF, for
// tests and tools.
func GeneratedDebugOffsetsFormats() []DebugOffsetsFormat {
	return append([]DebugOffsetsFormat(nil), generatedDebugFormats...)
}

// DebugOffsetsMaxSize is how many bytes at _PyRuntime hold the largest
// known descriptor: a reader that fetches this much can try every format.
func DebugOffsetsMaxSize() int {
	n := int64(0)
	for _, f := range knownDebugFormats {
		n = max(n, f.Size)
	}
	return int(n)
}

func knownFormatNames() string {
	var names []string
	for _, f := range knownDebugFormats {
		names = append(names, f.Version.MinorString())
	}
	return strings.Join(names, ", ")
}
