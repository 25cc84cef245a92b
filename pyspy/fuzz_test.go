package pyspy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pyprof/pyprof/pyspy/internal/snapfuzz"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// The fuzz targets feed corrupt memory to the walks of frames and thread
// states and to whole samples (package pyobj's FuzzDecoders does the same
// for each object decoder). Memory comes from the snapshots of real
// interpreters in testdata/snapshots, with the fuzz input overlaid at an
// address, so that most pointers still lead somewhere real. Each input
// must finish quickly and without panicking; errors are expected.

// fuzzReader returns a fresh reader over the memory, located as the
// snapshot says but without its validation walk, which the overlay may
// defeat.
func fuzzReader(t *testing.T, s *Snapshot, m Memory) *Reader {
	l, err := pyversions.LayoutFor(s.Version)
	if err != nil {
		t.Skip(err)
	}
	r := newReader(m, pyobj.NewFacts(l, s.Version), true)
	r.cache.Begin()
	switch {
	case s.Config.Runtime != 0:
		p, err := r.dec.Pointer(s.Config.Runtime + uint64(l.Runtime.InterpretersHead))
		if err != nil {
			t.Skip(err)
		}
		r.setRuntime(s.Config.Runtime, p)
	case s.Config.InterpHead != 0:
		p, err := r.dec.Pointer(s.Config.InterpHead)
		if err != nil {
			t.Skip(err)
		}
		r.interp, r.gilVar = p, s.Config.TstateCurrent
	}
	return r
}

// seedWalks adds, for every snapshot, the thread states and frames a
// sample meets, with the bytes recorded at their addresses.
func seedWalks(f *testing.F, snaps []*Snapshot) {
	for i, s := range snaps {
		r, err := s.Open()
		if err != nil {
			continue
		}
		ts, _ := r.Sample(SampleOptions{Locals: true})
		add := func(op uint8, addr uint64) { snapfuzz.AddSeed(f, uint8(i), op, s, addr) }
		for _, t := range ts {
			add(opThread, t.Addr)
			for _, fr := range t.Frames {
				add(opFrames, fr.Addr)
			}
		}
	}
}

// Operations of FuzzWalk.
const (
	opFrames = iota // a walk from a frame
	opThread        // a thread state, its walk, and a whole sample
	nOps
)

func FuzzWalk(f *testing.F) {
	snaps := snapfuzz.Load(f, "testdata/snapshots", DecodeSnapshot)
	seedWalks(f, snaps)
	f.Fuzz(func(t *testing.T, snap, op uint8, addr uint64, data []byte) {
		s := snaps[int(snap)%len(snaps)]
		if len(data) > 1<<16 {
			return
		}
		r := fuzzReader(t, s, &snapfuzz.Overlay{Base: s, Addr: addr, Data: data})
		snapfuzz.Within(t, func() {
			switch op % nOps {
			case opFrames:
				_, _ = r.walk(&tstate{frame: addr}, true, nil)
			case opThread:
				if ts, err := r.readThread(addr); err == nil {
					_, _ = r.walk(&ts, true, nil)
				}
				r.interp = addr
				// Learning the native thread id offset decodes struct pthread.
				r.SetOSThreads(1, []int{1, 2, 3})
				_, _ = r.Sample(SampleOptions{Locals: true})
			}
		})
	})
}

// FuzzSnapshot mutates whole snapshots: the encoding, the recorded memory
// and the interpreter's location, then takes a full sample.
func FuzzSnapshot(f *testing.F) {
	files, _ := filepath.Glob("testdata/snapshots/*.snap")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data, true)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, locals bool) {
		s, err := DecodeSnapshot(data)
		if err != nil {
			return
		}
		snapfuzz.Within(t, func() {
			r, err := s.Open()
			if err != nil {
				return
			}
			_, _ = r.Sample(SampleOptions{Locals: locals})
			_, _ = r.Sample(SampleOptions{Locals: locals, NoNames: true})
		})
	})
}
