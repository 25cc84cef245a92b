package pyobj

import (
	"fmt"
	"slices"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// SeqItems returns the item pointers of a tuple or list, at most max, and
// its length.
func (d *Decoder) SeqItems(addr uint64, list bool, max int) ([]uint64, int, error) {
	what := "tuple"
	if list {
		what = "list"
	}
	f, err := d.Read(addr, mem.Extent(d.l.Object.Size, d.l.List.Item), what)
	if err != nil {
		return nil, 0, err
	}
	n := f.I64(d.l.Object.Size)
	items := addr + uint64(d.l.Tuple.Item)
	if list {
		items = f.Ptr(d.l.List.Item)
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
	b, err := d.c.Bytes(items, uint64(k)*8)
	if err != nil {
		return nil, 0, fmt.Errorf("%s items at %#x: %w", what, items, err)
	}
	out := make([]uint64, k)
	for i := range out {
		out[i] = mem.LE64(b[8*i:])
	}
	return out, int(n), nil
}

// KV is one live dict entry: the addresses of its key and value.
type KV struct{ Key, Value uint64 }

// DictItems returns a dict's entries in iteration order, at most max of
// them, and the dict's size.
func (d *Decoder) DictItems(addr uint64, max int) ([]KV, int, error) {
	if d.py2 {
		return d.dictItems27(addr, max)
	}
	l := &d.l.Dict
	f, err := d.Read(addr, mem.Extent(l.Used, l.Keys, l.Values), "dict")
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
	out, err := d.keysItems(keys, values, max)
	return out, int(used), err
}

// keysEntries reads the entry slots of a PyDictKeysObject: each slot's
// key and the value stored in the entry itself (zero for split tables,
// whose values live with each instance). At most max slots are read.
func (d *Decoder) keysEntries(keys uint64, max int) (ks, vs []uint64, err error) {
	lk := &d.l.DictKeys
	f, err := d.Read(keys, uint64(lk.Indices), "dict keys")
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
	b, err := d.c.Bytes(entries, uint64(n)*uint64(entrySize))
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
func (d *Decoder) keysItems(keys, values uint64, max int) ([]KV, error) {
	// Deleted entries are skipped, so read more slots than items wanted,
	// but not the whole table for a display of a few items.
	limit := maxItems
	if max < maxItems/4 {
		limit = 4*max + 64
	}
	ks, vs, err := d.keysEntries(keys, limit)
	if err != nil {
		return nil, err
	}
	// A split table iterates in the instance's insertion order (3.11+);
	// nil means slot order.
	var order []uint8
	if values != 0 && len(ks) > 0 {
		sv, err := d.readSplitValues(values, len(ks))
		if err != nil {
			return nil, err
		}
		slots, err := d.slots(sv)
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
	var out []KV
	for j := 0; j < n && len(out) < max; j++ {
		i := j
		if order != nil {
			i = int(order[j])
		}
		// Deleted entries have no key (3.11+) or a dummy key with no
		// value; split tables leave NULL values for keys this instance
		// does not have.
		if ks[i] != 0 && vs[i] != 0 {
			out = append(out, KV{ks[i], vs[i]})
		}
	}
	return out, nil
}

// openTable reads the header of an open-addressed table (2.7's dicts, every
// set's) at addr, the fields at the offsets given, and the table's
// mask+1 entries, bounded.
func (d *Decoder) openTable(addr uint64, what string, usedOff, maskOff, tableOff, entrySize int64) (b []byte, used, mask int64, err error) {
	f, err := d.Read(addr, mem.Extent(usedOff, maskOff, tableOff), what)
	if err != nil {
		return nil, 0, 0, err
	}
	used, mask, table := f.I64(usedOff), f.I64(maskOff), f.Ptr(tableOff)
	if f.Err() != nil {
		return nil, 0, 0, f.Err()
	}
	if used < 0 || mask < 0 || mask+1 > maxItems || used > mask+1 {
		return nil, 0, 0, badObject(addr, what, "used %d mask %d", used, mask)
	}
	b, err = d.c.Bytes(table, uint64(mask+1)*uint64(entrySize))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s table at %#x: %w", what, table, err)
	}
	return b, used, mask, nil
}

// dictItems27 walks 2.7's open-addressed table, whose order is the slot
// order.
func (d *Decoder) dictItems27(addr uint64, max int) ([]KV, int, error) {
	l, lk := &d.l.Dict, &d.l.DictKeys
	b, used, mask, err := d.openTable(addr, "dict", l.Used, l.Mask, l.Table, lk.EntrySize)
	if err != nil {
		return nil, 0, err
	}
	var out []KV
	for i := int64(0); i <= mask && len(out) < max; i++ {
		e := b[i*lk.EntrySize:]
		if k, v := mem.LE64(e[lk.EntryKey:]), mem.LE64(e[lk.EntryValue:]); k != 0 && v != 0 {
			out = append(out, KV{k, v})
		}
	}
	return out, int(used), nil
}

// SetItems returns a set's keys in table order, at most max.
func (d *Decoder) SetItems(addr uint64, max int) ([]uint64, int, error) {
	l := &d.l.Set
	b, used, mask, err := d.openTable(addr, "set", l.Used, l.Mask, l.Table, l.EntrySize)
	if err != nil {
		return nil, 0, err
	}
	if d.py2 {
		return d.setKeys27(b, used, max), int(used), nil
	}
	dummy := d.setDummy
	var out []uint64
	for i := int64(0); i <= mask && len(out) < max; i++ {
		k := mem.LE64(b[i*l.EntrySize+l.EntryKey:])
		if k == 0 {
			continue
		}
		// Deleted slots hold the shared dummy key, a plain object.
		if dummy == 0 {
			if name, _, err := d.BuiltinType(k); err == nil && name == "object" {
				d.setDummy = k
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
func (d *Decoder) setKeys27(table []byte, used int64, max int) []uint64 {
	l := &d.l.Set
	var keys []uint64
	for off := int64(0); off+l.EntrySize <= int64(len(table)); off += l.EntrySize {
		if k := mem.LE64(table[off+l.EntryKey:]); k != 0 {
			keys = append(keys, k)
		}
	}
	deleted := int64(len(keys)) > used
	if deleted && !slices.Contains(keys, d.setDummy) {
		for _, k := range keys {
			if name, _, err := d.BuiltinType(k); err == nil && name == "str" {
				if b, more, err := d.Bytes(k, len(setDummy27)); err == nil && !more && string(b) == setDummy27 {
					d.setDummy = k
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
		if deleted && k == d.setDummy {
			continue
		}
		out = append(out, k)
	}
	return out
}

// DictLookup finds the value of an ASCII str key by comparing keys, since
// the target's string hashes are salted and cannot be recomputed here.
func (d *Decoder) DictLookup(addr uint64, key string) (uint64, error) {
	items, _, err := d.DictItems(addr, maxItems)
	if err != nil {
		return 0, err
	}
	// Fetch every key's header in one read rather than one read each.
	hdr := uint64(d.l.Unicode.CompactSize) + 8
	if d.py2 {
		// A 2.7 str holds its bytes inline: the header and as many bytes
		// as the key has settle every comparison.
		hdr = uint64(d.l.Bytes.Sval) + uint64(len(key))
	}
	regs := make([]mem.Region, 0, len(items))
	for _, it := range items {
		regs = append(regs, mem.Region{Addr: it.Key, Len: hdr})
	}
	d.c.Prefetch(regs...)
	for _, it := range items {
		if d.StrEquals(it.Key, key) {
			return it.Value, nil
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
func (d *Decoder) readSplitValues(values uint64, nkeys int) (splitValues, error) {
	sv := splitValues{array: values + uint64(d.l.Dict.ValuesArray), n: nkeys, valid: true}
	switch {
	case d.v.AtLeast(3, 13):
		// {capacity, size, embedded, valid} bytes, the values, then
		// capacity bytes of insertion order.
		h, err := d.c.Bytes(values, 4)
		if err != nil {
			return sv, fmt.Errorf("dict values at %#x: %w", values, err)
		}
		capacity, size := int(h[0]), int(h[1])
		if size > capacity {
			return sv, badObject(values, "dict values", "size %d over capacity %d", size, capacity)
		}
		sv.n, sv.valid = min(nkeys, capacity), h[3] != 0
		orderAt := sv.array + uint64(8*capacity)
		o, err := d.c.Bytes(orderAt, uint64(size))
		if err != nil {
			return sv, fmt.Errorf("dict values order at %#x: %w", orderAt, err)
		}
		sv.order = append(make([]uint8, 0, size), o...)
	case d.v.AtLeast(3, 11):
		// The bytes before the array: [-1] is the prefix size, [-2]
		// the number of values, and [-3-i] the i-th inserted index.
		p, err := d.c.Bytes(values-1, 1)
		if err != nil {
			return sv, fmt.Errorf("dict values prefix at %#x: %w", values, err)
		}
		prefix := int(p[0])
		if prefix < 2 {
			return sv, badObject(values, "dict values", "prefix size %d", prefix)
		}
		b, err := d.c.Bytes(values-uint64(prefix), uint64(prefix))
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
func (d *Decoder) slots(sv splitValues) ([]uint64, error) {
	if sv.n == 0 {
		return nil, nil
	}
	b, err := d.c.Bytes(sv.array, uint64(sv.n)*8)
	if err != nil {
		return nil, fmt.Errorf("dict values at %#x: %w", sv.array, err)
	}
	out := make([]uint64, sv.n)
	for i := range out {
		out[i] = mem.LE64(b[8*i:])
	}
	return out, nil
}
