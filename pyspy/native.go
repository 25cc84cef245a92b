package pyspy

import "encoding/binary"

// Before 3.11 a thread state records only the pthread id, which on Linux is
// the address of the thread's struct pthread. The OS thread id is a member
// of that struct at an offset that depends on the C library (glibc, musl)
// and its version, so it is learnt from the target: the main thread's
// struct holds the process id, and every other thread's struct holds one of
// the process's thread ids at the same offset.
type nativeIDs struct {
	offset  int64 // -1: not learnt or not learnable
	learned bool
}

// maxPthreadScan bounds how much of struct pthread is searched.
const maxPthreadScan = 2048

// SetOSThreads gives the reader the process id and OS thread ids of the
// target, from which it learns where the C library keeps the thread id
// (only needed before 3.11). Call it again when the thread set changes;
// the offset is learnt once.
func (r *Reader) SetOSThreads(pid int, tids []int) {
	if r.l.Thread.NativeThreadID >= 0 || r.native.learned {
		return
	}
	r.native.offset = -1
	r.cache.begin()
	tstates, err := r.threadList()
	if err != nil {
		return
	}
	known := map[uint32]bool{}
	for _, t := range tids {
		known[uint32(t)] = true
	}
	var cands []int64
	var main []byte
	var ids []uint64
	for _, addr := range tstates {
		ts, err := r.readThread(addr)
		if err != nil || ts.id == 0 {
			continue
		}
		ids = append(ids, ts.id)
	}
	// Find the main thread: the one whose struct holds the pid.
	for _, id := range ids {
		b, err := r.cache.bytes(id, maxPthreadScan)
		if err != nil {
			continue
		}
		for off := 0; off+4 <= len(b); off += 4 {
			if binary.LittleEndian.Uint32(b[off:]) == uint32(pid) {
				cands = append(cands, int64(off))
			}
		}
		if len(cands) > 0 {
			main = b
			break
		}
	}
	if main == nil {
		return
	}
	// Keep the candidates at which every other thread holds a thread id.
	for _, off := range cands {
		ok := true
		for _, id := range ids {
			b, err := r.cache.bytes(id+uint64(off), 4)
			if err != nil || !known[binary.LittleEndian.Uint32(b)] {
				ok = false
				break
			}
		}
		if ok {
			r.native.offset, r.native.learned = off, true
			return
		}
	}
}

// nativeID returns the OS thread id of t, or 0.
func (r *Reader) nativeID(t *tstate) int {
	if r.l.Thread.NativeThreadID >= 0 {
		return int(t.nativeID)
	}
	if !r.native.learned || t.id == 0 {
		return 0
	}
	b, err := r.cache.exact(t.id+uint64(r.native.offset), 4)
	if err != nil {
		return 0
	}
	return int(int32(binary.LittleEndian.Uint32(b)))
}
