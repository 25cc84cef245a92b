package pyspy

import (
	"fmt"
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
	// main names the main thread by its OS thread id when threading
	// keys it by something else: gevent's monkey-patching re-keys it
	// by id() of its main greenlet, no thread state's ident.
	main mainThread
}

// mainThread is threading._main_thread's name and OS thread id
// (_native_id, 3.8+), or zero.
type mainThread struct {
	native int
	name   string
}

func (c *nameCache) init() {
	c.byID = map[uint64]string{}
	c.refreshed = -refreshEvery
}

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
			c.main = r.readMainThread()
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
	if !ok && c.main.native != 0 && t.NativeID == c.main.native {
		return c.main.name, true
	}
	return name, ok
}

func (r *Reader) readThreadNames() (map[uint64]string, error) {
	if r.names.module == 0 {
		modules, err := r.dec.Pointer(r.interp + uint64(r.l.Interp.Modules))
		if err != nil {
			return nil, fmt.Errorf("sys.modules: %w", err)
		}
		if modules == 0 {
			return nil, fmt.Errorf("sys.modules not set")
		}
		mod, err := r.dec.DictLookup(modules, "threading")
		if err != nil {
			return nil, fmt.Errorf("sys.modules: %w", err)
		}
		if mod == 0 {
			return map[uint64]string{}, nil // threading not imported
		}
		md, err := r.dec.Pointer(mod + uint64(r.l.Module.Dict))
		if err != nil {
			return nil, fmt.Errorf("threading module: %w", err)
		}
		r.names.module = md
	}
	active, err := r.dec.DictLookup(r.names.module, "_active")
	if err != nil || active == 0 {
		r.names.module = 0 // re-find the module next time
		return nil, fmt.Errorf("threading._active: %v", err)
	}
	items, _, err := r.dec.DictItems(active, maxThreads)
	if err != nil {
		return nil, fmt.Errorf("threading._active: %w", err)
	}
	out := make(map[uint64]string, len(items))
	for _, it := range items {
		id, neg, err := r.dec.IntValue(it.Key)
		if err != nil || neg {
			continue
		}
		if name, ok := r.threadObjectName(it.Value); ok {
			out[id] = name
		}
	}
	return out, nil
}

// readMainThread reads threading._main_thread's name and OS thread id,
// once the threading module is found; zero where it has none (before 3.8
// it keeps no OS thread id).
func (r *Reader) readMainThread() mainThread {
	if r.names.module == 0 || r.v.Major == 2 {
		return mainThread{}
	}
	obj, err := r.dec.DictLookup(r.names.module, "_main_thread")
	if err != nil || obj == 0 {
		return mainThread{}
	}
	v, err := r.dec.Attribute(obj, "_native_id")
	if err != nil || v == 0 {
		return mainThread{}
	}
	id, neg, err := r.dec.IntValue(v)
	if err != nil || neg || id == 0 || id > 1<<31 {
		return mainThread{}
	}
	name, ok := r.threadObjectName(obj)
	if !ok {
		return mainThread{}
	}
	return mainThread{native: int(id), name: name}
}

// threadObjectName reads Thread._name (Thread.__name in 2.7) from a
// threading.Thread instance's attributes.
func (r *Reader) threadObjectName(obj uint64) (string, bool) {
	attr := "_name"
	if r.v.Major == 2 {
		attr = "_Thread__name"
	}
	v, err := r.dec.Attribute(obj, attr)
	if err != nil || v == 0 {
		return "", false
	}
	name, err := r.dec.Str(v)
	return name, err == nil
}
