package mem

import (
	"encoding/binary"
	"fmt"
)

// Fields decodes little-endian members out of one bulk read of a struct.
// An offset outside the bytes, or one the layout marks absent (negative),
// sets a sticky error instead of panicking, so a decoder reads all its
// members and checks Err once (the model is debug/dwarf's buf).
type Fields struct {
	b    []byte
	addr uint64
	what string
	err  error
}

// NewFields decodes b, read from addr; what names the struct in errors.
func NewFields(b []byte, addr uint64, what string) Fields {
	return Fields{b: b, addr: addr, what: what}
}

// Addr is where the struct was read from.
func (f *Fields) Addr() uint64 { return f.addr }

// Err is the first member that could not be decoded, or nil.
func (f *Fields) Err() error { return f.err }

func (f *Fields) at(off int64, n int) []byte {
	if f.err != nil {
		return nil
	}
	if off < 0 || off+int64(n) > int64(len(f.b)) {
		f.err = fmt.Errorf("%s at %#x: member at offset %d outside %d bytes read", f.what, f.addr, off, len(f.b))
		return nil
	}
	return f.b[off : off+int64(n)]
}

// Ptr decodes the 8-byte member at off: a pointer, a size, a word.
func (f *Fields) Ptr(off int64) uint64 {
	if b := f.at(off, 8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// I64 decodes the signed 8-byte member at off.
func (f *Fields) I64(off int64) int64 { return int64(f.Ptr(off)) }

// I32 decodes the signed 4-byte member at off.
func (f *Fields) I32(off int64) int32 {
	if b := f.at(off, 4); b != nil {
		return int32(binary.LittleEndian.Uint32(b))
	}
	return 0
}

// U32 decodes the unsigned 4-byte member at off.
func (f *Fields) U32(off int64) uint32 { return uint32(f.I32(off)) }

// U8 decodes the byte at off.
func (f *Fields) U8(off int64) uint8 {
	if b := f.at(off, 1); b != nil {
		return b[0]
	}
	return 0
}

// Extent returns how many bytes must be read to cover every listed member
// of width 8 at the given offsets; absent members are ignored.
func Extent(offs ...int64) uint64 {
	var n int64
	for _, o := range offs {
		if o >= 0 && o+8 > n {
			n = o + 8
		}
	}
	return uint64(n)
}

// LE64 decodes the little-endian word at the start of b.
func LE64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
