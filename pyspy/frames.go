package pyspy

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
)

// maxDepth bounds a stack walk. CPython's default recursion limit is 1000;
// deeper stacks are reported truncated at this depth.
const maxDepth = 8192

// ErrTruncated marks a stack cut at maxDepth; the frames read are kept.
var ErrTruncated = errors.New("stack deeper than the walk limit")

// Function is what a frame runs: the immutable facts of a code object,
// shared by its frames.
type Function = pyobj.Function

// Local is one variable of a frame, rendered for display.
type Local = pyobj.Local

// Frame is one Python function activation.
type Frame struct {
	*Function
	// Line is the line being executed, as frame.f_lineno would give.
	Line int
	// Addr is the frame's address: a PyFrameObject up to 3.10, a
	// _PyInterpreterFrame from 3.11.
	Addr uint64
	// Locals are set only when a sample asks for them.
	Locals []Local
}

// Frame owners in 3.11+ (_PyInterpreterFrame.owner).
const (
	ownedByThread    = 0
	ownedByGenerator = 1
	ownedByCStack    = 3 // 3.12+: shim frames that run no Python code
)

// link is one frame of a walk as it was read, whether reported or not:
// what a second read must find again for the stack to have existed.
type link struct {
	addr, code, prev, instr uint64
	owner                   uint8
	// frame is the index, among the thread's reported frames, of the
	// frame this link gave, or -1 for a frame the walk skipped (an entry
	// or shim frame, an incomplete one).
	frame int32
	// confirmed says the callable check (before 3.11) found this frame
	// calling the code of the frame above it.
	confirmed bool
}

// walk appends t's frames to frames, innermost first, and returns the
// extended slice; on error it holds the frames read so far. Each frame
// visited is also appended to r.links, from t.links on.
func (r *Reader) walk(t *tstate, locals bool, frames []Frame) ([]Frame, error) {
	t.links = len(r.links)
	var err error
	if r.l.IFrame.Code >= 0 {
		frames, err = r.walkInterpreterFrames(t, locals, frames)
	} else {
		base := len(frames)
		frames, err = r.walkFrameObjects(t, locals, frames)
		if errors.Is(err, errAllReturned) && t.late != t.frame && t.late != 0 {
			// The frame the pointer named at the start of the batch
			// returned before it was copied, and a frame object freed
			// to the free list no longer links to its caller: start
			// from where the thread state said the thread was when it
			// was copied, after the frames.
			r.links, frames = r.links[:t.links], frames[:base]
			t.frame = t.late
			frames, err = r.walkFrameObjects(t, locals, frames)
		}
	}
	t.nlinks = len(r.links) - t.links
	return frames, err
}

// errAllReturned is the error of a walk that found every frame returned.
var errAllReturned = fmt.Errorf("every frame returned while read: %w", ErrTorn)

// ErrNoBase means a stack ended in a frame that cannot be the outermost
// one of a thread: a generator's or coroutine's frame, which always has a
// caller while it runs. Such a chain was read while the generator
// suspended (it unlinks itself then), so it is torn.
var ErrNoBase = fmt.Errorf("stack does not reach the thread's first frame: %w", ErrTorn)

// checkBase rejects a walk whose outermost frame runs a generator.
func (r *Reader) checkBase(frames []Frame, base, popped int) error {
	if len(frames) == base {
		if popped > 0 {
			// Every frame the pointer led to had returned: the thread
			// is elsewhere now, in frames this walk never saw.
			return errAllReturned
		}
		return nil
	}
	outer := frames[len(frames)-1]
	if ci, ok := r.dec.CachedCode(outer.Code); ok && ci.IsGenerator() {
		return ErrNoBase
	}
	return nil
}

// walkFrameObjects follows PyFrameObject.f_back (up to 3.10).
func (r *Reader) walkFrameObjects(t *tstate, locals bool, frames []Frame) ([]Frame, error) {
	l := &r.l.Frame
	base := len(frames)
	skipped := 0
	var cyc brent
	for addr := t.frame; addr != 0; {
		if len(frames)-base >= maxDepth {
			return frames, ErrTruncated
		}
		if cyc.step(addr) {
			return frames, fmt.Errorf("frame list: %w", ErrCycle)
		}
		f, err := r.dec.Read(addr, uint64(l.Localsplus), "frame")
		if err != nil {
			return frames, err
		}
		typ, code, back, lasti := f.Ptr(r.l.Object.Type), f.Ptr(l.Code), f.Ptr(l.Back), int(f.I32(l.Lasti))
		if f.Err() != nil {
			return frames, f.Err()
		}
		if err := r.dec.IsFrame(addr, typ); err != nil {
			return frames, err
		}
		// A frame on a live stack is referenced. A frame with no
		// references sits on a free list or as its code object's
		// cached "zombie" frame: the stack changed while it was read.
		// Innermost frames that died after the frame pointer was read
		// have returned; their callers are the stack now.
		if refcnt := f.I64(0); refcnt <= 0 {
			if len(frames) == base && skipped < maxDepth {
				skipped++
				r.stats.Popped++
				addr = back
				continue
			}
			return frames, fmt.Errorf("frame at %#x is dead (refcount %d): %w", addr, refcnt, ErrTorn)
		}
		ci, err := r.dec.Code(code)
		if err != nil {
			return frames, fmt.Errorf("frame at %#x: %w", addr, err)
		}
		addrq := r.dec.Offset(ci, uint64(uint32(lasti)))
		if !ci.Holds(addrq) {
			return frames, fmt.Errorf("frame at %#x: instruction %d outside its code's %d bytes: %w", addr, addrq, ci.Len(), ErrTorn)
		}
		// A stack read while it changed can pair a caller with a frame
		// of another of its calls, the same function's or not.
		verdict := callUnknown
		if n := len(r.links); r.checkCalls && n > t.links {
			if verdict = r.checkCallee(addr, ci, addrq, &r.links[n-1]); verdict == callTorn {
				return frames, fmt.Errorf("frame at %#x calls another function than the frame above it: %w", addr, ErrTorn)
			}
		}
		r.links = append(r.links, link{addr: addr, code: code, prev: back, instr: uint64(uint32(lasti)),
			frame: int32(len(frames) - base), confirmed: verdict == callConfirmed})
		fr := Frame{Function: ci.Function(), Line: ci.Line(addrq), Addr: addr}
		if locals {
			fr.Locals = r.dec.Locals(ci, addr+uint64(l.Localsplus))
		}
		frames = append(frames, fr)
		addr = back
	}
	return frames, r.checkBase(frames, base, skipped)
}

// walkInterpreterFrames follows _PyInterpreterFrame.previous (3.11+). The
// chain runs through every C-level evaluation: an entry frame marks where
// one began, but its previous frame is still part of the Python stack.
func (r *Reader) walkInterpreterFrames(t *tstate, locals bool, frames []Frame) ([]Frame, error) {
	l := &r.l.IFrame
	var cyc brent
	steps := 0
	base := len(frames)
	popped := 0
	var callee uint64     // the last frame read, when it can have been called directly
	var calleeFunc uint64 // its function object
	for addr := t.frame; addr != 0; {
		if steps++; steps > maxDepth {
			return frames, ErrTruncated
		}
		if cyc.step(addr) {
			return frames, fmt.Errorf("frame list: %w", ErrCycle)
		}
		f, err := r.dec.Read(addr, uint64(l.Localsplus), "interpreter frame")
		if err != nil {
			return frames, err
		}
		code, prev, instr, owner := f.Ptr(l.Code), f.Ptr(l.Previous), f.Ptr(l.Instr), f.U8(l.Owner)
		entry := false
		if l.IsEntry >= 0 {
			entry = f.U8(l.IsEntry) != 0
		}
		// 3.12 and 3.13 set stacktop to -1 while a frame runs and to its
		// stack depth when it calls (_PyFrame_GetStackPointer and
		// _PyFrame_SetStackPointer); 3.11 leaves it stale, and 3.14 clears
		// its stack pointer only in debug builds.
		stacktop := int32(-1)
		if l.Stacktop >= 0 {
			stacktop = f.I32(l.Stacktop)
		}
		running := r.stacktopMarksRunning && stacktop == -1
		var fn uint64
		if l.Func >= 0 {
			fn = r.dec.Untag(f.Ptr(l.Func))
		}
		if f.Err() != nil {
			return frames, f.Err()
		}
		code = r.dec.Untag(code)
		cur := addr
		addr = prev
		// The previous iteration's frame, if this one called it
		// directly: Python to Python, without a C-level call between.
		direct, directFunc := callee, calleeFunc
		callee, calleeFunc = 0, 0
		canBeCalled := owner <= ownedByGenerator && !entry
		// Frames of ordinary calls live in the thread's data stack,
		// below its top; one at or above the top was popped while the
		// stack was read. The top is read after the frames and their
		// pointer before (see mem.Cache.BeginOrdered), so innermost
		// frames above it have returned since the pointer was read, and
		// their callers are the stack now; further down it is a tear.
		// Within one chunk a caller sits below its callee: the stack
		// grows upwards.
		if owner == ownedByThread && t.inChunk(cur) {
			if cur >= t.top {
				if len(r.links) == t.links {
					r.stats.Popped++
					popped++
					continue
				}
				return frames, fmt.Errorf("frame at %#x is above the data stack top %#x: %w", cur, t.top, ErrTorn)
			}
			if t.inChunk(prev) && prev >= cur {
				return frames, fmt.Errorf("frame at %#x links up to %#x: %w", cur, prev, ErrTorn)
			}
		}
		lk := link{addr: cur, code: code, prev: prev, instr: instr, owner: owner, frame: -1}
		// Frames the C stack or the interpreter owns carry no Python
		// code: 3.12 and 3.13 mark them FRAME_OWNED_BY_CSTACK (3); 3.14
		// puts FRAME_OWNED_BY_INTERPRETER at 3 and the C stack at 4, and
		// 3.15 drops the C-stack owner.
		if owner >= ownedByCStack && r.v.AtLeast(3, 12) {
			r.links = append(r.links, lk)
			continue
		}
		// A code object met before is validated by r.code from its
		// header alone, type included; reading its type on its own would
		// copy its whole page into every later sample's batch.
		var ci *pyobj.Code
		if _, known := r.dec.CachedCode(code); known && r.v.AtLeast(3, 13) {
			ci, _ = r.dec.Code(code)
		}
		if ci == nil && r.v.AtLeast(3, 13) {
			// f_executable may be something other than a code object
			// (None) in frames that run no bytecode.
			typ, err := r.dec.TypeOf(code)
			if err != nil {
				return frames, fmt.Errorf("frame at %#x: executable: %w", cur, err)
			}
			if r.dec.IsCode(code, typ) != nil {
				// Only None stands in for code. Anything else was not
				// a frame when copied: the frame pointer was read while
				// the thread ran a stack of other frames' sizes, and
				// points into one's locals now.
				if name, _, err := r.dec.TypeName(typ); err != nil || name != "NoneType" {
					return frames, fmt.Errorf("frame at %#x: executable is not code or None: %w", cur, ErrTorn)
				}
				r.links = append(r.links, lk)
				continue
			}
		}
		if ci == nil {
			if ci, err = r.dec.Code(code); err != nil {
				return frames, fmt.Errorf("frame at %#x: %w", cur, err)
			}
		}
		addrq := r.dec.Offset(ci, instr)
		if !ci.Holds(addrq) {
			return frames, fmt.Errorf("frame at %#x: instruction %d outside its code's %d bytes: %w", cur, addrq, ci.Len(), ErrTorn)
		}
		// A frame that called the one above it directly is suspended on
		// an instruction that pushes frames. One that is not was running
		// when its memory was copied, and the frames above it are older
		// ones, returned since but not yet overwritten when copied and
		// pushed again before the data stack top was: the stack at the
		// copy ends here. So it is when the frame was running, or had
		// run no instruction at all (3.11 and 3.12 point a new frame's
		// prev_instr before its first). An incomplete frame can have
		// called, though: 3.13's shim that runs a class's __init__
		// calls it before its own first traceable instruction.
		//
		// A caller in a call holds what it called; a callee of another
		// function is one it called earlier (3.11 leaves no mark on a
		// caller that runs: it may be in a call to C code meanwhile, or
		// about to push the callee it holds).
		if direct != 0 && (running || addrq < 0 || !r.dec.MayPush(ci, addrq) || !r.holdsCallee(cur, ci, addrq, stacktop, directFunc)) {
			r.stats.Popped += len(r.links) - t.links
			popped += len(r.links) - t.links
			r.links, frames = r.links[:t.links], frames[:base]
		}
		// A frame whose first traceable instruction has not run yet is
		// "incomplete": CPython hides it from tracebacks and
		// sys._current_frames, and so do we.
		if canBeCalled {
			callee, calleeFunc = cur, fn
		}
		if owner != ownedByGenerator && addrq < 2*ci.FirstTraceable() {
			// Its caller is not checked for the function it holds: a
			// trampoline never gets this far (3.13's shim that runs a
			// class's __init__, with None for its function and the
			// class where its caller's callable was), and an ordinary
			// callee only for an instant.
			calleeFunc = 0
			r.links = append(r.links, lk)
			continue
		}
		lk.frame = int32(len(frames) - base)
		r.links = append(r.links, lk)
		fr := Frame{Function: ci.Function(), Line: ci.Line(addrq), Addr: cur}
		if locals {
			fr.Locals = r.dec.Locals(ci, cur+uint64(l.Localsplus))
		}
		frames = append(frames, fr)
	}
	return frames, r.checkBase(frames, base, popped)
}

// maxStackSlots bounds a frame's value stack (co_stacksize), for the slot
// holdsCallee reads.
const maxStackSlots = 1 << 16

// holdsCallee reports whether the frame at cur, of code ci, suspended at
// addrq with stacktop as its stack pointer, can have called the function
// fn: it is not in a call, or its stack holds fn where calls keep their
// callable. A call consumes its callable and arguments when it pushes
// the callee's frame, but leaves their slots as they were: from the stack
// pointer the call saved, the NULL (or the method) and the callable (or
// self) before 3.13, the callable and then self or NULL from 3.13. Where
// this cannot be told (3.14 keeps a stack pointer rather than an offset,
// a version without an opcode table) the caller passes.
func (r *Reader) holdsCallee(cur uint64, ci *pyobj.Code, addrq int, stacktop int32, fn uint64) bool {
	l := &r.l.IFrame
	if l.Func < 0 || l.Stacktop < 0 || fn == 0 || !r.dec.InCall(ci, addrq) {
		return true
	}
	if int(stacktop) < ci.NLocalsPlus() || int(stacktop) >= ci.NLocalsPlus()+maxStackSlots {
		return false
	}
	// The slots lie in the memory the frame was read with (the data
	// stack chunk, a generator's page); what is not there (a snapshot
	// holds only what its walk read) cannot be told.
	b := r.cache.Held(cur+uint64(l.Localsplus)+8*uint64(stacktop), 16)
	if b == nil {
		return true
	}
	return r.dec.Untag(mem.LE64(b)) == fn || r.dec.Untag(mem.LE64(b[8:])) == fn
}
