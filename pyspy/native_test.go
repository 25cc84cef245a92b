package pyspy_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyversions"
)

// pthreadMemory is a snapshot with a made-up struct pthread at each
// thread's pthread id, which snapshots do not record.
type pthreadMemory struct {
	base    *pyspy.Snapshot
	structs map[uint64][]byte
}

func (m *pthreadMemory) ReadAt(p []byte, off int64) (int, error) {
	addr := uint64(off)
	for at, b := range m.structs {
		if addr >= at && addr+uint64(len(p)) <= at+uint64(len(b)) {
			return copy(p, b[addr-at:]), nil
		}
	}
	return m.base.ReadAt(p, off)
}

// TestSetOSThreads learns where struct pthread keeps the thread id from
// the memory of real pre-3.11 interpreters, with the structs laid out as
// glibc does (tid at 0x2d0) and with the members that can hold the same
// value as the pid: glibc's header.multiple_threads (1 in every thread of a
// threaded process, at 0x18) and, before glibc 2.25, the pid right after
// the tid. In a container the pid is 1, so the flag equals it.
func TestSetOSThreads(t *testing.T) {
	const tidOff = 0x2d0
	for _, tc := range []struct {
		name     string
		pid      int
		tidBase  int  // the other threads' ids count up from here
		pidAfter bool // glibc < 2.25
	}{
		{"host", 40123, 40200, false},
		{"host, old glibc", 40123, 40200, true},
		{"container init", 1, 7, false},
		{"container init, old glibc", 1, 7, true},
		{"container, pid 2", 2, 3, false},
	} {
		for _, file := range snapshots(t) {
			snap := pyspy.LoadSnapshot(t, file)
			l, err := pyversions.LayoutFor(snap.Version)
			if err != nil {
				t.Fatal(err)
			}
			if l.Thread.NativeThreadID >= 0 {
				continue // the thread state holds the id itself
			}
			name := strings.TrimSuffix(file[strings.LastIndexByte(file, '/')+1:], ".snap")
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				r, err := snap.Open()
				if err != nil {
					t.Fatal(err)
				}
				threads, _ := r.Sample(pyspy.SampleOptions{NoNames: true})
				if len(threads) < 2 {
					t.Fatalf("snapshot has %d threads", len(threads))
				}
				mem := &pthreadMemory{base: snap, structs: map[uint64][]byte{}}
				want := map[uint64]int{}
				var tids []int
				for i, th := range threads {
					// The main thread is last in the list, as in
					// CPython, where new threads are pushed in front.
					tid := tc.tidBase + i
					if i == len(threads)-1 {
						tid = tc.pid
					}
					b := make([]byte, 2048)
					binary.LittleEndian.PutUint64(b[0x10:], th.ID) // header.self
					binary.LittleEndian.PutUint32(b[0x18:], 1)     // header.multiple_threads
					binary.LittleEndian.PutUint32(b[tidOff:], uint32(tid))
					if tc.pidAfter {
						binary.LittleEndian.PutUint32(b[tidOff+4:], uint32(tc.pid))
					}
					mem.structs[th.ID] = b
					want[th.ID] = tid
					tids = append(tids, tid)
				}
				cfg := snap.Config
				cfg.Layout, cfg.Version, cfg.NoReadahead = l, snap.Version, true
				r, err = pyspy.New(mem, cfg)
				if err != nil {
					t.Fatal(err)
				}
				r.SetOSThreads(tc.pid, tids)
				got, _ := r.Sample(pyspy.SampleOptions{NoNames: true})
				for _, th := range got {
					if th.NativeID != want[th.ID] {
						t.Errorf("thread %#x: native id %d, want %d", th.ID, th.NativeID, want[th.ID])
					}
				}
			})
		}
	}
}
