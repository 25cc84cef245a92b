package asynctask

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/pyobj"
)

// Link is one coroutine, generator or async generator of an await chain.
type Link struct {
	// Obj is the object, Frame its frame: a frame object up to 3.10,
	// the _PyInterpreterFrame embedded in the object from 3.11.
	Obj, Frame uint64
}

// Chain follows what the coroutine at coro awaits, down to the innermost
// suspended coroutine or generator, and returns the chain outermost first
// and what its innermost link awaits that is not a coroutine (a future, a
// task, a FutureIter's future), or 0. A finished link ends the chain, and
// so does a running one: what it runs is on its thread's stack.
func (r *Reader) Chain(coro uint64) ([]Link, uint64, error) {
	var out []Link
	seen := map[uint64]bool{}
	obj := coro
	for obj != 0 {
		if len(seen) >= MaxChain {
			return out, 0, fmt.Errorf("await chain: %w", ErrTruncated)
		}
		if seen[obj] {
			return out, 0, fmt.Errorf("await chain at %#x: %w", obj, ErrCycle)
		}
		seen[obj] = true
		switch r.kindOf(obj) {
		case kindAsend:
			gen, err := r.dec.Pointer(obj + asendGen)
			if err != nil {
				return out, 0, fmt.Errorf("async generator of %#x: %w", obj, err)
			}
			obj = gen
		case kindCoroutine:
			frame, yf, err := r.genState(obj)
			if err != nil {
				return out, 0, fmt.Errorf("coroutine at %#x: %w", obj, err)
			}
			if frame == 0 {
				return out, 0, nil
			}
			out = append(out, Link{Obj: obj, Frame: frame})
			obj = yf
		case kindFutureIter:
			fut, err := r.dec.Pointer(obj + futureIterFuture)
			return out, fut, err
		default:
			return out, obj, nil
		}
	}
	return out, 0, nil
}

// genState returns the frame of the generator (or coroutine, or async
// generator) at gen, 0 once it finished, and what it awaits or yields
// from when it is suspended in an await or yield from (_PyGen_yf).
func (r *Reader) genState(gen uint64) (frame, yf uint64, err error) {
	a := r.a
	if a.genFrame >= 0 {
		if frame, err = r.dec.Pointer(gen + uint64(a.genFrame)); err != nil || frame == 0 {
			return 0, 0, err
		}
		yf, err = r.yieldFrom310(frame)
		return frame, yf, err
	}
	frame = gen + uint64(a.genIFrame)
	f, err := r.dec.Read(gen, uint64(a.genHead(r.l)), "generator")
	if err != nil {
		return 0, 0, err
	}
	state := int8(f.U8(a.genFrameState))
	fr := func(off int64) uint64 { return f.Ptr(a.genIFrame + off) }
	if f.Err() != nil {
		return 0, 0, f.Err()
	}
	switch {
	case r.v.Minor <= 12:
		// CREATED -2, SUSPENDED -1, EXECUTING 0, COMPLETED 1, CLEARED 4.
		if state >= 1 {
			return 0, 0, nil
		}
		if state != suspended311 {
			return frame, 0, nil
		}
		instr := fr(r.l.IFrame.Instr)
		b, err := r.dec.Read(instr, 4, "instruction")
		if err != nil {
			return frame, 0, err
		}
		op, arg := b.U8(2), b.U8(3)
		resume := op == resume311 || op == resumeQuick311
		if r.v.Minor == 12 {
			resume = op == resume312 || op == instrumentedResume312
		}
		if !resume || arg < 2 {
			return frame, 0, nil
		}
		yf, err = r.stackSlot(frame, int64(int32(uint32(fr(a.iframeStacktop))))-1)
		return frame, yf, err
	case r.v.Minor <= 14:
		// CREATED -3, SUSPENDED -2, SUSPENDED_YIELD_FROM -1,
		// EXECUTING 0, COMPLETED 1, CLEARED 4.
		if state >= 1 {
			return 0, 0, nil
		}
		if state != suspendedYieldFrom {
			return frame, 0, nil
		}
		if a.iframeStacktop >= 0 {
			yf, err = r.stackSlot(frame, int64(int32(uint32(fr(a.iframeStacktop))))-1)
			return frame, yf, err
		}
		return frame, r.stackTop(fr(a.iframeStackpointer), 1), nil
	default:
		// CREATED 0, SUSPENDED 1, SUSPENDED_YIELD_FROM 2 and its
		// locked form 3, EXECUTING 4, CLEARED 5: the awaited object
		// is under a NULL the SEND leaves on top.
		if state >= 5 || state < 0 {
			return 0, 0, nil
		}
		if state != suspendedYieldFrom15 && state != suspendedLocked315 {
			return frame, 0, nil
		}
		return frame, r.stackTop(fr(a.iframeStackpointer), 2), nil
	}
}

// stackTop returns the object n slots below the stack pointer sp (3.14+),
// or 0.
func (r *Reader) stackTop(sp uint64, n uint64) uint64 {
	if sp < 8*n {
		return 0
	}
	v, err := r.dec.Pointer(sp - 8*n)
	if err != nil {
		return 0
	}
	return r.dec.Untag(v)
}

// maxStack bounds a frame's value stack slot index.
const maxStack = 1 << 16

// stackSlot returns the value stack slot i of the interpreter frame at
// frame (3.11–3.13), counted from its localsplus.
func (r *Reader) stackSlot(frame uint64, i int64) (uint64, error) {
	if i < 0 || i >= maxStack {
		return 0, fmt.Errorf("frame at %#x: stack top %d", frame, i+1)
	}
	return r.dec.Pointer(frame + uint64(r.l.IFrame.Localsplus) + uint64(8*i))
}

// yieldFrom310 is _PyGen_yf for a frame object (3.7–3.10): a frame
// suspended in YIELD_FROM has the awaited object on top of its stack.
func (r *Reader) yieldFrom310(frame uint64) (uint64, error) {
	a := r.a
	f, err := r.dec.Read(frame, uint64(a.frameLasti+16), "frame")
	if err != nil {
		return 0, err
	}
	code, lasti := f.Ptr(r.l.Frame.Code), int64(f.I32(a.frameLasti))
	var top uint64
	at := lasti + 2
	if a.frameStacktop >= 0 {
		// 3.7–3.9: f_stacktop is NULL while the frame runs.
		top = f.Ptr(a.frameStacktop)
	} else {
		// 3.10 counts instructions, and keeps a depth.
		depth := int64(f.I32(a.frameStackdepth))
		if depth <= 0 || depth > maxStack {
			return 0, f.Err()
		}
		top = f.Ptr(a.frameValuestack) + uint64(8*depth)
		at = (lasti + 1) * 2
		// f_state (int8 just after f_lasti and f_lineno): only a
		// SUSPENDED frame (-1) awaits.
		if int8(f.U8(a.frameLasti+12)) != -1 {
			return 0, f.Err()
		}
	}
	if f.Err() != nil {
		return 0, f.Err()
	}
	if top == 0 || lasti < 0 {
		return 0, nil
	}
	if r.v.Minor <= 9 {
		// f_executing, the byte after f_lasti, f_lineno and
		// f_iblock.
		if f.U8(a.frameLasti+12) != 0 {
			return 0, nil
		}
	}
	bytesObj, err := r.dec.Pointer(code + uint64(r.l.Code.Code))
	if err != nil {
		return 0, err
	}
	n, err := r.dec.Read(bytesObj, uint64(r.l.Object.Size+8), "co_code")
	if err != nil {
		return 0, err
	}
	size := n.I64(r.l.Object.Size)
	if n.Err() != nil || at >= size || at < 0 {
		return 0, n.Err()
	}
	op, err := r.dec.Read(bytesObj+uint64(r.l.Bytes.Sval+at), 1, "co_code")
	if err != nil {
		return 0, err
	}
	if op.U8(0) != yieldFrom {
		return 0, nil
	}
	return r.dec.Pointer(top - 8)
}

// errOneFrame ends the walk of a suspended coroutine's frame after that
// frame: its previous frame is NULL or stale.
var errOneFrame = errors.New("one frame")

type oneFrame struct{}

func (oneFrame) Frame(s *frames.Step, first bool) (bool, error) {
	if !first {
		return false, errOneFrame
	}
	return false, nil
}

func (oneFrame) Calls(*frames.Step, *pyobj.Code, int, *frames.Step) (frames.Verdict, error) {
	return frames.Unknown, nil
}

// frames fills in a task's frames: for a running task, its thread's
// frames down to the task's coroutine, then the chain (innermost first).
func (r *Reader) frames(t *Task, threads []Thread, locals bool) {
	coro, waiter, err := r.coro(t.Addr)
	if err != nil {
		t.Err = err
		return
	}
	// A pending task's chain changes only when the task steps, which
	// gives it another future to wait on and resumes its innermost
	// coroutine: the chain of an earlier read holds while the task
	// waits on the same future and its innermost link is as it was.
	memoize := !t.Running && !locals
	if m := r.memos[t.Addr]; memoize && m != nil && m.coro == coro && m.waiter == waiter && m.fp == r.fingerprint(m.inner) {
		m.gen = r.gen
		t.Frames = m.frames
		if t.Err == nil {
			t.Err = m.err
		}
		return
	}
	chain, _, err := r.Chain(coro)
	if err != nil && t.Err == nil {
		t.Err = err
	}
	if memoize && len(chain) > 0 {
		defer func() {
			if len(r.memos) < MaxTasks {
				inner := chain[len(chain)-1].Obj
				r.memos[t.Addr] = &memo{coro: coro, waiter: waiter, inner: inner, fp: r.fingerprint(inner), frames: t.Frames, err: t.Err, gen: r.gen, nameObj: t.nameObj, name: t.Name}
			}
		}()
	}
	if t.Running && len(chain) > 0 {
		for _, th := range threads {
			if th.ID != t.Thread {
				continue
			}
			for i, f := range th.Frames {
				if f.Addr == chain[0].Frame {
					t.Frames = append(t.Frames, th.Frames[:i+1]...)
					return
				}
			}
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		r.walk.Frames, r.walk.Links = r.walk.Frames[:0], r.walk.Links[:0]
		err := r.walker.Walk(chain[i].Frame, oneFrame{}, locals, &r.walk)
		if len(r.walk.Frames) == 0 {
			if err == nil || errors.Is(err, errOneFrame) {
				err = errors.New("no frame")
			}
			if t.Err == nil {
				t.Err = fmt.Errorf("frame of %#x: %w", chain[i].Obj, err)
			}
			continue
		}
		t.Frames = append(t.Frames, r.walk.Frames[0])
	}
}

// memo is a pending task's chain as a read found it.
type memo struct {
	coro, waiter, inner uint64
	fp                  string
	// nameObj and name are the task's name as last decoded.
	nameObj uint64
	name    string
	frames  []frames.Frame
	err     error
	gen     int
}

// fingerprint returns what says where the generator at gen stands: its
// embedded frame's members (3.11+: instruction, stack pointer, state), or
// its frame object's (stack top, f_lasti, line, state); "" if it cannot
// be read.
func (r *Reader) fingerprint(gen uint64) string {
	a := r.a
	if a.genFrame < 0 {
		b, err := r.cache.Bytes(gen+16, uint64(a.genHead(r.l)-16))
		if err != nil {
			return ""
		}
		return string(b)
	}
	frame, err := r.dec.Pointer(gen + uint64(a.genFrame))
	if err != nil || frame == 0 {
		return ""
	}
	b, err := r.cache.Bytes(frame+uint64(a.frameValuestack), uint64(a.frameLasti+16-a.frameValuestack))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%x:%s", frame, b)
}
