package pyspy

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/pyprof/pyprof/pyspy/mem"
)

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
// live, but the cache is per Reader and types are re-read for each dump.
type typeInfo struct {
	name  string
	flags uint64
	heap  bool
}

func (r *Reader) typeOf(addr uint64) (uint64, error) {
	b, err := r.cache.Bytes(addr+uint64(r.l.Object.Type), 8)
	if err != nil {
		return 0, err
	}
	return mem.LE64(b), nil
}

func (r *Reader) typeInfo(typ uint64) (*typeInfo, error) {
	if ti, ok := r.types[typ]; ok {
		return ti, nil
	}
	f, err := r.read(typ, mem.Extent(r.l.Type.Name, r.l.Type.Flags), "type")
	if err != nil {
		return nil, err
	}
	namePtr, flags := f.Ptr(r.l.Type.Name), f.Ptr(r.l.Type.Flags)
	if f.Err() != nil {
		return nil, f.Err()
	}
	name, err := r.cstring(namePtr, maxTypeName)
	if err != nil {
		return nil, fmt.Errorf("type at %#x: name: %w", typ, err)
	}
	ti := &typeInfo{name: name, flags: flags, heap: flags&pyTPFLAGSHeap != 0}
	if len(r.types) < 4096 {
		r.types[typ] = ti
	}
	return ti, nil
}

// builtinType returns the name of obj's type when it is a static builtin
// type, and "" for heap types, whose tp_name may be anything a user chose.
func (r *Reader) builtinType(obj uint64) (string, uint64, error) {
	typ, err := r.typeOf(obj)
	if err != nil {
		return "", 0, err
	}
	ti, err := r.typeInfo(typ)
	if err != nil {
		return "", typ, err
	}
	if ti.heap {
		return "", typ, nil
	}
	return ti.name, typ, nil
}

// read fetches n bytes of a struct for field decoding.
func (r *Reader) read(addr uint64, n uint64, what string) (mem.Fields, error) {
	if addr == 0 {
		return mem.Fields{}, fmt.Errorf("%s: null pointer", what)
	}
	b, err := r.cache.Bytes(addr, n)
	if err != nil {
		return mem.Fields{}, fmt.Errorf("%s: %w", what, err)
	}
	return mem.NewFields(b, addr, what), nil
}

// cstring reads a NUL-terminated C string of at most max bytes.
func (r *Reader) cstring(addr uint64, max int) (string, error) {
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
		b, err := r.cache.Bytes(addr, n)
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

// strKind tells how a str object stores its code points.
type strData struct {
	kind   int    // bytes per code point: 1, 2 or 4
	ascii  bool   // kind 1 and all below 128
	length int    // in code points
	data   uint64 // address of the first code point
}

// strInfo decodes the header of a str (PEP 393) or, on 2.7, a unicode
// object.
func (r *Reader) strInfo(addr uint64) (strData, error) {
	l := &r.l.Unicode
	if r.py2 {
		f, err := r.read(addr, mem.Extent(l.Length, l.Str), "unicode")
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
	f, err := r.read(addr, uint64(l.CompactSize)+8, "str")
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

// codePoints reads at most max code points of a str. It reports whether
// the string was longer.
func (r *Reader) codePoints(addr uint64, max int) ([]rune, bool, error) {
	s, err := r.strInfo(addr)
	if err != nil {
		return nil, false, err
	}
	n, more := s.length, false
	if n > max {
		n, more = max, true
	}
	b, err := r.cache.Bytes(s.data, uint64(n*s.kind))
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

// str decodes a name-like string: str in Python 3, and str (bytes) or
// unicode in 2.7. Names longer than maxNameLen are an error: no real
// identifier or path is that long, so it means the pointer is bad.
func (r *Reader) str(addr uint64) (string, error) {
	if r.py2 {
		name, _, err := r.builtinType(addr)
		if err != nil {
			return "", err
		}
		if name == "str" {
			b, more, err := r.bytesData(addr, maxNameLen)
			if err != nil {
				return "", err
			}
			if more {
				return "", badObject(addr, "str", "longer than %d bytes", maxNameLen)
			}
			return string(b), nil
		}
	}
	cps, more, err := r.codePoints(addr, maxNameLen)
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

// strEquals reports whether the str at addr is exactly s (ASCII only),
// reading no more than needed.
func (r *Reader) strEquals(addr uint64, s string) bool {
	if r.py2 {
		if name, _, err := r.builtinType(addr); err == nil && name == "str" {
			b, more, err := r.bytesData(addr, len(s))
			return err == nil && !more && string(b) == s
		}
		got, err := r.str(addr)
		return err == nil && got == s
	}
	info, err := r.strInfo(addr)
	if err != nil || info.length != len(s) || info.kind != 1 {
		return false
	}
	b, err := r.cache.Bytes(info.data, uint64(len(s)))
	return err == nil && string(b) == s
}

// bytesData reads at most max bytes of a bytes object (str in 2.7).
// bytesLen reads the length of the bytes (2.7: str) object at addr.
func (r *Reader) bytesLen(addr uint64) (int, error) {
	f, err := r.read(addr, uint64(r.l.Bytes.Sval), "bytes")
	if err != nil {
		return 0, err
	}
	n := f.I64(r.l.Object.Size)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if n < 0 {
		return 0, badObject(addr, "bytes", "size %d", n)
	}
	return int(n), nil
}

func (r *Reader) bytesData(addr uint64, max int) ([]byte, bool, error) {
	f, err := r.read(addr, uint64(r.l.Bytes.Sval), "bytes")
	if err != nil {
		return nil, false, err
	}
	n := f.I64(r.l.Object.Size)
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
	b, err := r.cache.Bytes(addr+uint64(r.l.Bytes.Sval), uint64(n))
	if err != nil {
		return nil, false, fmt.Errorf("bytes data at %#x: %w", addr, err)
	}
	return b, more, nil
}

// intDigits reads an int's magnitude as 30-bit digits and its sign.
func (r *Reader) intDigits(addr uint64) ([]uint32, bool, error) {
	l := &r.l.Long
	var n int64
	neg := false
	if l.Tag >= 0 {
		f, err := r.read(addr, uint64(l.Tag)+8, "int")
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
		f, err := r.read(addr, uint64(r.l.Object.Size)+8, "int")
		if err != nil {
			return nil, false, err
		}
		n = f.I64(r.l.Object.Size)
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
	b, err := r.cache.Bytes(addr+uint64(l.Digit), uint64(n)*uint64(size))
	if err != nil {
		return nil, false, fmt.Errorf("int digits at %#x: %w", addr, err)
	}
	if size == 2 {
		d, err := pairDigits15(addr, b)
		return d, neg, err
	}
	d := make([]uint32, n)
	for i := range d {
		d[i] = binary.LittleEndian.Uint32(b[4*i:])
		if d[i]>>digitBits != 0 {
			return nil, false, badObject(addr, "int", "digit %d is %#x", i, d[i])
		}
	}
	return d, neg, nil
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

// intValue decodes an int that fits in 64 bits, as thread idents do.
func (r *Reader) intValue(addr uint64) (uint64, bool, error) {
	if r.py2 {
		if name, _, err := r.builtinType(addr); err == nil && name == "int" {
			b, err := r.cache.Bytes(addr+uint64(r.l.Int.Ival), 8)
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
	d, neg, err := r.intDigits(addr)
	if err != nil {
		return 0, false, err
	}
	if len(d) > 3 || len(d) == 3 && d[2]>>4 != 0 {
		return 0, false, badObject(addr, "int", "does not fit 64 bits")
	}
	var v uint64
	for i := len(d) - 1; i >= 0; i-- {
		v = v<<digitBits | uint64(d[i])
	}
	return v, neg, nil
}

// boolValue decodes a bool: an int whose value is 0 or 1, held in ob_ival
// in 2.7, where bool subclasses the C-long int, and as digits in 3.x.
func (r *Reader) boolValue(addr uint64) (bool, error) {
	if r.py2 {
		b, err := r.cache.Bytes(addr+uint64(r.l.Int.Ival), 8)
		if err != nil {
			return false, fmt.Errorf("bool at %#x: %w", addr, err)
		}
		return mem.LE64(b) != 0, nil
	}
	d, _, err := r.intDigits(addr)
	if err != nil {
		return false, err
	}
	return len(d) > 0, nil
}

func (r *Reader) floatValue(addr uint64) (float64, error) {
	b, err := r.cache.Bytes(addr+uint64(r.l.Float.Fval), 8)
	if err != nil {
		return 0, fmt.Errorf("float at %#x: %w", addr, err)
	}
	return math.Float64frombits(mem.LE64(b)), nil
}

// seqItems returns the item pointers of a tuple or list, at most max.
func (r *Reader) seqItems(addr uint64, list bool, max int) ([]uint64, int, error) {
	what := "tuple"
	if list {
		what = "list"
	}
	f, err := r.read(addr, mem.Extent(r.l.Object.Size, r.l.List.Item), what)
	if err != nil {
		return nil, 0, err
	}
	n := f.I64(r.l.Object.Size)
	items := addr + uint64(r.l.Tuple.Item)
	if list {
		items = f.Ptr(r.l.List.Item)
	}
	if f.Err() != nil {
		return nil, 0, f.Err()
	}
	if n < 0 || n > maxItems {
		return nil, 0, badObject(addr, what, "size %d", n)
	}
	k := n
	if k > int64(max) {
		k = int64(max)
	}
	if k == 0 {
		return nil, int(n), nil
	}
	b, err := r.cache.Bytes(items, uint64(k)*8)
	if err != nil {
		return nil, 0, fmt.Errorf("%s items at %#x: %w", what, items, err)
	}
	out := make([]uint64, k)
	for i := range out {
		out[i] = mem.LE64(b[8*i:])
	}
	return out, int(n), nil
}

// kv is one live dict entry.
type kv struct{ key, value uint64 }

// dictItems returns a dict's entries in iteration order, at most max of
// them, and the dict's size.
func (r *Reader) dictItems(addr uint64, max int) ([]kv, int, error) {
	if r.py2 {
		return r.dictItems27(addr, max)
	}
	l := &r.l.Dict
	f, err := r.read(addr, mem.Extent(l.Used, l.Keys, l.Values), "dict")
	if err != nil {
		return nil, 0, err
	}
	used, keys, values := f.I64(l.Used), f.Ptr(l.Keys), f.Ptr(l.Values)
	if f.Err() != nil {
		return nil, 0, f.Err()
	}
	if used < 0 || used > maxItems {
		return nil, 0, badObject(addr, "dict", "size %d", used)
	}
	out, err := r.keysItems(keys, values, max)
	return out, int(used), err
}

// keysEntries reads the entry slots of a PyDictKeysObject: each slot's
// key and the value stored in the entry itself (zero for split tables,
// whose values live with each instance). At most max slots are read.
func (r *Reader) keysEntries(keys uint64, max int) (ks, vs []uint64, err error) {
	lk := &r.l.DictKeys
	f, err := r.read(keys, uint64(lk.Indices), "dict keys")
	if err != nil {
		return nil, nil, err
	}
	nentries := f.I64(lk.Nentries)
	var size, ixBytes int64
	entrySize, keyOff, valOff := lk.EntrySize, lk.EntryKey, lk.EntryValue
	if lk.Log2Size >= 0 {
		log2, log2ix := int64(f.U8(lk.Log2Size)), int64(f.U8(lk.Log2IndexBytes))
		if log2 > 40 || log2ix > 43 {
			return nil, nil, badObject(keys, "dict keys", "log2 size %d, log2 index bytes %d", log2, log2ix)
		}
		size, ixBytes = 1<<log2, 1<<log2ix
		if f.U8(lk.Kind) != 0 { // unicode or split keys: no hash member
			entrySize, keyOff, valOff = lk.UnicodeEntrySize, 0, 8
		}
	} else {
		size = f.I64(lk.Size)
		switch {
		case size <= 0xff:
			ixBytes = size
		case size <= 0xffff:
			ixBytes = 2 * size
		case size <= 0xffffffff:
			ixBytes = 4 * size
		default:
			ixBytes = 8 * size
		}
	}
	if f.Err() != nil {
		return nil, nil, f.Err()
	}
	if size <= 0 || size > 1<<32 || nentries < 0 || nentries > size || nentries > maxItems {
		return nil, nil, badObject(keys, "dict keys", "size %d with %d entries", size, nentries)
	}
	n := nentries
	if n > int64(max) {
		n = int64(max)
	}
	entries := keys + uint64(lk.Indices) + uint64(ixBytes)
	b, err := r.cache.Bytes(entries, uint64(n)*uint64(entrySize))
	if err != nil {
		return nil, nil, fmt.Errorf("dict entries at %#x: %w", entries, err)
	}
	ks, vs = make([]uint64, n), make([]uint64, n)
	for i := range ks {
		e := b[int64(i)*entrySize:]
		ks[i], vs[i] = mem.LE64(e[keyOff:]), mem.LE64(e[valOff:])
	}
	return ks, vs, nil
}

// keysItems returns the live entries of a keys object in order. values is
// the split table's values (ma_values), or 0 for a combined table.
func (r *Reader) keysItems(keys, values uint64, max int) ([]kv, error) {
	// Deleted entries are skipped, so read more slots than items wanted,
	// but not the whole table for a display of a few items.
	limit := maxItems
	if max < maxItems/4 {
		limit = 4*max + 64
	}
	ks, vs, err := r.keysEntries(keys, limit)
	if err != nil {
		return nil, err
	}
	// A split table iterates in the instance's insertion order (3.11+);
	// nil means slot order.
	var order []uint8
	if values != 0 && len(ks) > 0 {
		sv, err := r.readSplitValues(values, len(ks))
		if err != nil {
			return nil, err
		}
		slots, err := r.slots(sv)
		if err != nil {
			return nil, err
		}
		clear(vs)
		copy(vs, slots)
		order = sv.order
	}
	n := len(ks)
	if order != nil {
		n = len(order)
	}
	var out []kv
	for j := 0; j < n && len(out) < max; j++ {
		i := j
		if order != nil {
			i = int(order[j])
		}
		// Deleted entries have no key (3.11+) or a dummy key with no
		// value; split tables leave NULL values for keys this instance
		// does not have.
		if ks[i] != 0 && vs[i] != 0 {
			out = append(out, kv{ks[i], vs[i]})
		}
	}
	return out, nil
}

// dictItems27 walks 2.7's open-addressed table, whose order is the slot
// order.
func (r *Reader) dictItems27(addr uint64, max int) ([]kv, int, error) {
	l, lk := &r.l.Dict, &r.l.DictKeys
	f, err := r.read(addr, mem.Extent(l.Used, l.Mask, l.Table), "dict")
	if err != nil {
		return nil, 0, err
	}
	used, mask, table := f.I64(l.Used), f.I64(l.Mask), f.Ptr(l.Table)
	if f.Err() != nil {
		return nil, 0, f.Err()
	}
	if used < 0 || mask < 0 || mask+1 > maxItems || used > mask+1 {
		return nil, 0, badObject(addr, "dict", "used %d mask %d", used, mask)
	}
	b, err := r.cache.Bytes(table, uint64(mask+1)*uint64(lk.EntrySize))
	if err != nil {
		return nil, 0, fmt.Errorf("dict table at %#x: %w", table, err)
	}
	var out []kv
	for i := int64(0); i <= mask && len(out) < max; i++ {
		e := b[i*lk.EntrySize:]
		if k, v := mem.LE64(e[lk.EntryKey:]), mem.LE64(e[lk.EntryValue:]); k != 0 && v != 0 {
			out = append(out, kv{k, v})
		}
	}
	return out, int(used), nil
}

// setItems returns a set's keys in table order, at most max.
func (r *Reader) setItems(addr uint64, max int) ([]uint64, int, error) {
	l := &r.l.Set
	f, err := r.read(addr, mem.Extent(l.Used, l.Mask, l.Table), "set")
	if err != nil {
		return nil, 0, err
	}
	used, mask, table := f.I64(l.Used), f.I64(l.Mask), f.Ptr(l.Table)
	if f.Err() != nil {
		return nil, 0, f.Err()
	}
	if used < 0 || mask < 0 || mask+1 > maxItems || used > mask+1 {
		return nil, 0, badObject(addr, "set", "used %d mask %d", used, mask)
	}
	b, err := r.cache.Bytes(table, uint64(mask+1)*uint64(l.EntrySize))
	if err != nil {
		return nil, 0, fmt.Errorf("set table at %#x: %w", table, err)
	}
	if r.py2 {
		return r.setKeys27(b, used, max), int(used), nil
	}
	dummy := r.setDummy
	var out []uint64
	for i := int64(0); i <= mask && len(out) < max; i++ {
		k := mem.LE64(b[i*l.EntrySize+l.EntryKey:])
		if k == 0 {
			continue
		}
		// Deleted slots hold the shared dummy key, a plain object.
		if dummy == 0 {
			if name, _, err := r.builtinType(k); err == nil && name == "object" {
				r.setDummy = k
				continue
			}
		} else if k == dummy {
			continue
		}
		out = append(out, k)
	}
	return out, int(used), nil
}

// setDummy27 is the content of the str that 2.7 puts in deleted set slots.
const setDummy27 = "<dummy key>"

// setKeys27 returns the live keys of a 2.7 set table, at most max. Deleted
// slots hold one str made at start-up rather than an object of its own
// type, so a user's equal string could pass for it. Only a table with more
// occupied slots than live keys has deleted slots; that is when the dummy is
// looked for, and it is then kept.
func (r *Reader) setKeys27(table []byte, used int64, max int) []uint64 {
	l := &r.l.Set
	var keys []uint64
	for off := int64(0); off+l.EntrySize <= int64(len(table)); off += l.EntrySize {
		if k := mem.LE64(table[off+l.EntryKey:]); k != 0 {
			keys = append(keys, k)
		}
	}
	deleted := int64(len(keys)) > used
	if deleted && !slices.Contains(keys, r.setDummy) {
		for _, k := range keys {
			if name, _, err := r.builtinType(k); err == nil && name == "str" {
				if b, more, err := r.bytesData(k, len(setDummy27)); err == nil && !more && string(b) == setDummy27 {
					r.setDummy = k
					break
				}
			}
		}
	}
	out := make([]uint64, 0, min(len(keys), max))
	for _, k := range keys {
		if len(out) >= max {
			break
		}
		if deleted && k == r.setDummy {
			continue
		}
		out = append(out, k)
	}
	return out
}

// dictLookup finds the value of an ASCII str key by comparing keys, since
// the target's string hashes are salted and cannot be recomputed here.
func (r *Reader) dictLookup(addr uint64, key string) (uint64, error) {
	items, _, err := r.dictItems(addr, maxItems)
	if err != nil {
		return 0, err
	}
	// Fetch every key's header in one read rather than one read each.
	hdr := uint64(r.l.Unicode.CompactSize) + 8
	if r.py2 {
		// A 2.7 str holds its bytes inline: the header and as many bytes
		// as the key has settle every comparison.
		hdr = uint64(r.l.Bytes.Sval) + uint64(len(key))
	}
	regs := make([]mem.Region, 0, len(items))
	for _, it := range items {
		regs = append(regs, mem.Region{Addr: it.key, Len: hdr})
	}
	r.cache.Prefetch(regs...)
	for _, it := range items {
		if r.strEquals(it.key, key) {
			return it.value, nil
		}
	}
	return 0, nil
}

// splitValues is the values half of a split table: a dict's ma_values, or
// the values an instance keeps for its type's shared keys.
type splitValues struct {
	array uint64 // address of values[0]
	n     int    // slots that may be read
	// order holds the shared-key indices in insertion order, which is
	// the iteration order from 3.11; nil means slot order (before 3.11
	// every instance of a type had to insert in the same order).
	order []uint8
	// valid is false for 3.13 inline values that moved to a dict.
	valid bool
}

// readSplitValues decodes the values object at values for a table of
// nkeys shared keys.
func (r *Reader) readSplitValues(values uint64, nkeys int) (splitValues, error) {
	sv := splitValues{array: values + uint64(r.l.Dict.ValuesArray), n: nkeys, valid: true}
	switch {
	case r.v.AtLeast(3, 13):
		// {capacity, size, embedded, valid} bytes, the values, then
		// capacity bytes of insertion order.
		h, err := r.cache.Bytes(values, 4)
		if err != nil {
			return sv, fmt.Errorf("dict values at %#x: %w", values, err)
		}
		capacity, size := int(h[0]), int(h[1])
		if size > capacity {
			return sv, badObject(values, "dict values", "size %d over capacity %d", size, capacity)
		}
		sv.n, sv.valid = min(nkeys, capacity), h[3] != 0
		orderAt := sv.array + uint64(8*capacity)
		o, err := r.cache.Bytes(orderAt, uint64(size))
		if err != nil {
			return sv, fmt.Errorf("dict values order at %#x: %w", orderAt, err)
		}
		sv.order = append(make([]uint8, 0, size), o...)
	case r.v.AtLeast(3, 11):
		// The bytes before the array: [-1] is the prefix size, [-2]
		// the number of values, and [-3-i] the i-th inserted index.
		p, err := r.cache.Bytes(values-1, 1)
		if err != nil {
			return sv, fmt.Errorf("dict values prefix at %#x: %w", values, err)
		}
		prefix := int(p[0])
		if prefix < 2 {
			return sv, badObject(values, "dict values", "prefix size %d", prefix)
		}
		b, err := r.cache.Bytes(values-uint64(prefix), uint64(prefix))
		if err != nil {
			return sv, fmt.Errorf("dict values prefix at %#x: %w", values, err)
		}
		size := int(b[prefix-2])
		if size+2 > prefix {
			return sv, badObject(values, "dict values", "size %d in a %d-byte prefix", size, prefix)
		}
		sv.order = make([]uint8, size)
		for i := range sv.order {
			sv.order[i] = b[prefix-3-i]
		}
	}
	for _, ix := range sv.order {
		if int(ix) >= sv.n {
			return sv, badObject(values, "dict values", "insertion order names slot %d of %d", ix, sv.n)
		}
	}
	return sv, nil
}

// slots reads the value pointers of sv.
func (r *Reader) slots(sv splitValues) ([]uint64, error) {
	if sv.n == 0 {
		return nil, nil
	}
	b, err := r.cache.Bytes(sv.array, uint64(sv.n)*8)
	if err != nil {
		return nil, fmt.Errorf("dict values at %#x: %w", sv.array, err)
	}
	out := make([]uint64, sv.n)
	for i := range out {
		out[i] = mem.LE64(b[8*i:])
	}
	return out, nil
}
