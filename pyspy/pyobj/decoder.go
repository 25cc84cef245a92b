package pyobj

import (
	"fmt"

	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyversions"
)

// Decoder decodes the objects of one process, read through a mem.Cache,
// and keeps the types it met, which do not change; its Codes keep the
// code objects. It is not safe for concurrent use.
type Decoder struct {
	c     *mem.Cache
	facts *Facts
	l     *pyversions.Layout
	v     pyversions.Version
	py2   bool
	types map[uint64]*typeInfo
	// frameType is learnt from the first valid frame object and lets
	// later reads reject pointers to something else.
	frameType uint64
	// setDummy is the key of deleted set slots, once met.
	setDummy uint64
}

// NewDecoder returns a decoder of the objects of a process of the build
// described by f, read through c.
func NewDecoder(c *mem.Cache, f *Facts) *Decoder {
	return &Decoder{
		c:     c,
		facts: f,
		l:     f.Layout,
		v:     f.Version,
		py2:   f.Version.Major == 2,
		types: map[uint64]*typeInfo{},
	}
}

// Facts returns the facts of the build the decoder reads.
func (d *Decoder) Facts() *Facts { return d.facts }

// Bounds on what is read from the target. They protect against corrupt
// memory, not against legitimately large objects, which are truncated for
// display instead.
const (
	maxNameLen    = 4096    // code points in a function, file or thread name
	maxDigits     = 4096    // 30-bit digits of an int (about 37,000 decimal digits)
	maxItems      = 1 << 20 // entries in a tuple, list, dict or set we walk
	maxTypeName   = 256
	digitBits     = 30
	pyTPFLAGSHeap = 1 << 9
)

// object decoding errors name the address and what was expected, which is
// what a user reporting a bug needs.
func badObject(addr uint64, what string, detail string, args ...any) error {
	return fmt.Errorf("%s at %#x: %s", what, addr, fmt.Sprintf(detail, args...))
}

// typeInfo is what pyprof needs to know about a type object. Static
// builtin types never move, and heap types are rarely freed while instances
// live, but the cache is per Decoder and types are re-read for each dump.
type typeInfo struct {
	name  string
	flags uint64
	heap  bool
}

// TypeOf returns the address of the type of the object at addr.
func (d *Decoder) TypeOf(addr uint64) (uint64, error) {
	b, err := d.c.Bytes(addr+uint64(d.l.Object.Type), 8)
	if err != nil {
		return 0, err
	}
	return mem.LE64(b), nil
}

func (d *Decoder) typeInfo(typ uint64) (*typeInfo, error) {
	if ti, ok := d.types[typ]; ok {
		return ti, nil
	}
	f, err := d.Read(typ, mem.Extent(d.l.Type.Name, d.l.Type.Flags), "type")
	if err != nil {
		return nil, err
	}
	namePtr, flags := f.Ptr(d.l.Type.Name), f.Ptr(d.l.Type.Flags)
	if f.Err() != nil {
		return nil, f.Err()
	}
	name, err := d.cstring(namePtr, maxTypeName)
	if err != nil {
		return nil, fmt.Errorf("type at %#x: name: %w", typ, err)
	}
	ti := &typeInfo{name: name, flags: flags, heap: flags&pyTPFLAGSHeap != 0}
	if len(d.types) < 4096 {
		d.types[typ] = ti
	}
	return ti, nil
}

// BuiltinType returns the name of obj's type when it is a static builtin
// type, and "" for heap types, whose tp_name may be anything a user chose,
// and the type's address.
func (d *Decoder) BuiltinType(obj uint64) (string, uint64, error) {
	typ, err := d.TypeOf(obj)
	if err != nil {
		return "", 0, err
	}
	ti, err := d.typeInfo(typ)
	if err != nil {
		return "", typ, err
	}
	if ti.heap {
		return "", typ, nil
	}
	return ti.name, typ, nil
}

// Read fetches n bytes of a struct at addr for field decoding; what names
// it in errors.
func (d *Decoder) Read(addr uint64, n uint64, what string) (mem.Fields, error) {
	if addr == 0 {
		return mem.Fields{}, fmt.Errorf("%s: null pointer", what)
	}
	b, err := d.c.Bytes(addr, n)
	if err != nil {
		return mem.Fields{}, fmt.Errorf("%s: %w", what, err)
	}
	return mem.NewFields(b, addr, what), nil
}

// cstring reads a NUL-terminated C string of at most max bytes.
func (d *Decoder) cstring(addr uint64, max int) (string, error) {
	if addr == 0 {
		return "", fmt.Errorf("null string pointer")
	}
	// Read up to the end of the page first: most names are short, and the
	// next page may be unmapped.
	n := uint64(mem.PageSize - addr%mem.PageSize)
	if n > uint64(max) {
		n = uint64(max)
	}
	for {
		b, err := d.c.Bytes(addr, n)
		if err != nil {
			return "", err
		}
		for i, c := range b {
			if c == 0 {
				return string(b[:i]), nil
			}
		}
		if n >= uint64(max) {
			return "", fmt.Errorf("string at %#x longer than %d bytes", addr, max)
		}
		n = uint64(max)
	}
}

// TypeName returns the name of the type at typ (tp_name), and whether it
// is a heap type, whose name may be anything a user chose.
func (d *Decoder) TypeName(typ uint64) (name string, heap bool, err error) {
	ti, err := d.typeInfo(typ)
	if err != nil {
		return "", false, err
	}
	return ti.name, ti.heap, nil
}

// Pointer reads the pointer at addr. Pointers are read exactly: the page
// around a lone pointer (a C stack, a global) is rarely of further use.
func (d *Decoder) Pointer(addr uint64) (uint64, error) {
	b, err := d.c.Exact(addr, 8)
	if err != nil {
		return 0, err
	}
	return mem.LE64(b), nil
}

// IsFrame checks that typ, the type of the object at addr, is the frame
// type (up to 3.10, where frames are objects).
func (d *Decoder) IsFrame(addr, typ uint64) error {
	if d.frameType != 0 {
		if typ != d.frameType {
			return fmt.Errorf("object at %#x is not a frame", addr)
		}
		return nil
	}
	ti, err := d.typeInfo(typ)
	if err != nil {
		return fmt.Errorf("frame at %#x: %w", addr, err)
	}
	if ti.name != "frame" {
		return fmt.Errorf("object at %#x is a %q, not a frame", addr, ti.name)
	}
	d.frameType = typ
	return nil
}

// Untag turns a _PyStackRef (3.14+: f_executable, localsplus) into the
// object pointer it holds. Its low bits are tags, free because objects are
// at least 8-byte aligned; a bare tag is NULL. Both tag bits set mark a
// tagged int, which holds no object at all (see stackRefInt). Earlier
// versions hold plain pointers.
func (d *Decoder) Untag(ref uint64) uint64 {
	if !d.v.AtLeast(3, 14) {
		return ref
	}
	if ref&stackRefIntTag == stackRefIntTag {
		return 0
	}
	return ref &^ 7
}

// stackRefIntTag marks a _PyStackRef that holds a small int itself, shifted
// left by two, rather than a pointer (Py_INT_TAG, 3.14+).
const stackRefIntTag = 3

// stackRefInt returns the value of a tagged-int _PyStackRef.
func (d *Decoder) stackRefInt(ref uint64) (int64, bool) {
	if !d.v.AtLeast(3, 14) || ref&stackRefIntTag != stackRefIntTag {
		return 0, false
	}
	return int64(ref) >> 2, true
}
