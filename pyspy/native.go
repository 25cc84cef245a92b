package pyspy

import (
	"encoding/binary"
	"slices"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// Before 3.11 a thread state records only the pthread id, which on Linux is
// the address of the thread's struct pthread. The OS thread id is a member
// of that struct at an offset that depends on the C library (glibc, musl)
// and its version, so it is learnt from the target: the main thread's
// struct holds the process id, and every other thread's struct holds one of
// the process's thread ids at the same offset, each a different one.
//
// The ids are those of the target's own pid namespace, which is what the C
// library stores. In a container they are small: the pid of a container's
// init is 1, a value that other members (flags, counts) hold too.
type nativeIDs struct {
	offset int64 // where struct pthread holds the thread id, once found
	found  bool
	// settled is set when no later call could choose differently: the
	// offset was checked against two or more threads, or it was the only
	// one holding the pid.
	settled bool
}

const (
	// maxPthreadScan bounds how much of struct pthread is searched.
	maxPthreadScan = 2048
	// maxCalibrateThreads and maxCalibrateOffsets (per thread) bound the
	// work of learning the offset when many threads or words match.
	maxCalibrateThreads = 64
	maxCalibrateOffsets = 64
)

// SetOSThreads gives the reader the process id and OS thread ids of the
// target, as the target sees them (in its own pid namespace), from which it
// learns where the C library keeps the thread id (only needed before
// 3.11). With a single thread the choice can be ambiguous; call it again
// when the thread set grows, and the offset is then checked against the
// new threads. Once settled, calls return at once.
func (r *Reader) SetOSThreads(pid int, tids []int) {
	if r.l.Thread.NativeThreadID >= 0 || r.native.settled {
		return
	}
	r.cache.Begin()
	tstates, err := r.threadList()
	if err != nil {
		return
	}
	known := make(map[uint32]bool, len(tids))
	for _, t := range tids {
		known[uint32(t)] = true
	}
	// Each distinct struct pthread once: two thread states of one thread
	// would otherwise fail the test that ids differ.
	var ids []uint64
	for _, addr := range tstates {
		if len(ids) == maxCalibrateThreads {
			break
		}
		ts, err := r.readThread(addr)
		if err != nil || ts.id == 0 || slices.Contains(ids, ts.id) {
			continue
		}
		ids = append(ids, ts.id)
	}
	regions := make([]mem.Region, len(ids))
	for i, id := range ids {
		regions[i] = mem.Region{Addr: id, Len: maxPthreadScan}
	}
	r.cache.Prefetch(regions...)
	// Any thread may be the main one: its position in the list differs
	// between versions, and where the pid is small another thread's
	// struct may hold it too, at an offset the other checks reject.
	for _, main := range ids {
		b, err := r.cache.Bytes(main, maxPthreadScan)
		if err != nil {
			continue
		}
		var fits []int64
		tried := 0
		for off := 0; off+4 <= len(b) && tried < maxCalibrateOffsets; off += 4 {
			if binary.LittleEndian.Uint32(b[off:]) != uint32(pid) {
				continue
			}
			tried++
			if r.holdsThreadIDs(ids, uint64(off), known) {
				fits = append(fits, int64(off))
			}
		}
		if len(fits) > 0 {
			// The first fit: the thread id precedes the other members
			// that can equal it (glibc before 2.25 kept the pid right
			// after it).
			r.native.offset, r.native.found = fits[0], true
			r.native.settled = len(ids) > 1 || len(fits) == 1
			return
		}
	}
}

// holdsThreadIDs reports whether every struct pthread in ids holds a
// different one of the known thread ids at off.
func (r *Reader) holdsThreadIDs(ids []uint64, off uint64, known map[uint32]bool) bool {
	seen := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		b, err := r.cache.Bytes(id+off, 4)
		if err != nil {
			return false
		}
		v := binary.LittleEndian.Uint32(b)
		if !known[v] || seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}

// nativeID returns the OS thread id of t, in the target's pid namespace,
// or 0.
func (r *Reader) nativeID(t *tstate) int {
	if r.l.Thread.NativeThreadID >= 0 {
		return int(t.nativeID)
	}
	if !r.native.found || t.id == 0 {
		return 0
	}
	b, err := r.cache.Exact(t.id+uint64(r.native.offset), 4)
	if err != nil {
		return 0
	}
	return int(int32(binary.LittleEndian.Uint32(b)))
}

// KnowsOSThreads reports whether samples carry OS thread ids: the layout
// has them (3.11+), or SetOSThreads has learnt where the C library keeps
// them.
func (r *Reader) KnowsOSThreads() bool {
	return r.l.Thread.NativeThreadID >= 0 || r.native.found
}

// FillOSThreads gives the threads of a sample taken before SetOSThreads
// had learnt where the C library keeps thread ids (the sample that showed
// the process a new thread, which the learning needs) the OS thread ids
// that sample lacked, reading them as Sample would now, and drops the
// threads whose id reads 0, as Sample does: their OS thread has ended.
// It does nothing when the threads have their ids, or none can be known.
func (r *Reader) FillOSThreads(threads []Thread) []Thread {
	if r.l.Thread.NativeThreadID >= 0 || !r.native.found {
		return threads
	}
	kept := threads[:0]
	for _, t := range threads {
		if t.NativeID == 0 {
			t.NativeID = r.nativeID(&tstate{id: t.ID})
			if t.NativeID == 0 {
				continue
			}
		}
		kept = append(kept, t)
	}
	return kept
}
