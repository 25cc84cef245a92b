package pyspy

import (
	"encoding/binary"
	"fmt"
)

// fields decodes little-endian members out of one bulk read of a struct.
// An offset outside the bytes, or one the layout marks absent, sets a
// sticky error instead of panicking, so a decoder reads all its members
// and checks err once.
type fields struct {
	b    []byte
	addr uint64
	what string
	err  error
}

func (f *fields) at(off int64, n int) []byte {
	if f.err != nil {
		return nil
	}
	if off < 0 || off+int64(n) > int64(len(f.b)) {
		f.err = fmt.Errorf("%s at %#x: member at offset %d outside %d bytes read", f.what, f.addr, off, len(f.b))
		return nil
	}
	return f.b[off : off+int64(n)]
}

func (f *fields) ptr(off int64) uint64 {
	if b := f.at(off, 8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (f *fields) i64(off int64) int64 { return int64(f.ptr(off)) }

func (f *fields) i32(off int64) int32 {
	if b := f.at(off, 4); b != nil {
		return int32(binary.LittleEndian.Uint32(b))
	}
	return 0
}

func (f *fields) u32(off int64) uint32 { return uint32(f.i32(off)) }

func (f *fields) u8(off int64) uint8 {
	if b := f.at(off, 1); b != nil {
		return b[0]
	}
	return 0
}

// span returns how many bytes must be read to cover every listed member
// of width 8 at the given offsets; absent members are ignored.
func extent(offs ...int64) uint64 {
	var n int64
	for _, o := range offs {
		if o >= 0 && o+8 > n {
			n = o + 8
		}
	}
	return uint64(n)
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
