package frames

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// MaxDepth bounds a walk. CPython's default recursion limit is 1000;
// deeper stacks are reported truncated at this depth.
const MaxDepth = 8192

// ErrTruncated marks a chain cut at MaxDepth; the frames read are kept.
var ErrTruncated = errors.New("stack deeper than the walk limit")

// ErrCycle means a linked list in the target loops, which only happens when
// memory changed under the reader or is corrupt.
var ErrCycle = errors.New("cycle in linked list")

// ErrTorn marks a chain that changed while it was read, so that its
// frames were never one stack: a judge's verdict, or what the walker finds
// where a frame should be.
var ErrTorn = errors.New("stack changed while being read")

// Frame is one Python function activation.
type Frame struct {
	*pyobj.Function
	// Line is the line being executed, as frame.f_lineno would give.
	Line int
	// Addr is the frame's address: a PyFrameObject up to 3.10, a
	// _PyInterpreterFrame from 3.11.
	Addr uint64
	// Locals are set only when a walk asks for them.
	Locals []pyobj.Local
}

// Frame owners in 3.11+ (_PyInterpreterFrame.owner).
const (
	OwnedByThread    = 0
	OwnedByGenerator = 1
	OwnedByCStack    = 3 // 3.12+: shim frames that run no Python code
)

// Link is one frame of a chain as the walk read it, whether it gave a
// Frame or not: what a second read must find again for the stack to have
// existed.
type Link struct {
	Addr, Code, Prev, Instr uint64
	Owner                   uint8
	// Frame is the index, among the frames the walk gave, of the one
	// this link gave, or -1 for a frame the walk skipped (an entry or
	// shim frame, an incomplete one).
	Frame int32
	// Confirmed says the judge found this frame calling the code of the
	// frame above it (Confirmed).
	Confirmed bool
}

// Step is one frame as the walk read it: its link, and what a judge looks
// at besides.
type Step struct {
	Link
	// Entry marks the first frame of a C-level evaluation (3.11+): it
	// was called from C, not by the frame before it.
	Entry bool
	// Stacktop is the frame's stack pointer as an offset from its
	// locals (3.11–3.13), or -1.
	Stacktop int32
	// Func is the frame's function object (3.11+), or 0.
	Func uint64
	// Refcnt is the frame object's reference count (before 3.11).
	Refcnt int64
}

// Verdict is a judge's answer about a caller and the frame above it.
type Verdict uint8

const (
	// Unknown: nothing tells; both are kept.
	Unknown Verdict = iota
	// Confirmed: the caller is in a call of the code of the frame above
	// it; both are kept, and the caller's link says so.
	Confirmed
	// Stale: the frames above the caller are older than it (returned
	// since, their memory not yet reused), so the stack as read ends at
	// the caller and the walk drops them.
	Stale
)

// A Judge decides, as a walk reads a chain, whether its frames were one
// stack at some moment (see package pyspy). The walker asks it of every
// frame before it decodes the frame's code, and of every frame that runs
// code about the frame above it; it acts on the answers and decides
// nothing of its own.
type Judge interface {
	// Frame is asked of each frame read, before its code: skip means it
	// returned before the chain was read, and the walk goes on to its
	// caller; an error ends the walk. first says the walk has kept no
	// frame yet.
	Frame(s *Step, first bool) (skip bool, err error)
	// Calls is asked of each frame that runs code c, at byte offset at
	// of c, about callee: the frame read just before it, which it may
	// have called (before 3.11 any such frame; from 3.11 one it called
	// from Python directly, else nil). An error ends the walk.
	Calls(s *Step, c *pyobj.Code, at int, callee *Step) (Verdict, error)
}

// plain is the judge of a walk without one: every frame is kept.
type plain struct{}

func (plain) Frame(*Step, bool) (bool, error) { return false, nil }
func (plain) Calls(*Step, *pyobj.Code, int, *Step) (Verdict, error) {
	return Unknown, nil
}

// Walk is where walks put what they read. Frames and Links grow with each
// walk, so that the walks of one sample share their arrays.
type Walk struct {
	Frames []Frame
	Links  []Link
	// Dropped counts the links the last walk dropped as older than
	// their caller (Stale).
	Dropped int
}

// Walker walks the frame chains of one process. It is not safe for
// concurrent use.
type Walker struct {
	d     *pyobj.Decoder
	codes *pyobj.Codes
	l     *pyversions.Layout
	v     pyversions.Version
	// cur and callee are the walk's frame and the one it may have
	// called: a judge gets pointers to them, which would escape (and
	// cost an allocation per frame) if they were locals.
	cur, callee Step
}

// NewWalker returns a walker of the frames of the process whose objects d
// decodes and whose code objects codes keeps.
func NewWalker(d *pyobj.Decoder, codes *pyobj.Codes) *Walker {
	f := d.Facts()
	return &Walker{d: d, codes: codes, l: f.Layout, v: f.Version}
}

// Walk appends to out the frames of the chain that starts at the frame at
// start, innermost first, and every frame it read to out.Links, each asked
// of j (nil: keep every frame). On error out holds what was read before.
// With locals, each frame's arguments and local variables are rendered.
func (w *Walker) Walk(start uint64, j Judge, locals bool, out *Walk) error {
	if j == nil {
		j = plain{}
	}
	out.Dropped = 0
	if w.l.IFrame.Code >= 0 {
		return w.interpreterFrames(start, j, locals, out)
	}
	return w.frameObjects(start, j, locals, out)
}

// frameObjects follows PyFrameObject.f_back (up to 3.10).
func (w *Walker) frameObjects(addr uint64, j Judge, locals bool, out *Walk) error {
	links, frames := len(out.Links), len(out.Frames)
	var cyc Brent
	var callee *Step
	for addr != 0 {
		if len(out.Frames)-frames >= MaxDepth {
			return ErrTruncated
		}
		if cyc.Step(addr) {
			return fmt.Errorf("frame list: %w", ErrCycle)
		}
		s := &w.cur
		if err := w.readFrameObject(addr, s); err != nil {
			return err
		}
		addr = s.Prev
		if skip, err := j.Frame(s, len(out.Links) == links); err != nil {
			return err
		} else if skip {
			continue
		}
		c, err := w.codes.Code(s.Code)
		if err != nil {
			return fmt.Errorf("frame at %#x: %w", s.Addr, err)
		}
		at := w.codes.Offset(c, s.Instr)
		v, err := j.Calls(s, c, at, callee)
		if err != nil {
			return err
		}
		drop(out, v, links, frames)
		s.Confirmed = v == Confirmed
		w.keep(out, s, c, at, frames, locals)
		w.callee, callee = *s, &w.callee
	}
	return nil
}

// readFrameObject decodes the frame object at addr into s.
func (w *Walker) readFrameObject(addr uint64, s *Step) error {
	l := &w.l.Frame
	f, err := w.d.Read(addr, uint64(l.Localsplus), "frame")
	if err != nil {
		return err
	}
	typ, code, back, lasti := f.Ptr(w.l.Object.Type), f.Ptr(l.Code), f.Ptr(l.Back), f.I32(l.Lasti)
	if f.Err() != nil {
		return f.Err()
	}
	if err := w.d.IsFrame(addr, typ); err != nil {
		return err
	}
	*s = Step{Link: Link{Addr: addr, Code: code, Prev: back, Instr: uint64(uint32(lasti)), Frame: -1}, Stacktop: -1, Refcnt: f.I64(0)}
	return nil
}

// interpreterFrames follows _PyInterpreterFrame.previous (3.11+). The
// chain runs through every C-level evaluation: an entry frame marks where
// one began, but its previous frame is still part of the Python stack.
func (w *Walker) interpreterFrames(addr uint64, j Judge, locals bool, out *Walk) error {
	links, frames := len(out.Links), len(out.Frames)
	var cyc Brent
	// callee is the frame read before, when it can have been called
	// directly: Python to Python, without a C-level call between.
	var callee *Step
	for steps := 0; addr != 0; {
		if steps++; steps > MaxDepth {
			return ErrTruncated
		}
		if cyc.Step(addr) {
			return fmt.Errorf("frame list: %w", ErrCycle)
		}
		s := &w.cur
		if err := w.readInterpreterFrame(addr, s); err != nil {
			return err
		}
		addr = s.Prev
		direct := callee
		callee = nil
		if skip, err := j.Frame(s, len(out.Links) == links); err != nil {
			return err
		} else if skip {
			continue
		}
		// Frames the C stack or the interpreter owns carry no Python
		// code: 3.12 and 3.13 mark them FRAME_OWNED_BY_CSTACK (3); 3.14
		// puts FRAME_OWNED_BY_INTERPRETER at 3 and the C stack at 4, and
		// 3.15 drops the C-stack owner.
		if s.Owner >= OwnedByCStack && w.v.AtLeast(3, 12) {
			out.Links = append(out.Links, s.Link)
			continue
		}
		c, err := w.executable(s)
		if err != nil {
			return err
		}
		if c == nil {
			out.Links = append(out.Links, s.Link)
			continue
		}
		at := w.codes.Offset(c, s.Instr)
		v, err := j.Calls(s, c, at, direct)
		if err != nil {
			return err
		}
		drop(out, v, links, frames)
		s.Confirmed = v == Confirmed
		if s.Owner <= OwnedByGenerator && !s.Entry {
			w.callee, callee = *s, &w.callee
		}
		// A frame whose first traceable instruction has not run yet is
		// "incomplete": CPython hides it from tracebacks and
		// sys._current_frames, and so do we. Its caller is not asked
		// about the function it holds: a trampoline never gets this far
		// (3.13's shim that runs a class's __init__, with None for its
		// function and the class where its caller's callable was), and
		// an ordinary callee only for an instant.
		if s.Owner != OwnedByGenerator && at < 2*c.FirstTraceable() {
			w.callee.Func = 0
			out.Links = append(out.Links, s.Link)
			continue
		}
		w.keep(out, s, c, at, frames, locals)
	}
	return nil
}

// readInterpreterFrame decodes the _PyInterpreterFrame at addr into s.
func (w *Walker) readInterpreterFrame(addr uint64, s *Step) error {
	l := &w.l.IFrame
	f, err := w.d.Read(addr, uint64(l.Localsplus), "interpreter frame")
	if err != nil {
		return err
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
	var fn uint64
	if l.Func >= 0 {
		fn = w.d.Untag(f.Ptr(l.Func))
	}
	if f.Err() != nil {
		return f.Err()
	}
	*s = Step{
		Link:  Link{Addr: addr, Code: w.d.Untag(code), Prev: prev, Instr: instr, Owner: owner, Frame: -1},
		Entry: entry, Stacktop: stacktop, Func: fn,
	}
	return nil
}

// executable returns the code the interpreter frame s runs, or nil for a
// frame that runs none (3.13+: f_executable is None).
func (w *Walker) executable(s *Step) (*pyobj.Code, error) {
	if !w.v.AtLeast(3, 13) {
		c, err := w.codes.Code(s.Code)
		if err != nil {
			return nil, fmt.Errorf("frame at %#x: %w", s.Addr, err)
		}
		return c, nil
	}
	// A code object met before is validated by Code from its header
	// alone, type included; reading its type on its own would copy its
	// whole page into every later sample's batch.
	if _, known := w.codes.Cached(s.Code); known {
		if c, err := w.codes.Code(s.Code); err == nil {
			return c, nil
		}
	}
	// f_executable may be something other than a code object (None) in
	// frames that run no bytecode.
	typ, err := w.d.TypeOf(s.Code)
	if err != nil {
		return nil, fmt.Errorf("frame at %#x: executable: %w", s.Addr, err)
	}
	if w.codes.IsCode(s.Code, typ) != nil {
		// Only None stands in for code. Anything else was not a frame
		// when copied: the frame pointer was read while the thread ran
		// a stack of other frames' sizes, and points into one's locals
		// now.
		if name, _, err := w.d.TypeName(typ); err != nil || name != "NoneType" {
			return nil, fmt.Errorf("frame at %#x: executable is not code or None: %w", s.Addr, ErrTorn)
		}
		return nil, nil
	}
	c, err := w.codes.Code(s.Code)
	if err != nil {
		return nil, fmt.Errorf("frame at %#x: %w", s.Addr, err)
	}
	return c, nil
}

// drop drops the walk's frames and links so far, from index frames and
// links on, on a Stale verdict about the frame read now.
func drop(out *Walk, v Verdict, links, frames int) {
	if v == Stale {
		out.Dropped += len(out.Links) - links
		out.Links, out.Frames = out.Links[:links], out.Frames[:frames]
	}
}

// keep adds s, which runs c at byte offset at, to the walk's frames, of
// which the walk's own begin at index frames, and its link.
func (w *Walker) keep(out *Walk, s *Step, c *pyobj.Code, at, frames int, locals bool) {
	s.Frame = int32(len(out.Frames) - frames)
	out.Links = append(out.Links, s.Link)
	fr := Frame{Function: c.Function(), Line: c.Line(at), Addr: s.Addr}
	if locals {
		off := w.l.Frame.Localsplus
		if w.l.IFrame.Code >= 0 {
			off = w.l.IFrame.Localsplus
		}
		fr.Locals = w.codes.Locals(c, s.Addr+uint64(off))
	}
	out.Frames = append(out.Frames, fr)
}

// Brent detects a cycle in a sequence of addresses with constant memory
// (Brent's algorithm): it remembers one address and moves it forward at
// powers of two.
type Brent struct {
	saved      uint64
	power, lam int
}

// Step adds addr to the sequence and reports whether it closes a cycle.
func (b *Brent) Step(addr uint64) bool {
	if b.power == 0 {
		b.power, b.saved = 1, addr
		return false
	}
	if addr == b.saved {
		return true
	}
	b.lam++
	if b.lam == b.power {
		b.saved, b.power, b.lam = addr, b.power*2, 0
	}
	return false
}
