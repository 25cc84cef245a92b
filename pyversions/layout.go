package pyversions

// Absent marks a field that the version does not have.
const Absent = -1

// Layout holds the byte offsets (and a few sizes and bit positions) of the
// interpreter structs pyprof reads, for one CPython release. Field comments
// name the C member; Absent means the release has no such member.
type Layout struct {
	// Version is the release the offsets were generated from, or, for a
	// layout taken from _Py_DebugOffsets, the release that described it.
	Version Version
	// Origin says what the offsets were read from: the DWARF of a build
	// with debug info, or the headers of a -dev package compiled for the
	// build's configuration.
	Origin string

	Runtime  RuntimeLayout
	Interp   InterpLayout
	GIL      GILLayout
	Thread   ThreadLayout
	CFrame   CFrameLayout
	Frame    FrameLayout
	IFrame   IFrameLayout
	Code     CodeLayout
	Object   ObjectLayout
	Type     TypeLayout
	Unicode  UnicodeLayout
	Bytes    BytesLayout
	Tuple    TupleLayout
	List     ListLayout
	Dict     DictLayout
	DictKeys DictKeysLayout
	Set      SetLayout
	Long     LongLayout
	Int      IntLayout
	Float    FloatLayout
	Module   ModuleLayout
	Cell     CellLayout
}

// RuntimeLayout is _PyRuntimeState (3.7+).
type RuntimeLayout struct {
	Size             int64 // sizeof(_PyRuntimeState)
	InterpretersHead int64 // interpreters.head
	TstateCurrent    int64 // gilstate.tstate_current (3.7–3.11)
}

// InterpLayout is PyInterpreterState.
type InterpLayout struct {
	Size        int64 // sizeof(PyInterpreterState)
	Next        int64 // next
	ThreadsHead int64 // tstate_head (≤3.10), threads.head (3.11+)
	Modules     int64 // modules (≤3.11), imports.modules (3.12+)
	CevalGIL    int64 // ceval.gil, a pointer to _gil_runtime_state (3.12+)
}

// GILLayout is struct _gil_runtime_state (3.12+).
type GILLayout struct {
	LastHolder int64 // last_holder
	Locked     int64 // locked
}

// ThreadLayout is PyThreadState.
type ThreadLayout struct {
	Size           int64 // sizeof(PyThreadState)
	Next           int64 // next
	Interp         int64 // interp
	Frame          int64 // frame (≤3.10)
	CFrame         int64 // cframe (3.10–3.12)
	CurrentFrame   int64 // current_frame (3.13+)
	ThreadID       int64 // thread_id
	NativeThreadID int64 // native_thread_id (3.11+)
	DatastackChunk int64 // datastack_chunk (3.11+)
	DatastackTop   int64 // datastack_top (3.11+)
	DatastackLimit int64 // datastack_limit (3.11+)
	BaseFrame      int64 // base_frame, the sentinel every stack ends at (3.15+)
	HoldsGIL       int64 // holds_gil, an int (3.14+)
}

// CFrameLayout is _PyCFrame (3.11–3.12).
type CFrameLayout struct {
	CurrentFrame int64 // current_frame
}

// FrameLayout is PyFrameObject up to 3.10.
type FrameLayout struct {
	Size       int64 // sizeof(PyFrameObject), up to f_localsplus[1]
	Back       int64 // f_back
	Code       int64 // f_code
	Lasti      int64 // f_lasti
	Lineno     int64 // f_lineno
	Localsplus int64 // f_localsplus
}

// IFrameLayout is _PyInterpreterFrame (3.11+).
type IFrameLayout struct {
	Size       int64 // sizeof(_PyInterpreterFrame), up to localsplus[1]
	Code       int64 // f_code (3.11–3.12), f_executable (3.13+)
	Previous   int64 // previous
	Instr      int64 // prev_instr (3.11–3.12), instr_ptr (3.13+)
	Localsplus int64 // localsplus
	Owner      int64 // owner
	IsEntry    int64 // is_entry (3.11)
	Stacktop   int64 // stacktop
	Func       int64 // f_func (3.11), f_funcobj (3.12+)
}

// CodeLayout is PyCodeObject.
type CodeLayout struct {
	Size            int64 // sizeof(PyCodeObject)
	Argcount        int64 // co_argcount
	Posonlyargcount int64 // co_posonlyargcount (3.8+)
	Kwonlyargcount  int64 // co_kwonlyargcount (3.x)
	Nlocals         int64 // co_nlocals
	Nlocalsplus     int64 // co_nlocalsplus (3.11+)
	Flags           int64 // co_flags
	Firstlineno     int64 // co_firstlineno
	Code            int64 // co_code (≤3.10)
	Varnames        int64 // co_varnames (≤3.10)
	Cellvars        int64 // co_cellvars (≤3.10)
	Freevars        int64 // co_freevars (≤3.10)
	Localsplusnames int64 // co_localsplusnames (3.11+)
	Localspluskinds int64 // co_localspluskinds (3.11+)
	Filename        int64 // co_filename
	Name            int64 // co_name
	Qualname        int64 // co_qualname (3.11+)
	Linetable       int64 // co_lnotab (≤3.9), co_linetable (3.10+)
	CodeAdaptive    int64 // co_code_adaptive (3.11+)
	FirstTraceable  int64 // _co_firsttraceable (3.11)
}

// ObjectLayout is PyObject and PyVarObject.
type ObjectLayout struct {
	Type int64 // ob_type
	Size int64 // ob_size
}

// TypeLayout is PyTypeObject and PyHeapTypeObject.
type TypeLayout struct {
	Name       int64 // tp_name
	Basicsize  int64 // tp_basicsize
	Flags      int64 // tp_flags
	Dictoffset int64 // tp_dictoffset
	CachedKeys int64 // PyHeapTypeObject.ht_cached_keys (3.6+)
}

// UnicodeLayout is PEP 393's PyASCIIObject family (3.3+), or 2.7's
// PyUnicodeObject.
type UnicodeLayout struct {
	Length      int64 // length
	State       int64 // state, a bitfield word
	KindBit     int64 // bit position of state.kind (3 bits)
	CompactBit  int64 // bit position of state.compact
	ASCIIBit    int64 // bit position of state.ascii
	ASCIISize   int64 // sizeof(PyASCIIObject): compact ASCII data follows it
	CompactSize int64 // sizeof(PyCompactUnicodeObject): other compact data follows it
	Data        int64 // PyUnicodeObject.data (legacy, non-compact strings)
	Str         int64 // PyUnicodeObject.str, a Py_UNICODE* (2.7)
	UnicodeSize int64 // sizeof(Py_UNICODE) (2.7)
}

// BytesLayout is PyBytesObject, or 2.7's PyStringObject.
type BytesLayout struct {
	Sval int64 // ob_sval
}

// TupleLayout is PyTupleObject.
type TupleLayout struct {
	Item int64 // ob_item
}

// ListLayout is PyListObject.
type ListLayout struct {
	Item int64 // ob_item
}

// DictLayout is PyDictObject.
type DictLayout struct {
	Used   int64 // ma_used
	Keys   int64 // ma_keys (3.x)
	Values int64 // ma_values (3.x)
	Mask   int64 // ma_mask (2.7)
	Table  int64 // ma_table (2.7)
	// ValuesArray is the offset of the values array inside the object
	// ma_values points to: 0 before 3.11's PyDictValues, and
	// offsetof(PyDictValues, values) from 3.11.
	ValuesArray int64
}

// DictKeysLayout is PyDictKeysObject and its entries.
type DictKeysLayout struct {
	Size             int64 // dk_size (3.6–3.10)
	Log2Size         int64 // dk_log2_size (3.11+)
	Log2IndexBytes   int64 // dk_log2_index_bytes (3.11+)
	Kind             int64 // dk_kind (3.11+)
	Nentries         int64 // dk_nentries
	Indices          int64 // dk_indices
	EntrySize        int64 // sizeof(PyDictKeyEntry)
	EntryKey         int64 // PyDictKeyEntry.me_key
	EntryValue       int64 // PyDictKeyEntry.me_value
	UnicodeEntrySize int64 // sizeof(PyDictUnicodeEntry) (3.11+)
}

// SetLayout is PySetObject and setentry.
type SetLayout struct {
	Used      int64 // used
	Mask      int64 // mask
	Table     int64 // table
	EntrySize int64 // sizeof(setentry)
	EntryKey  int64 // setentry.key
}

// LongLayout is PyLongObject.
type LongLayout struct {
	Digit int64 // ob_digit (long_value.ob_digit in 3.12+)
	Tag   int64 // long_value.lv_tag (3.12+)
	// DigitSize is sizeof(digit): 4 for 30-bit digits, 2 for the 15-bit
	// digits of builds configured without 64-bit integer types.
	DigitSize int64
}

// IntLayout is 2.7's PyIntObject.
type IntLayout struct {
	Ival int64 // ob_ival
}

// FloatLayout is PyFloatObject.
type FloatLayout struct {
	Fval int64 // ob_fval
}

// ModuleLayout is PyModuleObject.
type ModuleLayout struct {
	Dict int64 // md_dict
}

// CellLayout is PyCellObject.
type CellLayout struct {
	Ref int64 // ob_ref
}
