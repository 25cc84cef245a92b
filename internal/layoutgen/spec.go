package layoutgen

// what a spec entry measures
const (
	offsetOf = iota
	sizeOf
	bitOf
)

// spec ties a Layout field to the C members that hold it. The first C path
// that resolves wins, which is how renamed members (tstate_head became
// threads.head) are followed. min and max bound the minor versions, as
// "3.11", where the member means what the Layout field documents: 3.11's
// PyFrameObject.f_back exists but is not the frame chain pyprof walks.
type spec struct {
	field    string
	what     int
	c        []string
	min, max string
	// def is used when no path resolves and the field has a natural
	// default, rather than Absent.
	def *int64
}

func off(field string, c ...string) spec  { return spec{field: field, what: offsetOf, c: c} }
func size(field string, c ...string) spec { return spec{field: field, what: sizeOf, c: c} }
func bit(field string, c ...string) spec  { return spec{field: field, what: bitOf, c: c} }

func (s spec) from(v string) spec { s.min = v; return s }
func (s spec) upto(v string) spec { s.max = v; return s }
func (s spec) orElse(v int64) spec {
	s.def = &v
	return s
}

var specs = []spec{
	size("Runtime.Size", "_PyRuntimeState"),
	off("Runtime.InterpretersHead", "_PyRuntimeState.interpreters.head"),
	off("Runtime.TstateCurrent", "_PyRuntimeState.gilstate.tstate_current").upto("3.11"),

	size("Interp.Size", "PyInterpreterState"),
	off("Interp.Next", "PyInterpreterState.next"),
	off("Interp.ThreadsHead", "PyInterpreterState.tstate_head", "PyInterpreterState.threads.head"),
	off("Interp.Modules", "PyInterpreterState.modules", "PyInterpreterState.imports.modules"),
	off("Interp.CevalGIL", "PyInterpreterState.ceval.gil").from("3.12"),

	off("GIL.LastHolder", "_gil_runtime_state.last_holder").from("3.12"),
	off("GIL.Locked", "_gil_runtime_state.locked").from("3.12"),

	size("Thread.Size", "PyThreadState"),
	off("Thread.Next", "PyThreadState.next"),
	off("Thread.Interp", "PyThreadState.interp"),
	off("Thread.Frame", "PyThreadState.frame").upto("3.10"),
	off("Thread.CFrame", "PyThreadState.cframe").from("3.10").upto("3.12"),
	off("Thread.CurrentFrame", "PyThreadState.current_frame").from("3.13"),
	off("Thread.ThreadID", "PyThreadState.thread_id"),
	off("Thread.NativeThreadID", "PyThreadState.native_thread_id"),
	off("Thread.DatastackChunk", "PyThreadState.datastack_chunk"),
	off("Thread.DatastackTop", "PyThreadState.datastack_top"),
	off("Thread.DatastackLimit", "PyThreadState.datastack_limit"),
	off("Thread.BaseFrame", "PyThreadState.base_frame"),
	// 3.13 keeps holds_gil as a bit of _status; an int of its own from 3.14.
	off("Thread.HoldsGIL", "PyThreadState.holds_gil").from("3.14"),

	off("CFrame.CurrentFrame", "_PyCFrame.current_frame").from("3.11").upto("3.12"),

	size("Frame.Size", "PyFrameObject").upto("3.10"),
	off("Frame.Back", "PyFrameObject.f_back").upto("3.10"),
	off("Frame.Code", "PyFrameObject.f_code").upto("3.10"),
	off("Frame.Lasti", "PyFrameObject.f_lasti").upto("3.10"),
	off("Frame.Lineno", "PyFrameObject.f_lineno").upto("3.10"),
	off("Frame.Localsplus", "PyFrameObject.f_localsplus").upto("3.10"),

	size("IFrame.Size", "_PyInterpreterFrame").from("3.11"),
	off("IFrame.Code", "_PyInterpreterFrame.f_code", "_PyInterpreterFrame.f_executable").from("3.11"),
	off("IFrame.Previous", "_PyInterpreterFrame.previous").from("3.11"),
	off("IFrame.Instr", "_PyInterpreterFrame.prev_instr", "_PyInterpreterFrame.instr_ptr").from("3.11"),
	off("IFrame.Localsplus", "_PyInterpreterFrame.localsplus").from("3.11"),
	off("IFrame.Owner", "_PyInterpreterFrame.owner").from("3.11"),
	off("IFrame.IsEntry", "_PyInterpreterFrame.is_entry").from("3.11"),
	off("IFrame.Stacktop", "_PyInterpreterFrame.stacktop").from("3.11"),
	off("IFrame.Func", "_PyInterpreterFrame.f_func", "_PyInterpreterFrame.f_funcobj").from("3.11"),

	size("Code.Size", "PyCodeObject"),
	off("Code.Argcount", "PyCodeObject.co_argcount"),
	off("Code.Posonlyargcount", "PyCodeObject.co_posonlyargcount"),
	off("Code.Kwonlyargcount", "PyCodeObject.co_kwonlyargcount"),
	off("Code.Nlocals", "PyCodeObject.co_nlocals"),
	off("Code.Nlocalsplus", "PyCodeObject.co_nlocalsplus"),
	off("Code.Flags", "PyCodeObject.co_flags"),
	off("Code.Firstlineno", "PyCodeObject.co_firstlineno"),
	off("Code.Code", "PyCodeObject.co_code").upto("3.10"),
	off("Code.Varnames", "PyCodeObject.co_varnames").upto("3.10"),
	off("Code.Cellvars", "PyCodeObject.co_cellvars").upto("3.10"),
	off("Code.Freevars", "PyCodeObject.co_freevars").upto("3.10"),
	off("Code.Localsplusnames", "PyCodeObject.co_localsplusnames"),
	off("Code.Localspluskinds", "PyCodeObject.co_localspluskinds"),
	off("Code.Filename", "PyCodeObject.co_filename"),
	off("Code.Name", "PyCodeObject.co_name"),
	off("Code.Qualname", "PyCodeObject.co_qualname"),
	off("Code.Linetable", "PyCodeObject.co_linetable", "PyCodeObject.co_lnotab"),
	off("Code.CodeAdaptive", "PyCodeObject.co_code_adaptive"),
	off("Code.FirstTraceable", "PyCodeObject._co_firsttraceable"),

	off("Object.Type", "PyObject.ob_type"),
	off("Object.Size", "PyVarObject.ob_size"),

	off("Type.Name", "PyTypeObject.tp_name"),
	off("Type.Basicsize", "PyTypeObject.tp_basicsize"),
	off("Type.Flags", "PyTypeObject.tp_flags"),
	off("Type.Dictoffset", "PyTypeObject.tp_dictoffset"),
	off("Type.CachedKeys", "PyHeapTypeObject.ht_cached_keys"),

	off("Unicode.Length", "PyASCIIObject.length", "PyUnicodeObject.length"),
	off("Unicode.State", "PyASCIIObject.state"),
	bit("Unicode.KindBit", "PyASCIIObject.state.kind"),
	bit("Unicode.CompactBit", "PyASCIIObject.state.compact"),
	bit("Unicode.ASCIIBit", "PyASCIIObject.state.ascii"),
	size("Unicode.ASCIISize", "PyASCIIObject"),
	size("Unicode.CompactSize", "PyCompactUnicodeObject"),
	off("Unicode.Data", "PyUnicodeObject.data"),
	off("Unicode.Str", "PyUnicodeObject.str").upto("2.7"),
	size("Unicode.UnicodeSize", "Py_UNICODE").upto("2.7"),

	off("Bytes.Sval", "PyBytesObject.ob_sval", "PyStringObject.ob_sval"),
	off("Tuple.Item", "PyTupleObject.ob_item"),
	off("List.Item", "PyListObject.ob_item"),

	off("Dict.Used", "PyDictObject.ma_used"),
	off("Dict.Keys", "PyDictObject.ma_keys"),
	off("Dict.Values", "PyDictObject.ma_values"),
	off("Dict.Mask", "PyDictObject.ma_mask"),
	off("Dict.Table", "PyDictObject.ma_table"),
	off("Dict.ValuesArray", "_dictvalues.values").from("3.0").orElse(0),

	off("DictKeys.Size", "_dictkeysobject.dk_size"),
	off("DictKeys.Log2Size", "_dictkeysobject.dk_log2_size"),
	off("DictKeys.Log2IndexBytes", "_dictkeysobject.dk_log2_index_bytes"),
	off("DictKeys.Kind", "_dictkeysobject.dk_kind"),
	off("DictKeys.Nentries", "_dictkeysobject.dk_nentries"),
	off("DictKeys.Indices", "_dictkeysobject.dk_indices"),
	size("DictKeys.EntrySize", "PyDictKeyEntry", "PyDictEntry"),
	off("DictKeys.EntryKey", "PyDictKeyEntry.me_key", "PyDictEntry.me_key"),
	off("DictKeys.EntryValue", "PyDictKeyEntry.me_value", "PyDictEntry.me_value"),
	size("DictKeys.UnicodeEntrySize", "PyDictUnicodeEntry"),

	off("Set.Used", "PySetObject.used"),
	off("Set.Mask", "PySetObject.mask"),
	off("Set.Table", "PySetObject.table"),
	size("Set.EntrySize", "setentry"),
	off("Set.EntryKey", "setentry.key"),

	off("Long.Digit", "PyLongObject.ob_digit", "PyLongObject.long_value.ob_digit"),
	off("Long.Tag", "PyLongObject.long_value.lv_tag"),
	size("Long.DigitSize", "digit"),
	off("Int.Ival", "PyIntObject.ob_ival").upto("2.7"),
	off("Float.Fval", "PyFloatObject.ob_fval"),
	off("Module.Dict", "PyModuleObject.md_dict"),
	off("Cell.Ref", "PyCellObject.ob_ref"),
}
