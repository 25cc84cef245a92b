package pyspy

import (
	"encoding/binary"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
)

// testHookVerify, set by tests, runs when verify starts, after the walks:
// a test moves a thread there.
var testHookVerify func()

// ordered reports whether the sample's first batch read t's frame pointer
// first and its thread state, with the data stack top, right after its
// data stack (3.11+). Before 3.11 frame objects lie all over the heap and
// are copied in address order, a caller before or after its callee, so
// the stack of the thread that holds the GIL and runs is always read
// again.
func (j *judge) ordered(t *tstate, holder bool) bool {
	if _, ok := j.cache.Early(t.framePtr); !ok {
		return false
	}
	if j.l.Thread.DatastackTop < 0 {
		return !holder
	}
	return j.cache.CopiedLast(t.addr)
}

// verify decides, from a second read, whether each thread's stack as the
// walk read it existed. A running thread's innermost frames change every
// microsecond, so requiring that nothing moved would reject nearly every
// sample of busy code; instead the second read asks where the thread is
// now and whether the frames between there and the base are still the
// ones the walk read:
//
//   - a thread that does not hold the GIL cannot change its Python frames,
//     so it only has to be at the same innermost frame still;
//   - the GIL holder's chain is read again, in one batch, frame by frame.
//     If the thread now is at one of the frames the walk read (it stayed,
//     or returned into a caller), the stack from there down is kept; if it
//     is elsewhere (it called deeper), the whole walk is. Every kept frame
//     must still hold the same code object and caller, and be live (below
//     the data stack top from 3.11, referenced before), or the stack is
//     torn: two moments of a thread whose callers changed meanwhile.
//     Before 3.11, whose frame objects are reused at once, see
//     verifyObjects.
//
// The frame the thread is in now takes its line from the second read,
// unless it has since called deeper: it keeps the line it ran when the
// walk read it. Its callers cannot have moved while it was on the stack.
//
// The second read is taken right after the sample's first one, before the
// walks, of what the previous sample's verify read: the sooner it follows,
// the less has moved, and in a steady state it holds everything. What it
// lacks (a thread deeper than before) is read after the walks.
func (j *judge) verify(threads []Thread, ts []verifyEntry, gil uint64, plausible bool) []error {
	if testHookVerify != nil {
		testHookVerify()
	}
	fc := j.fresh
	l := j.l
	hdr := j.frameHeader()
	j.nextVerify = j.nextVerify[:0]
	want := func(addr, n uint64) {
		j.nextVerify = append(j.nextVerify, mem.Region{Addr: addr, Len: n})
		if fc.Held(addr, n) == nil {
			fc.Want(addr, n)
		}
	}
	for _, v := range ts {
		t := &v.ts
		want(t.framePtr, 8)
		if t.cframe != 0 {
			want(t.addr+uint64(l.Thread.CFrame), 8)
		}
		if t.chunk != 0 {
			want(t.addr+uint64(l.Thread.DatastackTop), 8)
		}
		if full := gil == 0 || t.addr == gil; full {
			// The whole used data stack chunk, or before 3.11 the
			// pages of the frame objects, so that the next sample's
			// early read covers a stack of another shape too.
			if c := t.chunkRegion(); c.Len > 0 {
				j.nextVerify = append(j.nextVerify, c)
			}
			if j.l.IFrame.Code < 0 {
				for p := range j.hotPages {
					j.nextVerify = append(j.nextVerify, mem.Region{Addr: p, Len: mem.PageSize})
				}
			}
			for _, lk := range j.stack.Links[t.links : t.links+t.nlinks] {
				want(lk.Addr+hdr.start, hdr.n)
			}
		}
	}
	if fc.Wanting() {
		fc.FetchWanted()
		j.freshReads++
	}
	var errs []error
	for _, v := range ts {
		if err := j.verifyThread(&threads[v.index], &v.ts, gil, hdr, plausible); err != nil {
			errs = append(errs, &ThreadError{v.ts.addr, err})
		}
	}
	return errs
}

// verifyThread is verify's decision for one thread.
func (j *judge) verifyThread(th *Thread, t *tstate, gil uint64, hdr frameHeader, plausible bool) error {
	fc := j.fresh
	now, ok := fc.U64(t.framePtr)
	if !ok {
		return frames.ErrTorn
	}
	if t.cframe != 0 {
		// The thread entered or left a nested evaluation: the C frame
		// read through has no say about where it is now.
		if cf, ok := fc.U64(t.addr + uint64(j.l.Thread.CFrame)); !ok || cf != t.cframe {
			now = ^uint64(0)
		}
	}
	if gil != 0 && t.addr != gil {
		if now != t.frame {
			return frames.ErrTorn
		}
		return nil
	}
	if j.l.IFrame.Code < 0 {
		return j.verifyObjects(th, t, now, hdr, plausible)
	}
	top := t.top
	if t.chunk != 0 {
		if top, ok = fc.U64(t.addr + uint64(j.l.Thread.DatastackTop)); !ok {
			return frames.ErrTorn
		}
	}
	links := j.stack.Links[t.links : t.links+t.nlinks]
	from, deeper := 0, true
	for i, lk := range links {
		if lk.Addr == now {
			from, deeper = i, false
			break
		}
	}
	keep := 0
	for i := from; i < len(links); i++ {
		lk := &links[i]
		f, ok := readFresh(fc, lk.Addr, hdr)
		if !ok || j.dec.Untag(f.code) != lk.Code || f.prev != lk.Prev || !j.live(t, lk, f, top) {
			return frames.ErrTorn
		}
		if lk.Frame < 0 {
			continue
		}
		keep = max(keep, len(th.Frames)-int(lk.Frame))
		if deeper && i == from || f.instr == lk.Instr {
			continue
		}
		// A caller stands still while the frame it called is on the
		// stack: one that moved returned from it meanwhile, and the
		// frame kept above it, alike in code and caller, is another
		// call's, pushed where the first one was.
		if i > from {
			return frames.ErrTorn
		}
		if ci, ok := j.codes.Cached(lk.Code); ok {
			th.Frames[lk.Frame].Line = ci.Line(j.codes.Offset(ci, f.instr))
		}
	}
	if keep == 0 && len(th.Frames) > 0 {
		// Returned out of every frame read: nothing to vouch for.
		return frames.ErrTorn
	}
	if keep < len(th.Frames) {
		j.stats.Returned++
	}
	th.Frames = th.Frames[len(th.Frames)-keep:]
	return nil
}

// verifyObjects is verifyThread's decision for the GIL holder's frame
// objects (before 3.11). A frame object freed on return goes to its code's
// "zombie" slot or to a free list and is taken again by the next call, of
// any code at any depth; the innermost frames of code that calls small
// functions in a loop (recursion over a hot leaf) are therefore all
// different frames a few microseconds later, at the same addresses. No
// second read can tell a frame of those from the one the walk read, so it
// vouches only for the outer frames that stood still, the anchor: from the
// outermost frame in, each frame the second read finds with the code and
// caller the walk read, referenced, and with its caller still at the
// instruction the walk read (a caller that moved returned from the frame
// meanwhile).
//
// A thread now in an anchored frame returned into it (or stayed there):
// its stack is that frame, at the line it runs now, and its callers. A
// thread now elsewhere ran on above the anchor, and the walk is kept as
// the walk checked it: every frame referenced (no frame of a free list or
// a zombie), of a known code object, its instruction inside that code, the
// chain ending in a frame that can begin a thread's stack, and every
// caller able to call the frame above it (see checkCallee). A caller whose
// call the check could not confirm (it calls through C: a builtin, a type,
// an operator) must moreover have stood still, unless plausible asks only
// for a stack that could be. A stack whose outermost frame changed is
// torn.
func (j *judge) verifyObjects(th *Thread, t *tstate, now uint64, hdr frameHeader, plausible bool) error {
	fc := j.fresh
	links := j.stack.Links[t.links : t.links+t.nlinks]
	// links[still:] are anchored and at the instruction the walk read.
	anchor, still := len(links), len(links)
	var callerInstr uint64
	for anchor > 0 {
		lk := &links[anchor-1]
		f, ok := readFresh(fc, lk.Addr, hdr)
		if !ok || f.code != lk.Code || f.prev != lk.Prev || f.refcnt <= 0 ||
			anchor < len(links) && callerInstr != links[anchor].Instr {
			break
		}
		callerInstr = f.instr
		anchor--
		if still == anchor+1 && f.instr == lk.Instr {
			still = anchor
		}
		if lk.Addr != now {
			continue
		}
		keep := len(th.Frames)
		if lk.Frame >= 0 {
			keep -= int(lk.Frame)
			if ci, ok := j.codes.Cached(lk.Code); ok && f.instr != lk.Instr {
				th.Frames[lk.Frame].Line = ci.Line(j.codes.Offset(ci, f.instr))
			}
		}
		if keep < len(th.Frames) {
			j.stats.Returned++
			th.Frames = th.Frames[len(th.Frames)-keep:]
		}
		return nil
	}
	if anchor == len(links) && len(links) > 0 {
		return frames.ErrTorn
	}
	// An edge the callable check could not confirm holds if both its
	// frames are anchored, or if its caller stood still from before the
	// copy of the frame it called (an earlier copy may show a frame of a
	// call the caller has left since); a plausible one needs only the
	// caller to have stood still.
	for i := 1; i < len(links) && i-1 < anchor; i++ {
		if links[i].Confirmed {
			continue
		}
		if i < still {
			return frames.ErrTorn
		}
		if after, ok := j.cache.CopiedAfter(links[i-1].Addr, links[i].Addr); !plausible && (!ok || !after) {
			return frames.ErrTorn
		}
	}
	if anchor > 0 {
		j.stats.Unanchored++
	}
	return nil
}

// live reports whether a frame the second read found is still part of a
// stack: 3.11+ frames of ordinary calls lie below the data stack top,
// older frame objects are referenced.
func (j *judge) live(t *tstate, lk *frames.Link, f freshFrame, top uint64) bool {
	if j.l.IFrame.Code >= 0 {
		return lk.Owner != frames.OwnedByThread || !t.inChunk(lk.Addr) || lk.Addr < top
	}
	return f.refcnt > 0
}

// verifyEntry is a thread verify looks at, and where its Thread is.
type verifyEntry struct {
	ts    tstate
	index int
}

// frameHeader is the part of a frame verify reads again: from the first to
// the last of its code, caller, instruction (and, before 3.11, reference
// count) members.
type frameHeader struct {
	start, n                  uint64
	code, prev, instr, refcnt int64
	instrLen                  int
}

func (j *judge) frameHeader() frameHeader {
	h := frameHeader{refcnt: -1, instrLen: 8}
	if l := &j.l.IFrame; l.Code >= 0 {
		h.code, h.prev, h.instr = l.Code, l.Previous, l.Instr
	} else {
		l := &j.l.Frame
		h.code, h.prev, h.instr, h.refcnt, h.instrLen = l.Code, l.Back, l.Lasti, 0, 4
	}
	lo, hi := h.code, h.code+8
	for _, o := range []int64{h.prev, h.instr, h.refcnt} {
		if o >= 0 {
			lo, hi = min(lo, o), max(hi, o+8)
		}
	}
	h.start, h.n = uint64(lo), uint64(hi-lo)
	return h
}

// freshFrame is a frame's header as verify read it.
type freshFrame struct {
	code, prev, instr uint64
	refcnt            int64
}

// frame decodes the header of the frame at addr from the second read.
func readFresh(c *mem.Cache, addr uint64, h frameHeader) (freshFrame, bool) {
	b := c.Held(addr+h.start, h.n)
	if b == nil {
		return freshFrame{}, false
	}
	at := func(off int64) []byte { return b[off-int64(h.start):] }
	f := freshFrame{code: mem.LE64(at(h.code)), prev: mem.LE64(at(h.prev))}
	if h.instrLen == 8 {
		f.instr = mem.LE64(at(h.instr))
	} else {
		f.instr = uint64(binary.LittleEndian.Uint32(at(h.instr)))
	}
	if h.refcnt >= 0 {
		f.refcnt = int64(mem.LE64(at(h.refcnt)))
	}
	return f, true
}
