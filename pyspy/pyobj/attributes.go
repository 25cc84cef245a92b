package pyobj

import (
	"fmt"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// Py_TPFLAGS_MANAGED_DICT (3.11+) and Py_TPFLAGS_INLINE_VALUES (3.13+).
const (
	tpManagedDict  = 1 << 4
	tpInlineValues = 1 << 2
)

// Attribute finds a plain instance attribute, wherever this version keeps
// the instance's __dict__.
//
// It returns the attribute's value, or 0 if the instance has none.
func (d *Decoder) Attribute(obj uint64, attr string) (uint64, error) {
	typ, err := d.TypeOf(obj)
	if err != nil {
		return 0, err
	}
	f, err := d.Read(typ, mem.Extent(d.l.Type.Flags, d.l.Type.Dictoffset, d.l.Type.Basicsize), "type")
	if err != nil {
		return 0, err
	}
	flags, dictoffset, basicsize := f.Ptr(d.l.Type.Flags), f.I64(d.l.Type.Dictoffset), f.I64(d.l.Type.Basicsize)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if d.v.AtLeast(3, 11) && flags&tpManagedDict != 0 {
		// The managed dict pointer sits three words before the object.
		dict, err := d.Pointer(obj - 3*8)
		if err != nil {
			return 0, err
		}
		// Where the values for the type's shared keys are, if the
		// instance still uses them rather than a dict of its own.
		var values uint64
		switch {
		case d.v.AtLeast(3, 13):
			if flags&tpInlineValues != 0 {
				if basicsize < 16 || basicsize > 1<<20 {
					return 0, fmt.Errorf("type at %#x: basic size %d", typ, basicsize)
				}
				values = obj + uint64(basicsize)
			}
		case d.v.AtLeast(3, 12):
			// Dict or values: values are tagged by a set low bit,
			// as the values pointer minus one.
			if dict&1 != 0 {
				values, dict = dict+1, 0
			}
		default:
			// 3.11 keeps the values pointer four words before the
			// object, and clears it when a dict is made.
			if values, err = d.Pointer(obj - 4*8); err != nil {
				return 0, err
			}
		}
		if values != 0 {
			keys, err := d.Pointer(typ + uint64(d.l.Type.CachedKeys))
			if err != nil || keys == 0 {
				return 0, fmt.Errorf("cached keys of type %#x: %v", typ, err)
			}
			v, valid, err := d.splitLookup(keys, values, attr)
			if err != nil || valid {
				return v, err
			}
			// 3.13 inline values that are no longer valid: the
			// attributes moved to the managed dict.
		}
		if dict == 0 {
			return 0, nil
		}
		return d.DictLookup(dict, attr)
	}
	if dictoffset <= 0 {
		return 0, nil
	}
	dict, err := d.Pointer(obj + uint64(dictoffset))
	if err != nil || dict == 0 {
		return 0, err
	}
	return d.DictLookup(dict, attr)
}

// splitLookup finds attr among a type's shared keys and returns the
// instance's value at the same index, and whether the values are valid
// (only 3.13 inline values can be invalid).
func (d *Decoder) splitLookup(keys, values uint64, attr string) (uint64, bool, error) {
	keyAddrs, _, err := d.keysEntries(keys, maxItems)
	if err != nil {
		return 0, false, err
	}
	sv, err := d.readSplitValues(values, len(keyAddrs))
	if err != nil || !sv.valid {
		return 0, sv.valid, err
	}
	for i, k := range keyAddrs[:sv.n] {
		if k != 0 && d.StrEquals(k, attr) {
			v, err := d.Pointer(sv.array + uint64(8*i))
			return v, true, err
		}
	}
	return 0, true, nil
}
