package pyobj

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// strData tells how a str object stores its code points.
type strData struct {
	kind   int    // bytes per code point: 1, 2 or 4
	ascii  bool   // kind 1 and all below 128
	length int    // in code points
	data   uint64 // address of the first code point
}

// strInfo decodes the header of a str (PEP 393) or, on 2.7, a unicode
// object.
func (d *Decoder) strInfo(addr uint64) (strData, error) {
	l := &d.l.Unicode
	if d.py2 {
		f, err := d.Read(addr, mem.Extent(l.Length, l.Str), "unicode")
		if err != nil {
			return strData{}, err
		}
		s := strData{kind: int(l.UnicodeSize), length: int(f.I64(l.Length)), data: f.Ptr(l.Str)}
		if f.Err() != nil {
			return strData{}, f.Err()
		}
		if s.length < 0 || s.kind != 2 && s.kind != 4 {
			return strData{}, badObject(addr, "unicode", "length %d, unit %d", s.length, s.kind)
		}
		return s, nil
	}
	f, err := d.Read(addr, uint64(l.CompactSize)+8, "str")
	if err != nil {
		return strData{}, err
	}
	state := f.U32(l.State)
	s := strData{
		length: int(f.I64(l.Length)),
		kind:   int(state >> l.KindBit & 7),
		ascii:  state>>l.ASCIIBit&1 != 0,
	}
	compact := state>>l.CompactBit&1 != 0
	switch {
	case compact && s.ascii:
		s.data = addr + uint64(l.ASCIISize)
	case compact:
		s.data = addr + uint64(l.CompactSize)
	default:
		s.data = f.Ptr(l.Data)
	}
	if f.Err() != nil {
		return strData{}, f.Err()
	}
	if s.length < 0 || s.kind != 1 && s.kind != 2 && s.kind != 4 || s.ascii && s.kind != 1 {
		return strData{}, badObject(addr, "str", "length %d, kind %d", s.length, s.kind)
	}
	return s, nil
}

// CodePoints reads at most max code points of a str. It reports whether
// the string was longer.
func (d *Decoder) CodePoints(addr uint64, max int) ([]rune, bool, error) {
	s, err := d.strInfo(addr)
	if err != nil {
		return nil, false, err
	}
	n, more := s.length, false
	if n > max {
		n, more = max, true
	}
	b, err := d.c.Bytes(s.data, uint64(n*s.kind))
	if err != nil {
		return nil, false, fmt.Errorf("str data at %#x: %w", s.data, err)
	}
	out := make([]rune, n)
	for i := range out {
		switch s.kind {
		case 1:
			out[i] = rune(b[i])
		case 2:
			out[i] = rune(binary.LittleEndian.Uint16(b[2*i:]))
		default:
			out[i] = rune(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	return out, more, nil
}

// Str decodes a name-like string: str in Python 3, and str (bytes) or
// unicode in 2.7. Names longer than maxNameLen are an error: no real
// identifier or path is that long, so it means the pointer is bad.
func (d *Decoder) Str(addr uint64) (string, error) {
	if d.py2 {
		name, _, err := d.BuiltinType(addr)
		if err != nil {
			return "", err
		}
		if name == "str" {
			b, more, err := d.Bytes(addr, maxNameLen)
			if err != nil {
				return "", err
			}
			if more {
				return "", badObject(addr, "str", "longer than %d bytes", maxNameLen)
			}
			return string(b), nil
		}
	}
	cps, more, err := d.CodePoints(addr, maxNameLen)
	if err != nil {
		return "", err
	}
	if more {
		return "", badObject(addr, "str", "longer than %d code points", maxNameLen)
	}
	return runesToString(cps), nil
}

func runesToString(cps []rune) string {
	ascii := true
	for _, c := range cps {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		b := make([]byte, len(cps))
		for i, c := range cps {
			b[i] = byte(c)
		}
		return string(b)
	}
	return string(cps)
}

// StrEquals reports whether the str at addr is exactly s (ASCII only),
// reading no more than needed.
func (d *Decoder) StrEquals(addr uint64, s string) bool {
	if d.py2 {
		if name, _, err := d.BuiltinType(addr); err == nil && name == "str" {
			b, more, err := d.Bytes(addr, len(s))
			return err == nil && !more && string(b) == s
		}
		got, err := d.Str(addr)
		return err == nil && got == s
	}
	info, err := d.strInfo(addr)
	if err != nil || info.length != len(s) || info.kind != 1 {
		return false
	}
	b, err := d.c.Bytes(info.data, uint64(len(s)))
	return err == nil && string(b) == s
}

// bytesLen reads the length of the bytes (2.7: str) object at addr.
func (d *Decoder) bytesLen(addr uint64) (int, error) {
	f, err := d.Read(addr, uint64(d.l.Bytes.Sval), "bytes")
	if err != nil {
		return 0, err
	}
	n := f.I64(d.l.Object.Size)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if n < 0 {
		return 0, badObject(addr, "bytes", "size %d", n)
	}
	return int(n), nil
}

// Bytes reads at most max bytes of a bytes object (str in 2.7), and
// reports whether it holds more. The bytes alias the cache: they are
// valid until its next sample.
func (d *Decoder) Bytes(addr uint64, max int) ([]byte, bool, error) {
	f, err := d.Read(addr, uint64(d.l.Bytes.Sval), "bytes")
	if err != nil {
		return nil, false, err
	}
	n := f.I64(d.l.Object.Size)
	if f.Err() != nil {
		return nil, false, f.Err()
	}
	if n < 0 {
		return nil, false, badObject(addr, "bytes", "size %d", n)
	}
	more := false
	if n > int64(max) {
		n, more = int64(max), true
	}
	b, err := d.c.Bytes(addr+uint64(d.l.Bytes.Sval), uint64(n))
	if err != nil {
		return nil, false, fmt.Errorf("bytes data at %#x: %w", addr, err)
	}
	return b, more, nil
}

// IntDigits reads an int's magnitude as 30-bit digits and its sign.
func (d *Decoder) IntDigits(addr uint64) ([]uint32, bool, error) {
	l := &d.l.Long
	var n int64
	neg := false
	if l.Tag >= 0 {
		f, err := d.Read(addr, uint64(l.Tag)+8, "int")
		if err != nil {
			return nil, false, err
		}
		tag := f.Ptr(l.Tag)
		if f.Err() != nil {
			return nil, false, f.Err()
		}
		// 3.12+: digit count above bit 3, sign in the low two bits
		// (0 positive, 1 zero, 2 negative; 3 is never written).
		n, neg = int64(tag>>3), tag&3 == 2
		switch tag & 3 {
		case 1:
			n = 0
		case 3:
			return nil, false, badObject(addr, "int", "sign bits 3 in tag %#x", tag)
		}
	} else {
		f, err := d.Read(addr, uint64(d.l.Object.Size)+8, "int")
		if err != nil {
			return nil, false, err
		}
		n = f.I64(d.l.Object.Size)
		if f.Err() != nil {
			return nil, false, f.Err()
		}
		if n < 0 {
			n, neg = -n, true
		}
	}
	size, limit := l.DigitSize, int64(maxDigits)
	switch size {
	case 4:
	case 2:
		limit *= 2
	default:
		return nil, false, fmt.Errorf("int at %#x: digits of %d bytes", addr, size)
	}
	// -MinInt64 is still negative.
	if n < 0 || n > limit {
		return nil, false, badObject(addr, "int", "%d digits", n)
	}
	if n == 0 {
		return nil, false, nil
	}
	b, err := d.c.Bytes(addr+uint64(l.Digit), uint64(n)*uint64(size))
	if err != nil {
		return nil, false, fmt.Errorf("int digits at %#x: %w", addr, err)
	}
	if size == 2 {
		digits, err := pairDigits15(addr, b)
		return digits, neg, err
	}
	digits := make([]uint32, n)
	for i := range digits {
		digits[i] = binary.LittleEndian.Uint32(b[4*i:])
		if digits[i]>>digitBits != 0 {
			return nil, false, badObject(addr, "int", "digit %d is %#x", i, digits[i])
		}
	}
	return digits, neg, nil
}

// pairDigits15 turns the 15-bit digits of builds with 2-byte digits into the
// 30-bit digits the rest of pyprof works with, two to one.
func pairDigits15(addr uint64, b []byte) ([]uint32, error) {
	n := len(b) / 2
	d := make([]uint32, (n+1)/2)
	for i := 0; i < n; i++ {
		v := uint32(binary.LittleEndian.Uint16(b[2*i:]))
		if v>>15 != 0 {
			return nil, badObject(addr, "int", "digit %d is %#x", i, v)
		}
		d[i/2] |= v << (15 * (i % 2))
	}
	return d, nil
}

// IntValue decodes an int that fits in 64 bits, as thread idents do: its
// magnitude and whether it is negative.
func (d *Decoder) IntValue(addr uint64) (uint64, bool, error) {
	if d.py2 {
		if name, _, err := d.BuiltinType(addr); err == nil && name == "int" {
			b, err := d.c.Bytes(addr+uint64(d.l.Int.Ival), 8)
			if err != nil {
				return 0, false, err
			}
			v := int64(mem.LE64(b))
			if v < 0 {
				return uint64(-v), true, nil
			}
			return uint64(v), false, nil
		}
	}
	digits, neg, err := d.IntDigits(addr)
	if err != nil {
		return 0, false, err
	}
	if len(digits) > 3 || len(digits) == 3 && digits[2]>>4 != 0 {
		return 0, false, badObject(addr, "int", "does not fit 64 bits")
	}
	var v uint64
	for i := len(digits) - 1; i >= 0; i-- {
		v = v<<digitBits | uint64(digits[i])
	}
	return v, neg, nil
}

// Bool decodes a bool: an int whose value is 0 or 1, held in ob_ival
// in 2.7, where bool subclasses the C-long int, and as digits in 3.x.
func (d *Decoder) Bool(addr uint64) (bool, error) {
	if d.py2 {
		b, err := d.c.Bytes(addr+uint64(d.l.Int.Ival), 8)
		if err != nil {
			return false, fmt.Errorf("bool at %#x: %w", addr, err)
		}
		return mem.LE64(b) != 0, nil
	}
	digits, _, err := d.IntDigits(addr)
	if err != nil {
		return false, err
	}
	return len(digits) > 0, nil
}

// Float decodes a float.
func (d *Decoder) Float(addr uint64) (float64, error) {
	b, err := d.c.Bytes(addr+uint64(d.l.Float.Fval), 8)
	if err != nil {
		return 0, fmt.Errorf("float at %#x: %w", addr, err)
	}
	return math.Float64frombits(mem.LE64(b)), nil
}
