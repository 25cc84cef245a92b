package pyspy

import (
	"fmt"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// Thread names are read from threading._active, a dict from thread ident
// to Thread object. Walking sys.modules to find it takes many reads, so
// the result is kept and refreshed after refreshEvery samples (names can be
// reassigned), or sooner when a thread with an unknown ident appears. A
// new thread's state exists a little before threading registers it, so an
// unknown ident is looked up again, but at most every recheckEvery samples.
const (
	refreshEvery = 500
	recheckEvery = 20
)

type nameCache struct {
	byID map[uint64]string
	// native holds the OS thread id each named ident had at the last
	// refresh. The C library reuses a finished thread's struct pthread,
	// and with it the ident, for a thread it starts later: a thread of a
	// named ident but another OS thread id is not the one named.
	native    map[uint64]int
	refreshed int    // sample of the last refresh
	module    uint64 // the threading module's dict, once found
}

func (c *nameCache) init() {
	c.byID = map[uint64]string{}
	c.refreshed = -refreshEvery
}

// Py_TPFLAGS_MANAGED_DICT (3.11+) and Py_TPFLAGS_INLINE_VALUES (3.13+).
const (
	tpManagedDict  = 1 << 4
	tpInlineValues = 1 << 2
)

// threadNames fills in the names of ts from the cache, refreshing it when
// needed.
func (r *Reader) threadNames(ts []Thread) {
	c := &r.names
	age := r.stats.Samples - c.refreshed
	stale := age >= refreshEvery
	for i := range ts {
		if _, ok := c.name(&ts[i]); !ok && age >= recheckEvery {
			stale = true
		}
	}
	if stale {
		c.refreshed = r.stats.Samples
		if names, err := r.readThreadNames(); err == nil {
			c.byID = names
			c.native = make(map[uint64]int, len(ts))
			for _, t := range ts {
				if _, ok := names[t.ID]; ok {
					c.native[t.ID] = t.NativeID
				}
			}
		}
	}
	for i := range ts {
		ts[i].Name, ts[i].HasName = c.name(&ts[i])
	}
}

// name is t's name as cached: none for a thread that reuses the ident of
// a thread named before it (it is named at the next refresh).
func (c *nameCache) name(t *Thread) (string, bool) {
	name, ok := c.byID[t.ID]
	if n, seen := c.native[t.ID]; ok && seen && n != t.NativeID {
		return "", false
	}
	return name, ok
}

func (r *Reader) readThreadNames() (map[uint64]string, error) {
	if r.names.module == 0 {
		modules, err := r.pointer(r.interp + uint64(r.l.Interp.Modules))
		if err != nil {
			return nil, fmt.Errorf("sys.modules: %w", err)
		}
		if modules == 0 {
			return nil, fmt.Errorf("sys.modules not set")
		}
		mod, err := r.dictLookup(modules, "threading")
		if err != nil {
			return nil, fmt.Errorf("sys.modules: %w", err)
		}
		if mod == 0 {
			return map[uint64]string{}, nil // threading not imported
		}
		md, err := r.pointer(mod + uint64(r.l.Module.Dict))
		if err != nil {
			return nil, fmt.Errorf("threading module: %w", err)
		}
		r.names.module = md
	}
	active, err := r.dictLookup(r.names.module, "_active")
	if err != nil || active == 0 {
		r.names.module = 0 // re-find the module next time
		return nil, fmt.Errorf("threading._active: %v", err)
	}
	items, _, err := r.dictItems(active, maxThreads)
	if err != nil {
		return nil, fmt.Errorf("threading._active: %w", err)
	}
	out := make(map[uint64]string, len(items))
	for _, it := range items {
		id, neg, err := r.intValue(it.key)
		if err != nil || neg {
			continue
		}
		if name, ok := r.threadObjectName(it.value); ok {
			out[id] = name
		}
	}
	return out, nil
}

// threadObjectName reads Thread._name (Thread.__name in 2.7) from a
// threading.Thread instance's attributes.
func (r *Reader) threadObjectName(obj uint64) (string, bool) {
	attr := "_name"
	if r.py2 {
		attr = "_Thread__name"
	}
	v, err := r.attribute(obj, attr)
	if err != nil || v == 0 {
		return "", false
	}
	name, err := r.str(v)
	return name, err == nil
}

// attribute finds a plain instance attribute, wherever this version keeps
// the instance's __dict__.
func (r *Reader) attribute(obj uint64, attr string) (uint64, error) {
	typ, err := r.typeOf(obj)
	if err != nil {
		return 0, err
	}
	f, err := r.read(typ, mem.Extent(r.l.Type.Flags, r.l.Type.Dictoffset, r.l.Type.Basicsize), "type")
	if err != nil {
		return 0, err
	}
	flags, dictoffset, basicsize := f.Ptr(r.l.Type.Flags), f.I64(r.l.Type.Dictoffset), f.I64(r.l.Type.Basicsize)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if r.v.AtLeast(3, 11) && flags&tpManagedDict != 0 {
		// The managed dict pointer sits three words before the object.
		dict, err := r.pointer(obj - 3*8)
		if err != nil {
			return 0, err
		}
		// Where the values for the type's shared keys are, if the
		// instance still uses them rather than a dict of its own.
		var values uint64
		switch {
		case r.v.AtLeast(3, 13):
			if flags&tpInlineValues != 0 {
				if basicsize < 16 || basicsize > 1<<20 {
					return 0, fmt.Errorf("type at %#x: basic size %d", typ, basicsize)
				}
				values = obj + uint64(basicsize)
			}
		case r.v.AtLeast(3, 12):
			// Dict or values: values are tagged by a set low bit,
			// as the values pointer minus one.
			if dict&1 != 0 {
				values, dict = dict+1, 0
			}
		default:
			// 3.11 keeps the values pointer four words before the
			// object, and clears it when a dict is made.
			if values, err = r.pointer(obj - 4*8); err != nil {
				return 0, err
			}
		}
		if values != 0 {
			keys, err := r.pointer(typ + uint64(r.l.Type.CachedKeys))
			if err != nil || keys == 0 {
				return 0, fmt.Errorf("cached keys of type %#x: %v", typ, err)
			}
			v, valid, err := r.splitLookup(keys, values, attr)
			if err != nil || valid {
				return v, err
			}
			// 3.13 inline values that are no longer valid: the
			// attributes moved to the managed dict.
		}
		if dict == 0 {
			return 0, nil
		}
		return r.dictLookup(dict, attr)
	}
	if dictoffset <= 0 {
		return 0, nil
	}
	dict, err := r.pointer(obj + uint64(dictoffset))
	if err != nil || dict == 0 {
		return 0, err
	}
	return r.dictLookup(dict, attr)
}

// splitLookup finds attr among a type's shared keys and returns the
// instance's value at the same index, and whether the values are valid
// (only 3.13 inline values can be invalid).
func (r *Reader) splitLookup(keys, values uint64, attr string) (uint64, bool, error) {
	keyAddrs, _, err := r.keysEntries(keys, maxItems)
	if err != nil {
		return 0, false, err
	}
	sv, err := r.readSplitValues(values, len(keyAddrs))
	if err != nil || !sv.valid {
		return 0, sv.valid, err
	}
	for i, k := range keyAddrs[:sv.n] {
		if k != 0 && r.strEquals(k, attr) {
			v, err := r.pointer(sv.array + uint64(8*i))
			return v, true, err
		}
	}
	return 0, true, nil
}
