package pyspy

import (
	"fmt"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
)

// maxThreads bounds the thread list; real processes have hundreds at most.
const maxThreads = 16384

// Function is what a frame runs: the immutable facts of a code object,
// shared by its frames.
type Function = pyobj.Function

// Frame is one Python function activation.
type Frame = frames.Frame

// Local is one variable of a frame, rendered for display.
type Local = pyobj.Local

// Thread is one Python thread's stack at the moment of a sample.
type Thread struct {
	// ID is the thread's pthread id, which threading.get_ident() returns.
	ID uint64
	// NativeID is the OS thread id, or 0 when it could not be learnt.
	NativeID int
	// Name is the threading.Thread name; HasName is false for threads
	// the threading module does not know.
	Name    string
	HasName bool
	OwnsGIL bool
	// Frames are innermost first.
	Frames []Frame
	// Truncated is set when the stack was deeper than the walk allows.
	Truncated bool
	// Addr is the PyThreadState.
	Addr uint64
}

// tstate is the decoded part of a PyThreadState.
type tstate struct {
	addr, next, interp uint64
	id                 uint64
	nativeID           uint64
	frame              uint64 // the innermost frame, however this version reaches it
	chunk, top, limit  uint64 // 3.11+ data stack: current chunk, top and end
	// framePtr is where the innermost frame's address was read, and
	// cframe (3.11, 3.12) the C frame it was read through: verify reads
	// both again to see where the thread is now.
	framePtr, cframe uint64
	// links and nlinks locate the thread's walk in the sample's links.
	links, nlinks int
	// late is the innermost frame as the thread state itself held it
	// (before 3.11), copied after the frames when the batch ordered it.
	late uint64
}

// inChunk reports whether addr lies in the thread's current data stack
// chunk (3.11+), where the frames of ordinary calls are pushed upwards.
func (t *tstate) inChunk(addr uint64) bool {
	return t.chunk != 0 && addr >= t.chunk && addr < t.limit
}

func (r *Reader) readThread(addr uint64) (tstate, error) {
	l := &r.l.Thread
	b, err := r.cache.Exact(addr, r.facts.ThreadState)
	if err != nil {
		return tstate{}, fmt.Errorf("thread state: %w", err)
	}
	f := mem.NewFields(b, addr, "thread state")
	t := tstate{addr: addr, next: f.Ptr(l.Next), interp: f.Ptr(l.Interp), id: f.Ptr(l.ThreadID)}
	if l.NativeThreadID >= 0 {
		t.nativeID = f.Ptr(l.NativeThreadID)
	}
	if l.DatastackChunk >= 0 {
		t.chunk, t.top, t.limit = f.Ptr(l.DatastackChunk), f.Ptr(l.DatastackTop), f.Ptr(l.DatastackLimit)
	}
	switch {
	case l.Frame >= 0:
		t.late = f.Ptr(l.Frame)
		t.frame, t.framePtr = r.early(t.late, addr+uint64(l.Frame))
	case l.CurrentFrame >= 0:
		t.frame, t.framePtr = r.early(f.Ptr(l.CurrentFrame), addr+uint64(l.CurrentFrame))
		if f.Err() == nil {
			// The frames of ordinary calls are in the data stack
			// chunk: one read fetches them all.
			r.prefetchChunk(&t)
		}
	case l.CFrame >= 0:
		cframe := f.Ptr(l.CFrame)
		if f.Err() != nil {
			return tstate{}, f.Err()
		}
		t.cframe = cframe
		if cframe != 0 {
			// The C frame and the data stack chunk are read in one go.
			cur := cframe + uint64(r.l.CFrame.CurrentFrame)
			t.framePtr = cur
			if _, ok := r.cache.Early(cur); !ok {
				r.cache.Prefetch(mem.Region{Addr: cur, Len: 8})
			}
			r.prefetchChunk(&t)
			if v, ok := r.cache.Early(cur); ok {
				t.frame = v
			} else if t.frame, err = r.dec.Pointer(cur); err != nil {
				return tstate{}, fmt.Errorf("cframe of thread %#x: %w", addr, err)
			}
		}
	}
	if f.Err() != nil {
		return tstate{}, f.Err()
	}
	if t.interp != r.interp && r.interp != 0 {
		return tstate{}, fmt.Errorf("thread state at %#x belongs to interpreter %#x", addr, t.interp)
	}
	return t, nil
}

// early returns the innermost frame's address as the start of the
// sample's batch read it, if it read the slot at ptr, else v: see
// mem.Cache.BeginOrdered.
func (r *Reader) early(v, ptr uint64) (uint64, uint64) {
	if e, ok := r.cache.Early(ptr); ok {
		return e, ptr
	}
	return v, ptr
}

// chunkSlack is how far past the top of the data stack a prefetch reads,
// so that a stack a few frames deeper than in the last sample is still
// covered by the footprint that sample left.
const chunkSlack = 2048

// prefetchChunk fetches the used part of the thread's data stack chunk
// unless the sample already holds it: the slack past the top that a fetch
// adds is for later samples, and lacking it is no reason for another read.
func (r *Reader) prefetchChunk(t *tstate) {
	c := t.chunkRegion()
	if c.Len == 0 {
		return
	}
	if t.top > t.chunk && r.cache.Held(t.chunk, t.top-t.chunk) != nil {
		return
	}
	r.cache.Prefetch(c)
}

// chunkRegion is the used part of the thread's current data stack chunk,
// where 3.11+ keeps the frames of ordinary function calls, plus some slack
// inside the chunk.
func (t *tstate) chunkRegion() mem.Region {
	if t.chunk == 0 || t.top <= t.chunk || t.top-t.chunk > mem.MaxRegion {
		return mem.Region{}
	}
	end := t.top + chunkSlack
	if t.limit > t.top && end > t.limit {
		end = t.limit
	}
	if t.limit <= t.top {
		end = t.top
	}
	return mem.Region{Addr: t.chunk, Len: end - t.chunk}
}

// threadList walks the interpreter's thread states. The result is reused
// by the next call.
func (r *Reader) threadList() ([]uint64, error) {
	head, err := r.dec.Pointer(r.interp + uint64(r.l.Interp.ThreadsHead))
	if err != nil {
		return nil, fmt.Errorf("thread list of interpreter %#x: %w", r.interp, err)
	}
	out := r.scratch.threadAddrs[:0]
	defer func() { r.scratch.threadAddrs, r.scratch.threads = out[:0], len(out) }()
	var cyc frames.Brent
	for addr := head; addr != 0; {
		if len(out) >= maxThreads {
			return out, fmt.Errorf("more than %d threads", maxThreads)
		}
		if cyc.Step(addr) {
			return out, fmt.Errorf("thread list: %w", frames.ErrCycle)
		}
		out = append(out, addr)
		next, err := r.dec.Pointer(addr + uint64(r.l.Thread.Next))
		if err != nil {
			return out, fmt.Errorf("thread state at %#x: %w", addr, err)
		}
		addr = next
	}
	return out, nil
}

// gilHolder returns the thread state holding the GIL, or 0.
func (r *Reader) gilHolder() uint64 {
	switch {
	case r.gilVar != 0:
		p, err := r.dec.Pointer(r.gilVar)
		if err != nil {
			return 0
		}
		return p
	case r.l.Interp.CevalGIL >= 0:
		gil, err := r.dec.Pointer(r.interp + uint64(r.l.Interp.CevalGIL))
		if err != nil || gil == 0 {
			return 0
		}
		f, err := r.dec.Read(gil, mem.Extent(r.l.GIL.LastHolder, r.l.GIL.Locked), "gil")
		if err != nil {
			return 0
		}
		locked, holder := f.I32(r.l.GIL.Locked), f.Ptr(r.l.GIL.LastHolder)
		if f.Err() != nil || locked == 0 {
			return 0
		}
		return holder
	}
	return 0
}
