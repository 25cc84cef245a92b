package pyspy

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// SampleOptions choose what a sample reads beyond the stacks.
type SampleOptions struct {
	// Locals renders each frame's arguments and local variables.
	Locals bool
	// NoNames skips thread names, which cost extra reads when threads
	// come and go.
	NoNames bool
	// Verify keeps only stacks that existed. A running target's stack
	// changes between the reads of one sample (even within one
	// process_vm_readv, which copies its regions one after another), and
	// a stack read across such a change is torn. A stack read entirely
	// in the sample's first batch, in the order that batch imposes, is
	// consistent as read; any other is read again and kept from where
	// the thread is now (see verify). A stack that cannot be vouched for
	// is reported as ErrTorn, so that the caller can sample again.
	Verify bool
	// Plausible relaxes Verify, for a sampler that never pauses: a stack
	// whose innermost frames no second read could vouch for (before 3.11,
	// see verifyObjects) is kept when every frame of it could have called
	// the frame above it, though some call went through C code that does
	// not tell what it called.
	Plausible bool
	// Reuse lets a thread that waits keep the stack an earlier sample
	// walked, as long as nothing shows it moved (see stillStack): most of
	// the cost of sampling a process of many waiting threads is saved,
	// for a stack up to reuseFor samples old if such a thread ran and
	// came back to the very frame it waited in between two samples.
	Reuse bool
}

// ErrTorn is the error of a thread whose stack changed while it was read.
var ErrTorn = errors.New("stack changed while being read")

// errNoFrame is the error of a stack read empty though the thread's frame
// pointer was set.
var errNoFrame = fmt.Errorf("frame pointer set but no frame read: %w", ErrTorn)

// ThreadError is a thread whose stack could not be read completely. The
// sample still holds the frames read before the failure.
type ThreadError struct {
	Thread uint64 // PyThreadState address
	Err    error
}

func (e *ThreadError) Error() string {
	return fmt.Sprintf("thread state at %#x: %v", e.Thread, e.Err)
}

func (e *ThreadError) Unwrap() error { return e.Err }

// Sample reads the stack of every thread of the interpreter. It returns
// the threads it could read and, if any thread failed, an error joining
// a ThreadError per failure; a truncated stack is not a failure.
func (r *Reader) Sample(opts SampleOptions) ([]Thread, error) {
	// The frame pointers first and the thread states (with their data
	// stack tops) last, as the previous sample found them.
	r.cache.BeginOrdered(r.firstWords, r.hotRegionsList(), r.lastRegions)
	r.refresh = r.refresh[:0]
	r.firstWords, r.lastRegions = r.firstWords[:0], r.lastRegions[:0]
	r.links = r.links[:0]
	r.stats.Samples++
	r.freshReads = 0
	r.checkCalls = opts.Verify
	if opts.Verify {
		r.fresh.Reset()
		for _, rg := range r.nextVerify {
			r.fresh.Want(rg.Addr, rg.Len)
		}
		if len(r.nextVerify) > 0 {
			r.fresh.FetchWanted()
			r.freshReads++
		}
	}
	defer func() { r.stats.Reads += r.cache.Reads() + r.freshReads }()
	addrs, err := r.threadList()
	if err != nil && len(addrs) == 0 {
		return nil, err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	gil := r.gilHolder()
	threads := make([]Thread, 0, len(addrs))
	// All stacks share one backing array, sized from earlier samples.
	frames := make([]Frame, 0, r.framesHint)
	read := r.verifying[:0]
	for _, addr := range addrs {
		fetches := r.cache.Reads()
		ts, err := r.readThread(addr)
		if err != nil {
			errs = append(errs, &ThreadError{addr, err})
			continue
		}
		if ts.id == 0 {
			// From 3.12 a new thread's state is made and linked by the
			// thread that starts it, and gets its ident and native id
			// only when the new thread binds it: until then it is no
			// thread (a C library ident is never 0).
			continue
		}

		t := Thread{ID: ts.id, NativeID: r.nativeID(&ts), OwnsGIL: addr == gil, Addr: addr}
		if t.NativeID == 0 && (r.l.Thread.NativeThreadID >= 0 || r.native.found) {
			// An ident without an OS thread id: from 3.11 the thread
			// is between writing its two ids as it binds its state;
			// before, the C library cleared the id in struct pthread
			// as the OS thread ended, and the state was read from a
			// thread list that changed meanwhile. Neither runs.
			continue
		}
		if m := r.stillStack(addr, &ts, gil, opts); m != nil {
			start := len(frames)
			frames = append(frames, m.frames...)
			t.Frames, t.Truncated = frames[start:len(frames):len(frames)], m.truncated
			threads = append(threads, t)
			continue
		}
		if ts.framePtr != 0 {
			r.firstWords = append(r.firstWords, ts.framePtr)
		}
		// The data stack right before the thread state that holds its
		// top: a frame pushed after the copy of its slot is then above
		// the top only if it also was when copied. Before 3.11 the thread
		// state last too, for its newer frame pointer.
		if c := r.chunkRegion(&ts); c.Len > 0 {
			r.lastRegions = append(r.lastRegions, c)
		}
		r.lastRegions = append(r.lastRegions, mem.Region{Addr: addr, Len: r.tstateSize})
		start := len(frames)
		frames, err = r.walk(&ts, opts.Locals, frames)
		t.Frames = frames[start:len(frames):len(frames)]
		if r.l.IFrame.Code < 0 && addr == gil {
			// Frame objects lie anywhere on the heap, taken from free
			// lists: the running thread's next frames are likeliest on
			// the pages its frames are on now.
			for i := ts.links + ts.nlinks - 1; i >= ts.links; i-- {
				r.hotPage(r.links[i].addr)
			}
		}
		if opts.Verify && err == nil && ts.frame != 0 && len(t.Frames) == 0 {
			// A thread in Python code has a frame of it; one whose
			// frame pointer led to none was read as it moved.
			err = errNoFrame
		}
		r.remember(addr, &ts, &t, err, gil, opts)
		switch {
		case errors.Is(err, ErrTruncated):
			t.Truncated = true
		case err != nil:
			errs = append(errs, &ThreadError{addr, err})
		}
		threads = append(threads, t)
		if !opts.Verify || err != nil || ts.frame == 0 {
			continue
		}
		// A stack read entirely in the sample's first batch, its frame
		// pointer before its frames and its data stack top after them,
		// is what the thread held while the frames were copied: frames
		// that returned meanwhile are above the top, and those that ran
		// on are still their callers' callees. Only a stack that needed
		// reads of its own, or was read in no such order, is read
		// again.
		if r.cache.Reads() == fetches && r.ordered(&ts, addr == gil) {
			r.stats.Ordered++
			continue
		}
		read = append(read, verifyEntry{ts, len(threads) - 1})
	}
	r.verifying = read
	if len(read) > 0 {
		errs = append(errs, r.verify(threads, read, gil, opts.Plausible)...)
	} else {
		// Nothing needed a second read: the next sample reads one only
		// if it needs one, after its walks, rather than in a syscall of
		// its own at its start that a steady stack never uses.
		r.nextVerify = r.nextVerify[:0]
	}
	r.framesHint = max(r.framesHint, len(frames)+16)
	threads = dropStarting(threads)
	if !opts.NoNames {
		r.threadNames(threads)
	}
	return threads, errors.Join(errs...)
}

// dropStarting removes the thread states of threads still being started.
// From 3.7 to 3.11, _thread.start_new_thread allocates the new thread's
// state in the thread that starts it, which fills in its own ident (and,
// from 3.8, native id), and links it before the new thread runs: until
// the new thread writes its own ids, the state is a copy of its starter
// without a frame. (2.7 and 3.6 make the state in the new thread, and
// 3.12+ leaves the ids 0 until then, which Sample skips.) A frameless
// state whose ident another state has is therefore dropped; of several
// frameless ones, the last in the list stays, the oldest, since new
// states are linked at the head. Threads with frames are never dropped.
func dropStarting(ts []Thread) []Thread {
	out := ts[:0]
	for i, t := range ts {
		if len(t.Frames) == 0 && hasTwin(out, ts[i+1:], t.ID) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// hasTwin reports whether a frameless thread of ident id has a twin that
// stands for it: one with frames before it (kept holds every such thread,
// as none is dropped), or any one after it (later).
func hasTwin(kept, later []Thread, id uint64) bool {
	for _, k := range kept {
		if k.ID == id && len(k.Frames) > 0 {
			return true
		}
	}
	for _, l := range later {
		if l.ID == id {
			return true
		}
	}
	return false
}

// A thread that does not hold the GIL cannot change its Python stack, and
// most threads of a service wait (for work, on a lock, in select) most of
// the time. Reading their stacks again every sample is most of the cost of
// a sample of such a process, so a thread whose innermost frame pointer
// and data stack top are as they were, and that held the GIL neither then
// nor now, keeps the stack last walked, for up to about reuseFor samples;
// the thread is then walked again, its stack's memory read in that
// sample's first batch.
const reuseFor = 16

// stackMemo is a thread's stack as last walked.
type stackMemo struct {
	frames     []Frame
	truncated  bool
	frame, top uint64
	walked     int          // sample of the walk
	seen       int          // last sample the thread was there
	window     int          // samples it may be reused for
	regions    []mem.Region // memory the walk read, for the refreshing batch
}

// stillStack returns the stack remembered for the thread at addr when it
// may stand for this sample's.
func (r *Reader) stillStack(addr uint64, t *tstate, gil uint64, opts SampleOptions) *stackMemo {
	m := r.memos[addr]
	if m == nil || !opts.Reuse || opts.Locals || addr == gil || m.frame != t.frame || m.top != t.top || t.frame == 0 ||
		r.stats.Samples-m.walked >= m.window {
		return nil
	}
	m.seen = r.stats.Samples
	r.stats.Reused++
	if r.stats.Samples-m.walked == m.window-1 {
		// Walked again next sample: have its memory in that batch.
		r.refresh = append(r.refresh, m.regions...)
	}
	return m
}

// remember keeps a walk for stillStack, or forgets one that failed or
// that held the GIL.
func (r *Reader) remember(addr uint64, ts *tstate, t *Thread, err error, gil uint64, opts SampleOptions) {
	if !opts.Reuse || err != nil && !errors.Is(err, ErrTruncated) || addr == gil || opts.Locals {
		delete(r.memos, addr)
		return
	}
	if r.memos == nil {
		r.memos = map[uint64]*stackMemo{}
	}
	// Swept only once the memos outnumber the threads well: a sweep
	// visits every memo, and one per thread would cost a process of
	// many threads a pass over all of them for each.
	if len(r.memos) > 2*maxCheckThreads+2*r.threads {
		for a, m := range r.memos {
			if r.stats.Samples-m.seen > reuseFor {
				delete(r.memos, a)
			}
		}
	}
	m := r.memos[addr]
	if m == nil {
		m = &stackMemo{}
		r.memos[addr] = m
	}
	m.frames = append(m.frames[:0], t.Frames...)
	m.truncated = t.Truncated
	m.frame, m.top, m.walked, m.seen = ts.frame, ts.top, r.stats.Samples, r.stats.Samples
	// Spread the walks of many waiting threads over the samples.
	m.window = reuseFor/2 + int(addr>>4)%reuseFor
	m.regions = m.regions[:0]
	if c := r.chunkRegion(ts); c.Len > 0 {
		m.regions = append(m.regions, c)
	} else {
		for _, lk := range r.links[ts.links : ts.links+ts.nlinks] {
			m.regions = append(m.regions, mem.Region{Addr: lk.addr, Len: uint64(r.l.Frame.Localsplus)})
		}
	}
}

// testHookVerify, set by tests, runs when verify starts, after the walks:
// a test moves a thread there.
var testHookVerify func()

// ordered reports whether the sample's first batch read t's frame pointer
// first and its thread state, with the data stack top, right after its
// data stack (3.11+). Before 3.11 frame objects lie all over the heap and
// are copied in address order, a caller before or after its callee, so
// the stack of the thread that holds the GIL and runs is always read
// again.
func (r *Reader) ordered(t *tstate, holder bool) bool {
	if _, ok := r.cache.Early(t.framePtr); !ok {
		return false
	}
	if r.l.Thread.DatastackTop < 0 {
		return !holder
	}
	return r.cache.CopiedLast(t.addr)
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
func (r *Reader) verify(threads []Thread, ts []verifyEntry, gil uint64, plausible bool) []error {
	if testHookVerify != nil {
		testHookVerify()
	}
	fc := r.fresh
	l := r.l
	hdr := r.frameHeader()
	r.nextVerify = r.nextVerify[:0]
	want := func(addr, n uint64) {
		r.nextVerify = append(r.nextVerify, mem.Region{Addr: addr, Len: n})
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
			if c := r.chunkRegion(t); c.Len > 0 {
				r.nextVerify = append(r.nextVerify, c)
			}
			if r.l.IFrame.Code < 0 {
				for p := range r.hotPages {
					r.nextVerify = append(r.nextVerify, mem.Region{Addr: p, Len: mem.PageSize})
				}
			}
			for _, lk := range r.links[t.links : t.links+t.nlinks] {
				want(lk.addr+hdr.start, hdr.n)
			}
		}
	}
	if fc.Wanting() {
		fc.FetchWanted()
		r.freshReads++
	}
	var errs []error
	for _, v := range ts {
		if err := r.verifyThread(&threads[v.index], &v.ts, gil, hdr, plausible); err != nil {
			errs = append(errs, &ThreadError{v.ts.addr, err})
		}
	}
	return errs
}

// verifyThread is verify's decision for one thread.
func (r *Reader) verifyThread(th *Thread, t *tstate, gil uint64, hdr frameHeader, plausible bool) error {
	fc := r.fresh
	now, ok := fc.U64(t.framePtr)
	if !ok {
		return ErrTorn
	}
	if t.cframe != 0 {
		// The thread entered or left a nested evaluation: the C frame
		// read through has no say about where it is now.
		if cf, ok := fc.U64(t.addr + uint64(r.l.Thread.CFrame)); !ok || cf != t.cframe {
			now = ^uint64(0)
		}
	}
	if gil != 0 && t.addr != gil {
		if now != t.frame {
			return ErrTorn
		}
		return nil
	}
	if r.l.IFrame.Code < 0 {
		return r.verifyObjects(th, t, now, hdr, plausible)
	}
	top := t.top
	if t.chunk != 0 {
		if top, ok = fc.U64(t.addr + uint64(r.l.Thread.DatastackTop)); !ok {
			return ErrTorn
		}
	}
	links := r.links[t.links : t.links+t.nlinks]
	from, deeper := 0, true
	for i, lk := range links {
		if lk.addr == now {
			from, deeper = i, false
			break
		}
	}
	keep := 0
	for i := from; i < len(links); i++ {
		lk := &links[i]
		f, ok := readFresh(fc, lk.addr, hdr)
		if !ok || r.dec.Untag(f.code) != lk.code || f.prev != lk.prev || !r.live(t, lk, f, top) {
			return ErrTorn
		}
		if lk.frame < 0 {
			continue
		}
		keep = max(keep, len(th.Frames)-int(lk.frame))
		if deeper && i == from || f.instr == lk.instr {
			continue
		}
		// A caller stands still while the frame it called is on the
		// stack: one that moved returned from it meanwhile, and the
		// frame kept above it, alike in code and caller, is another
		// call's, pushed where the first one was.
		if i > from {
			return ErrTorn
		}
		if ci, ok := r.dec.CachedCode(lk.code); ok {
			th.Frames[lk.frame].Line = ci.Line(r.dec.Offset(ci, f.instr))
		}
	}
	if keep == 0 && len(th.Frames) > 0 {
		// Returned out of every frame read: nothing to vouch for.
		return ErrTorn
	}
	if keep < len(th.Frames) {
		r.stats.Returned++
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
func (r *Reader) verifyObjects(th *Thread, t *tstate, now uint64, hdr frameHeader, plausible bool) error {
	fc := r.fresh
	links := r.links[t.links : t.links+t.nlinks]
	// links[still:] are anchored and at the instruction the walk read.
	anchor, still := len(links), len(links)
	var callerInstr uint64
	for anchor > 0 {
		lk := &links[anchor-1]
		f, ok := readFresh(fc, lk.addr, hdr)
		if !ok || f.code != lk.code || f.prev != lk.prev || f.refcnt <= 0 ||
			anchor < len(links) && callerInstr != links[anchor].instr {
			break
		}
		callerInstr = f.instr
		anchor--
		if still == anchor+1 && f.instr == lk.instr {
			still = anchor
		}
		if lk.addr != now {
			continue
		}
		keep := len(th.Frames)
		if lk.frame >= 0 {
			keep -= int(lk.frame)
			if ci, ok := r.dec.CachedCode(lk.code); ok && f.instr != lk.instr {
				th.Frames[lk.frame].Line = ci.Line(r.dec.Offset(ci, f.instr))
			}
		}
		if keep < len(th.Frames) {
			r.stats.Returned++
			th.Frames = th.Frames[len(th.Frames)-keep:]
		}
		return nil
	}
	if anchor == len(links) && len(links) > 0 {
		return ErrTorn
	}
	// An edge the callable check could not confirm holds if both its
	// frames are anchored, or if its caller stood still from before the
	// copy of the frame it called (an earlier copy may show a frame of a
	// call the caller has left since); a plausible one needs only the
	// caller to have stood still.
	for i := 1; i < len(links) && i-1 < anchor; i++ {
		if links[i].confirmed {
			continue
		}
		if i < still {
			return ErrTorn
		}
		if after, ok := r.cache.CopiedAfter(links[i-1].addr, links[i].addr); !plausible && (!ok || !after) {
			return ErrTorn
		}
	}
	if anchor > 0 {
		r.stats.Unanchored++
	}
	return nil
}

// live reports whether a frame the second read found is still part of a
// stack: 3.11+ frames of ordinary calls lie below the data stack top,
// older frame objects are referenced.
func (r *Reader) live(t *tstate, lk *link, f freshFrame, top uint64) bool {
	if r.l.IFrame.Code >= 0 {
		return lk.owner != ownedByThread || !t.inChunk(lk.addr) || lk.addr < top
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

func (r *Reader) frameHeader() frameHeader {
	h := frameHeader{refcnt: -1, instrLen: 8}
	if l := &r.l.IFrame; l.Code >= 0 {
		h.code, h.prev, h.instr = l.Code, l.Previous, l.Instr
	} else {
		l := &r.l.Frame
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
