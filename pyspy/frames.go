package pyspy

import (
	"errors"
	"fmt"
)

// maxDepth bounds a stack walk. CPython's default recursion limit is 1000;
// deeper stacks are reported truncated at this depth.
const maxDepth = 8192

// ErrTruncated marks a stack cut at maxDepth; the frames read are kept.
var ErrTruncated = errors.New("stack deeper than the walk limit")

// Function is what a frame runs: the immutable facts of a code object.
// Frames of the same code object share one Function, so a sample
// allocates no strings and profiles can key on the pointer.
type Function struct {
	// Name is the function's co_qualname where the version has one (3.11+)
	// and its co_name otherwise.
	Name string
	// ShortName is co_name.
	ShortName string
	// Filename is co_filename as the interpreter holds it.
	Filename string
	// FirstLine is the function's first line (co_firstlineno).
	FirstLine int
	// Code is the code object's address.
	Code uint64
}

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

// walk appends t's frames to frames, innermost first, and returns the
// extended slice; on error it holds the frames read so far.
func (r *Reader) walk(t *tstate, locals bool, frames []Frame) ([]Frame, error) {
	if r.l.IFrame.Code >= 0 {
		return r.walkInterpreterFrames(t, locals, frames)
	}
	return r.walkFrameObjects(t, locals, frames)
}

// walkFrameObjects follows PyFrameObject.f_back (up to 3.10).
func (r *Reader) walkFrameObjects(t *tstate, locals bool, frames []Frame) ([]Frame, error) {
	l := &r.l.Frame
	base := len(frames)
	var cyc brent
	for addr := t.frame; addr != 0; {
		if len(frames)-base >= maxDepth {
			return frames, ErrTruncated
		}
		if cyc.step(addr) {
			return frames, fmt.Errorf("frame list: %w", ErrCycle)
		}
		f, err := r.read(addr, uint64(l.Localsplus), "frame")
		if err != nil {
			return frames, err
		}
		typ, code, back, lasti := f.ptr(r.l.Object.Type), f.ptr(l.Code), f.ptr(l.Back), int(f.i32(l.Lasti))
		if f.err != nil {
			return frames, f.err
		}
		if addr == t.frame {
			t.caller, t.code = back, code
		}
		if addr == t.caller {
			t.instr = uint64(uint32(lasti))
		}
		if err := r.isFrame(addr, typ); err != nil {
			return frames, err
		}
		// A frame on a live stack is referenced. A frame with no
		// references sits on a free list or as its code object's
		// cached "zombie" frame: the stack changed while it was read.
		if refcnt := f.i64(0); refcnt <= 0 {
			return frames, fmt.Errorf("frame at %#x is dead (refcount %d): %w", addr, refcnt, ErrTorn)
		}
		ci, err := r.code(code)
		if err != nil {
			return frames, fmt.Errorf("frame at %#x: %w", addr, err)
		}
		// 3.10 counts f_lasti in 2-byte code units; earlier versions in
		// bytes.
		addrq := lasti
		if r.v.AtLeast(3, 10) && lasti >= 0 {
			addrq = lasti * 2
		}
		fr := ci.frame(addrq)
		fr.Addr = addr
		if locals {
			fr.Locals = r.frameLocals(ci, addr+uint64(l.Localsplus))
		}
		frames = append(frames, fr)
		addr = back
	}
	return frames, nil
}

func (r *Reader) isFrame(addr, typ uint64) error {
	if r.frameType != 0 {
		if typ != r.frameType {
			return fmt.Errorf("object at %#x is not a frame", addr)
		}
		return nil
	}
	ti, err := r.typeInfo(typ)
	if err != nil {
		return fmt.Errorf("frame at %#x: %w", addr, err)
	}
	if ti.name != "frame" {
		return fmt.Errorf("object at %#x is a %q, not a frame", addr, ti.name)
	}
	r.frameType = typ
	return nil
}

// walkInterpreterFrames follows _PyInterpreterFrame.previous (3.11+). The
// chain runs through every C-level evaluation: an entry frame marks where
// one began, but its previous frame is still part of the Python stack.
func (r *Reader) walkInterpreterFrames(t *tstate, locals bool, frames []Frame) ([]Frame, error) {
	l := &r.l.IFrame
	var cyc brent
	steps := 0
	for addr := t.frame; addr != 0; {
		if steps++; steps > maxDepth {
			return frames, ErrTruncated
		}
		if cyc.step(addr) {
			return frames, fmt.Errorf("frame list: %w", ErrCycle)
		}
		f, err := r.read(addr, uint64(l.Localsplus), "interpreter frame")
		if err != nil {
			return frames, err
		}
		code, prev, instr, owner := f.ptr(l.Code), f.ptr(l.Previous), f.ptr(l.Instr), f.u8(l.Owner)
		if f.err != nil {
			return frames, f.err
		}
		code = r.untag(code)
		if addr == t.frame {
			t.caller, t.code = prev, code
		}
		if addr == t.caller && prev != addr {
			t.instr = instr
		}
		cur := addr
		addr = prev
		// Frames of ordinary calls live in the thread's data stack,
		// below its top; one at or above the top was popped while the
		// stack was read.
		if owner == ownedByThread && t.chunk != 0 && cur >= t.chunk && cur < t.limit && cur >= t.top {
			return frames, fmt.Errorf("frame at %#x is above the data stack top %#x: %w", cur, t.top, ErrTorn)
		}
		// Frames the C stack or the interpreter owns carry no Python
		// code: 3.12 and 3.13 mark them FRAME_OWNED_BY_CSTACK (3); 3.14
		// puts FRAME_OWNED_BY_INTERPRETER at 3 and the C stack at 4, and
		// 3.15 drops the C-stack owner.
		if owner >= ownedByCStack && r.v.AtLeast(3, 12) {
			continue
		}
		if r.v.AtLeast(3, 13) {
			// f_executable may be something other than a code object
			// (None) in frames that run no bytecode.
			typ, err := r.typeOf(code)
			if err != nil {
				return frames, fmt.Errorf("frame at %#x: executable: %w", cur, err)
			}
			if r.isCode(code, typ) != nil {
				continue
			}
		}
		ci, err := r.code(code)
		if err != nil {
			return frames, fmt.Errorf("frame at %#x: %w", cur, err)
		}
		addrq := int(int64(instr - ci.codeStart))
		// A frame whose first traceable instruction has not run yet is
		// "incomplete": CPython hides it from tracebacks and
		// sys._current_frames, and so do we.
		if owner != ownedByGenerator && addrq < 2*ci.firstTraceable {
			continue
		}
		fr := ci.frame(addrq)
		fr.Addr = cur
		if locals {
			fr.Locals = r.frameLocals(ci, cur+uint64(l.Localsplus))
		}
		frames = append(frames, fr)
	}
	return frames, nil
}

// untag turns a _PyStackRef (3.14+: f_executable, localsplus) into the
// object pointer it holds. Its low bits are tags, free because objects are
// at least 8-byte aligned; a bare tag is NULL. Both tag bits set mark a
// tagged int, which holds no object at all (see stackRefInt). Earlier
// versions hold plain pointers.
func (r *Reader) untag(ref uint64) uint64 {
	if !r.v.AtLeast(3, 14) {
		return ref
	}
	if ref&stackRefIntTag == stackRefIntTag {
		return 0
	}
	return ref &^ 7
}

// stackRefIntTag marks a _PyStackRef that holds a small int itself, shifted
// left by two, rather than a pointer (Py_INT_TAG, 3.14+).
const stackRefIntTag = 3

// stackRefInt returns the value of a tagged-int _PyStackRef.
func (r *Reader) stackRefInt(ref uint64) (int64, bool) {
	if !r.v.AtLeast(3, 14) || ref&stackRefIntTag != stackRefIntTag {
		return 0, false
	}
	return int64(ref) >> 2, true
}

func (ci *codeInfo) frame(addrq int) Frame {
	line := ci.lines.line(addrq)
	if line < 0 {
		line = 0
	}
	return Frame{Function: &ci.fn, Line: line}
}
