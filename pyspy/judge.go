package pyspy

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// judge decides whether the stacks a sample reads existed at some moment
// (see "Consistent stacks without pausing" in the README). It is asked by
// the walker of every frame and every caller as they are read (it is the
// walker's frames.Judge), it plans the sample's first batch so that
// stacks read in it are consistent as read (batch.go), and it reads again
// what a stack read in no such order needs (verify.go). The walker knows
// nothing of it; a walk without it keeps every frame it can decode.
type judge struct {
	dec   *pyobj.Decoder
	codes *pyobj.Codes
	facts *pyobj.Facts
	l     *pyversions.Layout
	v     pyversions.Version
	cache *mem.Cache
	stats *Stats
	// stack is the sample's walks, whose links the second read checks.
	stack *frames.Walk

	// checkCalls runs the callable check of frame objects (3.8–3.10) in
	// samples that verify.
	checkCalls bool
	// t is (a copy of: a pointer would make every thread state of a
	// sample escape) the thread whose chain is being walked, and skipped
	// counts the frames its walk skipped as returned.
	t       tstate
	skipped int

	// firstWords and lastRegions order the next sample's batch (see
	// order): each thread's frame pointer, and each thread state.
	firstWords  []uint64
	lastRegions []mem.Region
	// hotPages maps the pages where recent walks met frame objects
	// (before 3.11) to the last sample that did, and hotRegions is what
	// the next batch reads besides the last one's footprint.
	hotPages   map[uint64]int
	hotRegions []mem.Region

	// fresh holds the second read and freshReads counts its fetches in
	// this sample; nextVerify is what it read, for the next sample to
	// read again right after its first batch, and verifying the threads
	// it checks, kept to be reused.
	fresh      *mem.Cache
	freshReads int
	nextVerify []mem.Region
	verifying  []verifyEntry
}

var _ frames.Judge = (*judge)(nil)

// errAllReturned is the error of a walk that found every frame returned.
var errAllReturned = fmt.Errorf("every frame returned while read: %w", frames.ErrTorn)

// errNoBase means a stack ended in a frame that cannot be the outermost
// one of a thread: a generator's or coroutine's frame, which always has a
// caller while it runs. Such a chain was read while the generator
// suspended (it unlinks itself then), so it is torn.
var errNoBase = fmt.Errorf("stack does not reach the thread's first frame: %w", frames.ErrTorn)

// walk appends t's frames to out, innermost first, and returns the
// extended slice; on error it holds the frames read so far. Each frame
// visited is also appended to the sample's links, from t.links on.
func (r *Reader) walk(t *tstate, locals bool, out []Frame) ([]Frame, error) {
	t.links = len(r.scratch.stack.Links)
	base := len(out)
	out, err := r.walkFrom(t, t.frame, locals, out)
	if errors.Is(err, errAllReturned) && r.l.IFrame.Code < 0 && t.late != t.frame && t.late != 0 {
		// The frame the pointer named at the start of the batch
		// returned before it was copied, and a frame object freed to
		// the free list no longer links to its caller: start from where
		// the thread state said the thread was when it was copied,
		// after the frames.
		r.scratch.stack.Links, out = r.scratch.stack.Links[:t.links], out[:base]
		t.frame = t.late
		out, err = r.walkFrom(t, t.frame, locals, out)
	}
	t.nlinks = len(r.scratch.stack.Links) - t.links
	return out, err
}

// walkFrom is one walk of t's chain from the frame at start, judged.
func (r *Reader) walkFrom(t *tstate, start uint64, locals bool, out []Frame) ([]Frame, error) {
	base := len(out)
	r.scratch.stack.Frames = out
	r.judge.t, r.judge.skipped = *t, 0
	err := r.walker.Walk(start, &r.judge, locals, &r.scratch.stack)
	out = r.scratch.stack.Frames
	popped := r.judge.skipped + r.scratch.stack.Dropped
	r.stats.Popped += popped
	if err == nil {
		err = r.judge.end(out[base:], popped)
	}
	return out, err
}

// Frame implements frames.Judge: a frame read after the thread left it is
// skipped if no frame was kept yet (it returned since the frame pointer
// was read, and its callers are the stack now), and tears the stack
// further down.
func (j *judge) Frame(s *frames.Step, first bool) (bool, error) {
	if j.l.IFrame.Code < 0 {
		// A frame on a live stack is referenced. A frame with no
		// references sits on a free list or as its code object's
		// cached "zombie" frame: the stack changed while it was read.
		if s.Refcnt <= 0 {
			if first && j.skipped < frames.MaxDepth {
				j.skipped++
				return true, nil
			}
			return false, fmt.Errorf("frame at %#x is dead (refcount %d): %w", s.Addr, s.Refcnt, frames.ErrTorn)
		}
		return false, nil
	}
	// Frames of ordinary calls live in the thread's data stack, below
	// its top; one at or above the top was popped while the stack was
	// read. The top is read after the frames and their pointer before
	// (see mem.Cache.BeginOrdered), so innermost frames above it have
	// returned since the pointer was read, and their callers are the
	// stack now; further down it is a tear. Within one chunk a caller
	// sits below its callee: the stack grows upwards.
	t := &j.t
	if s.Owner == frames.OwnedByThread && t.inChunk(s.Addr) {
		if s.Addr >= t.top {
			if first {
				j.skipped++
				return true, nil
			}
			return false, fmt.Errorf("frame at %#x is above the data stack top %#x: %w", s.Addr, t.top, frames.ErrTorn)
		}
		if t.inChunk(s.Prev) && s.Prev >= s.Addr {
			return false, fmt.Errorf("frame at %#x links up to %#x: %w", s.Addr, s.Prev, frames.ErrTorn)
		}
	}
	return false, nil
}

// Calls implements frames.Judge. A frame's instruction must lie in its
// code. From 3.11 a frame that called the one above it directly is
// suspended on an instruction that pushes frames; one that is not was
// running when its memory was copied, and the frames above it are older
// ones, returned since but not yet overwritten when copied and pushed
// again before the data stack top was: the stack at the copy ends here.
// So it is when the frame was running, or had run no instruction at all
// (3.11 and 3.12 point a new frame's prev_instr before its first). An
// incomplete frame can have called, though: 3.13's shim that runs a
// class's __init__ calls it before its own first traceable instruction.
// A caller in a call holds what it called; a callee of another function
// is one it called earlier (3.11 leaves no mark on a caller that runs: it
// may be in a call to C code meanwhile, or about to push the callee it
// holds). Before 3.11, in samples that verify, a caller must be able to
// call the frame above it (see checkCallee): a stack read while it
// changed can pair a caller with a frame of another of its calls, the
// same function's or not.
func (j *judge) Calls(s *frames.Step, c *pyobj.Code, at int, callee *frames.Step) (frames.Verdict, error) {
	if !c.Holds(at) {
		return frames.Unknown, fmt.Errorf("frame at %#x: instruction %d outside its code's %d bytes: %w", s.Addr, at, c.Len(), frames.ErrTorn)
	}
	if callee == nil {
		return frames.Unknown, nil
	}
	if j.l.IFrame.Code >= 0 {
		running := j.facts.StacktopMarksRunning && s.Stacktop == -1
		if running || at < 0 || !j.codes.MayPush(c, at) || !j.holdsCallee(s.Addr, c, at, s.Stacktop, callee.Func) {
			return frames.Stale, nil
		}
		return frames.Unknown, nil
	}
	if !j.checkCalls {
		return frames.Unknown, nil
	}
	switch j.checkCallee(s.Addr, c, at, &callee.Link) {
	case callTorn:
		return frames.Unknown, fmt.Errorf("frame at %#x calls another function than the frame above it: %w", s.Addr, frames.ErrTorn)
	case callConfirmed:
		return frames.Confirmed, nil
	}
	return frames.Unknown, nil
}

// end judges a thread's walk as a whole, once it read every frame: one
// whose every frame had returned (popped of them) is torn, as is one
// whose outermost frame runs a generator.
func (j *judge) end(walked []Frame, popped int) error {
	if len(walked) == 0 {
		if popped > 0 {
			// Every frame the pointer led to had returned: the thread
			// is elsewhere now, in frames this walk never saw.
			return errAllReturned
		}
		return nil
	}
	outer := walked[len(walked)-1]
	if c, ok := j.codes.Cached(outer.Code); ok && c.IsGenerator() {
		return errNoBase
	}
	return nil
}

// maxStackSlots bounds a frame's value stack (co_stacksize), for the slot
// holdsCallee reads.
const maxStackSlots = 1 << 16

// holdsCallee reports whether the frame at cur, of code c, suspended at
// at with stacktop as its stack pointer, can have called the function
// fn: it is not in a call, or its stack holds fn where calls keep their
// callable. A call consumes its callable and arguments when it pushes
// the callee's frame, but leaves their slots as they were: from the stack
// pointer the call saved, the NULL (or the method) and the callable (or
// self) before 3.13, the callable and then self or NULL from 3.13. Where
// this cannot be told (3.14 keeps a stack pointer rather than an offset,
// a version without an opcode table) the caller passes.
func (j *judge) holdsCallee(cur uint64, c *pyobj.Code, at int, stacktop int32, fn uint64) bool {
	l := &j.l.IFrame
	if l.Func < 0 || l.Stacktop < 0 || fn == 0 || !j.codes.InCall(c, at) {
		return true
	}
	if int(stacktop) < c.NLocalsPlus() || int(stacktop) >= c.NLocalsPlus()+maxStackSlots {
		return false
	}
	// The slots lie in the memory the frame was read with (the data
	// stack chunk, a generator's page); what is not there (a snapshot
	// holds only what its walk read) cannot be told.
	b := j.cache.Held(cur+uint64(l.Localsplus)+8*uint64(stacktop), 16)
	if b == nil {
		return true
	}
	return j.dec.Untag(mem.LE64(b)) == fn || j.dec.Untag(mem.LE64(b[8:])) == fn
}
