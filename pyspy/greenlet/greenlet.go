package greenlet

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
)

// Bounds on what a Reader reads from the target.
const (
	// DefaultMaxObjects bounds the GC objects one Scan visits: far more
	// than a real heap, short of a loop that moving memory makes.
	DefaultMaxObjects = 50_000_000
	// DefaultBudget bounds the time one Scan takes.
	DefaultBudget = 10 * time.Second
	// maxGreenlets bounds the greenlets one Scan keeps.
	maxGreenlets = 1 << 20
	// maxTypes bounds the types whose verdict is kept.
	maxTypes = 1 << 16
	// maxBases bounds a type's tp_base chain.
	maxBases = 64
	// gcResetReads is how many fetches the walk's cache serves before it
	// forgets them: the walk never returns to what it read, and the cache
	// must not grow to the size of the heap.
	gcResetReads = 256
)

// PyTypeObject members not in pyversions' layout: the same in every 3.x
// build on 64 bits.
const (
	typeBase      = 256
	typeBasicsize = 32
)

// gevent's Greenlet, compiled by Cython from the same .pxd in gevent 22.10
// and 25.9: PyGreenlet, then its vtable and cdef fields, _ident last.
const (
	geventType      = "gevent._gevent_cgreenlet.Greenlet"
	geventBasicsize = 144
	geventIdent     = 136
)

// Errors of Scan.
var (
	// ErrBudget: the walk took longer than its budget.
	ErrBudget = errors.New("gc walk over its time budget")
	// ErrTooMany: the walk met more objects than its bound.
	ErrTooMany = errors.New("gc walk over its object bound")
	// ErrNoGC: the interpreter's GC lists are not where this package
	// looks for them in this release.
	ErrNoGC = errors.New("gc lists not found")
)

// Reader finds and decodes the greenlets of one process. It is not safe
// for concurrent use.
type Reader struct {
	// MaxObjects and Budget bound a Scan.
	MaxObjects int
	Budget     time.Duration

	f      *pyobj.Facts
	interp uint64
	// c holds what Decode reads, begun anew by each, read exactly as
	// asked: a worker's impls lie a few hundred bytes apart over
	// megabytes of heap, and whole pages merged across the gaps copied
	// 2.6 MB a decode of 1,000 greenlets.
	c     *mem.Cache
	gc    *mem.Cache // what Scan reads, forgotten as it goes
	d     *pyobj.Decoder
	codes *pyobj.Codes
	w     *frames.Walker
	l     *Layout
	// release is the greenlet release found, "" until one is.
	release string
	types   map[uint64]kind
	walk    frames.Walk
	// memos are the parked greenlets last decoded, by PyGreenlet, for
	// Decode's reuse.
	memos map[uint64]*memo
	// states are the ThreadStates of main greenlets, for one Decode.
	states map[uint64]uint64
	// out is Decode's result, reused by the next; walks the indexes in
	// it of the greenlets to walk, for one Decode.
	out   []Greenlet
	walks []int
	// gcl is the GC layout found to hold, once one has.
	gcl *gcLayout
}

// memo is a parked greenlet as Decode last read it: while its impl still
// holds the same saved frame, it has not run since (or ran and parked
// again in the very frame it left), and its frames and name are reused,
// up to reuseFor decodes.
type memo struct {
	impl, top, cur uint64
	copied         [2]uint64
	kind           kind
	frames         []frames.Frame
	truncated      bool
	name           string
	hasName        bool
	age            int
	// named counts the walks since the name was read.
	named int
}

// nameEvery is how many turns a greenlet that has not moved keeps its
// name: another greenlet can rename it while it is parked.
const nameEvery = 4

// reuseFor bounds how many decodes reuse a greenlet's frames before they
// are walked again. Nothing read without walking tells a greenlet that
// ran and parked again in the same frame at another line, whose copy of
// its C stack the allocator happened to put where the last one was
// (pymalloc hands back the block freed last): its line may be this many
// samples stale.
const reuseFor = 32

// maxMemos bounds the greenlets remembered.
const maxMemos = 1 << 16

// kind is what a type is to this package.
type kind uint8

const (
	notGreenlet kind = iota + 1
	plainGreenlet
	geventGreenlet
)

// New returns a reader of the greenlets of the process whose memory is m,
// whose interpreter build f describes and whose PyInterpreterState is at
// interp.
func New(m mem.Memory, f *pyobj.Facts, interp uint64) *Reader {
	c := mem.NewCache(m, false)
	d := pyobj.NewDecoder(c, f)
	codes := pyobj.NewCodes(d)
	return &Reader{
		MaxObjects: DefaultMaxObjects, Budget: DefaultBudget,
		f: f, interp: interp, c: c, gc: mem.NewCache(m, true),
		d: d, codes: codes, w: frames.NewWalker(d, codes),
		types: map[uint64]kind{}, memos: map[uint64]*memo{}, states: map[uint64]uint64{},
	}
}

// SetRelease sets the greenlet release the reader decodes, as another
// reader's Scan found it, for a reader that only decodes.
func (r *Reader) SetRelease(release string) error {
	if release == r.release && r.l != nil {
		return nil
	}
	l, err := LayoutFor(release, r.f.Version)
	if err != nil {
		return err
	}
	r.release, r.l = release, l
	clear(r.memos)
	return nil
}

// Reads counts the fetches from the target of the last Decode.
func (r *Reader) Reads() int { return r.c.Reads() }

// Release returns the greenlet release the last Scan found, or "".
func (r *Reader) Release() string { return r.release }

// Scanned is what a Scan found.
type Scanned struct {
	// Objects are the addresses of the greenlets found.
	Objects []uint64
	// Visited counts the GC objects walked.
	Visited int
	// Collecting says a collection was under way: objects it held on
	// lists of its own were not seen.
	Collecting bool
}

// Scan finds every greenlet of the process in the interpreter's GC
// lists. It returns no objects and no error when greenlet is not
// imported, and an UnknownReleaseError when it is but its layout is
// unknown.
func (r *Reader) Scan() (*Scanned, error) {
	r.c.Begin()
	release, err := r.greenletRelease()
	if err != nil || release == "" {
		return &Scanned{}, err
	}
	l, err := LayoutFor(release, r.f.Version)
	if err != nil {
		return &Scanned{}, err
	}
	r.release, r.l = release, l
	g, err := r.gcLayout()
	if err != nil {
		return &Scanned{}, err
	}
	if tl := &r.f.Layout.Type; tl.Flags != 168 || tl.Dictoffset != 288 {
		return &Scanned{}, fmt.Errorf("type layout of python %s: %w", r.f.Version, ErrNoGC)
	}
	deadline := time.Now().Add(r.Budget)
	var out *Scanned
	// A running process frees objects as the walk goes: a walk that
	// followed a link out of a freed object is done again.
	for range scanAttempts {
		if out, err = r.scan(g, deadline); err == nil || errors.Is(err, ErrBudget) || errors.Is(err, ErrNoGC) {
			break
		}
	}
	return out, err
}

// gcLayout returns the first of the minor's GC layouts whose list heads
// hold together: each head's first and last objects link back to it. A
// minor can have two: the same struct packed otherwise by a later patch
// release.
func (r *Reader) gcLayout() (gcLayout, error) {
	minor := r.f.Version.MinorString()
	cands, ok := gcLayouts[minor]
	if !ok {
		return gcLayout{}, fmt.Errorf("python %s: %w", minor, ErrNoGC)
	}
	if r.gcl != nil {
		return *r.gcl, nil
	}
	for _, g := range cands {
		if r.headsHold(g) {
			r.gcl = &g
			return g, nil
		}
	}
	return gcLayout{}, fmt.Errorf("python %s: no list head links back: %w", r.f.Version, ErrNoGC)
}

// headsHold tells whether every list head of g is one: empty (both links
// to itself), or its first object's back link and its last object's
// forward link lead to it.
func (r *Reader) headsHold(g gcLayout) bool {
	state := r.interp + uint64(g.state)
	for _, h := range g.heads {
		head := state + uint64(h)
		b, err := r.d.Read(head, 16, "gc list head")
		if err != nil {
			return false
		}
		first, last := b.Ptr(0)&^3, b.Ptr(8)&^3
		if first == head || last == head {
			if first != last {
				return false
			}
			continue
		}
		fb, err := r.d.Read(first, 16, "gc list object")
		if err != nil || fb.Ptr(8)&^3 != head {
			return false
		}
		lb, err := r.d.Read(last, 16, "gc list object")
		if err != nil || lb.Ptr(0)&^3 != head {
			return false
		}
	}
	return true
}

// scanAttempts bounds the walks of one Scan.
const scanAttempts = 3

func (r *Reader) scan(g gcLayout, deadline time.Time) (*Scanned, error) {
	out := &Scanned{}
	state := r.interp + uint64(g.state)
	if b, err := r.d.Read(state+uint64(g.collecting), 4, "gc state"); err == nil {
		out.Collecting = b.I32(0) != 0
	}
	r.gc.Reset()
	for _, h := range g.heads {
		if err := r.walkList(state+uint64(h), out, deadline); err != nil {
			return out, err
		}
	}
	return out, nil
}

// walkList walks one GC list from its head, adding the greenlets in it.
func (r *Reader) walkList(head uint64, out *Scanned, deadline time.Time) error {
	hb, err := r.gc.Bytes(head, 16)
	if err != nil {
		return fmt.Errorf("gc list head at %#x: %w", head, err)
	}
	first, last := mem.LE64(hb)&^3, mem.LE64(hb[8:])&^3
	if first == 0 || last == 0 {
		return fmt.Errorf("gc list head at %#x: null link: %w", head, ErrNoGC)
	}
	var cyc frames.Brent
	prev := head
	for p := first; p != head; {
		if out.Visited++; out.Visited > r.MaxObjects {
			return ErrTooMany
		}
		if out.Visited%4096 == 0 && time.Now().After(deadline) {
			return ErrBudget
		}
		if cyc.Step(p) {
			return fmt.Errorf("gc list at %#x: %w", head, frames.ErrCycle)
		}
		if r.gc.Reads() >= gcResetReads {
			r.gc.Reset()
		}
		// PyGC_Head, then the object's refcount and type.
		b, err := r.gc.Bytes(p, 32)
		if err != nil {
			return fmt.Errorf("gc list at %#x: object at %#x: %w", head, p+16, err)
		}
		next, back, typ := mem.LE64(b)&^3, mem.LE64(b[8:])&^3, mem.LE64(b[24:])
		// The first link of a list must lead back to its head: where
		// it does not, this is no GC list (an offset wrong for this
		// release).
		if prev == head && back != head {
			return fmt.Errorf("gc list head at %#x: first object does not link back: %w", head, ErrNoGC)
		}
		if k, err := r.kindOf(typ); err == nil && k != notGreenlet {
			if len(out.Objects) >= maxGreenlets {
				return fmt.Errorf("more than %d greenlets: %w", maxGreenlets, ErrTooMany)
			}
			out.Objects = append(out.Objects, p+16)
		}
		prev, p = p, next
	}
	return nil
}

// kindOf tells whether typ derives from greenlet.greenlet, through its
// tp_base chain: any subclass's solid base carries PyGreenlet's layout.
func (r *Reader) kindOf(typ uint64) (kind, error) {
	if k, ok := r.types[typ]; ok {
		return k, nil
	}
	k := notGreenlet
	t := typ
	for range maxBases {
		if t == 0 {
			break
		}
		name, heap, err := r.d.TypeName(t)
		if err != nil {
			return 0, err
		}
		if !heap && name == geventType {
			if size, err := r.d.Pointer(t + typeBasicsize); err == nil && size == geventBasicsize {
				k = geventGreenlet
			}
		}
		if !heap && name == "greenlet.greenlet" {
			if k != geventGreenlet {
				k = plainGreenlet
			}
			break
		}
		if t, err = r.d.Pointer(t + typeBase); err != nil {
			return 0, err
		}
	}
	if k == geventGreenlet && t == 0 {
		k = notGreenlet
	}
	if k != plainGreenlet && k != geventGreenlet {
		k = notGreenlet
	}
	if len(r.types) < maxTypes {
		r.types[typ] = k
	}
	return k, nil
}

// greenletRelease reads greenlet.__version__ from sys.modules, or "" when
// greenlet is not imported.
func (r *Reader) greenletRelease() (string, error) {
	l := r.f.Layout
	modules, err := r.d.Pointer(r.interp + uint64(l.Interp.Modules))
	if err != nil {
		return "", fmt.Errorf("sys.modules: %w", err)
	}
	if modules == 0 {
		return "", nil
	}
	mod, err := r.d.DictLookup(modules, "greenlet")
	if err != nil || mod == 0 {
		return "", err
	}
	md, err := r.d.Pointer(mod + uint64(l.Module.Dict))
	if err != nil {
		return "", fmt.Errorf("greenlet module: %w", err)
	}
	v, err := r.d.DictLookup(md, "__version__")
	if err != nil {
		return "", fmt.Errorf("greenlet.__version__: %w", err)
	}
	if v == 0 {
		return "", errors.New("greenlet module has no __version__")
	}
	s, err := r.d.Str(v)
	if err != nil {
		return "", fmt.Errorf("greenlet.__version__: %w", err)
	}
	return s, nil
}

// Greenlet is one greenlet as Decode read it.
type Greenlet struct {
	// Addr is the PyGreenlet, what id() gives; Impl its C++ impl.
	Addr, Impl uint64
	// Name is gevent's Greenlet.name where one is set or cached.
	Name    string
	HasName bool
	// Main marks a thread's main greenlet.
	Main bool
	// Started, Dead and Running are the greenlet's state: Running
	// means it is the current greenlet of its thread, whose own stack
	// is then its stack.
	Started, Dead, Running bool
	// ThreadState is the greenlet ThreadState of the thread it belongs
	// to, or 0 once that thread has exited.
	ThreadState uint64
	// MainGreenlet is the main greenlet of its thread.
	MainGreenlet uint64
	// StackAddr is an address in the C stack of its thread (the top of
	// its slice of that stack), or 0: what ties it to an OS thread.
	StackAddr uint64
	// Frames are the parked greenlet's Python frames, innermost first
	// (none for a running one, whose stack is its thread's).
	Frames []frames.Frame
	// Truncated marks frames cut at the walk's depth limit.
	Truncated bool
	// Err is why the frames could not be read completely.
	Err error

	// top and cur are the gr_frame object and the frame the impl saved,
	// and copied where and how much of its C stack it copied when it
	// last switched away: a greenlet that ran since made a new copy,
	// most often elsewhere.
	top, cur uint64
	copied   [2]uint64
	kind     kind
}

// Parked reports whether g is started, alive and not running.
func (g *Greenlet) Parked() bool { return g.Started && !g.Dead && !g.Running }

// Decode reads the greenlets at objs, which an earlier Scan found: their
// state, name and, parked ones, their frames (with locals, rendered).
// An object that is no longer a greenlet is left out; one that cannot be
// read is returned with Err set. The result is valid until the next
// Decode.
func (r *Reader) Decode(objs []uint64, locals bool) []Greenlet {
	if r.l == nil {
		return nil
	}
	r.c.Begin()
	clear(r.states)
	r.prefetch(objs)
	out := r.out[:0]
	states := map[uint64]uint64{} // ThreadState → its current greenlet
	for _, obj := range objs {
		m := r.memos[obj]
		g, ok := r.decode(obj, m)
		if m != nil && g.Err != nil {
			// Freed since, or changed: read as if first met.
			g, ok = r.decode(obj, nil)
		}
		if !ok {
			continue
		}
		if g.Err == nil && g.ThreadState != 0 {
			cur, seen := states[g.ThreadState]
			if !seen {
				cur, g.Err = r.current(g.ThreadState, g.MainGreenlet)
				if g.Err == nil {
					states[g.ThreadState] = cur
				}
			}
			g.Running = cur == g.Addr
		}
		if g.Err == nil && g.Parked() {
			m := r.memos[obj]
			if !locals && m != nil && m.unmoved(&g) && m.age < reuseFor {
				m.age++
				g.Frames, g.Truncated, g.Name, g.HasName = m.frames, m.truncated, m.name, m.hasName
			} else {
				r.walks = append(r.walks, len(out))
			}
		} else {
			delete(r.memos, obj)
			g.Name, g.HasName = r.name(obj, g.kind)
		}
		out = append(out, g)
	}
	// The greenlets to walk, each in a data stack chunk of its own: the
	// pages of their saved frames in one batch.
	for _, i := range r.walks {
		g := &out[i]
		for _, a := range []uint64{g.top, g.cur} {
			if a != 0 && r.c.Held(a, 8) == nil {
				r.c.Want(a&^(mem.PageSize-1), mem.PageSize)
			}
		}
	}
	r.c.FetchWanted()
	for _, i := range r.walks {
		r.walk1(&out[i], locals)
	}
	r.walks = r.walks[:0]
	r.out = out
	return out
}

// prefetch reads, in two batches, what Begin did not read again of what
// decode reads: the PyGreenlet of each greenlet not walked before, then
// each impl.
func (r *Reader) prefetch(objs []uint64) {
	want := func(addr, n uint64) {
		if addr != 0 && r.c.Held(addr, n) == nil {
			r.c.Want(addr, n)
		}
	}
	for _, obj := range objs {
		if r.memos[obj] == nil {
			want(obj, pySize)
		}
	}
	r.c.FetchWanted()
	size := r.implSize()
	for _, obj := range objs {
		if m := r.memos[obj]; m != nil {
			want(m.impl, size)
		} else if impl, ok := r.c.U64(obj + pyImpl); ok {
			want(impl, size)
		}
	}
	r.c.FetchWanted()
}

// implSize is how much of an impl decode reads.
func (r *Reader) implSize() uint64 {
	l := r.l
	return uint64(max(l.ThreadState, l.Parent, l.MainSelf, l.UserSelf) + 8)
}

// walk1 walks a parked greenlet's frames and, without locals, remembers
// them for the next decodes.
func (r *Reader) walk1(g *Greenlet, locals bool) {
	obj := g.Addr
	m := r.memos[obj]
	unmoved := m != nil && m.unmoved(g)
	// A greenlet walked again only because its turn came keeps its
	// name, read again every nameEvery turns.
	named := 0
	if !locals && unmoved && m.named < nameEvery {
		g.Name, g.HasName, named = m.name, m.hasName, m.named+1
	} else {
		g.Name, g.HasName = r.name(obj, g.kind)
	}
	g.Frames, g.Truncated, g.Err = r.frames(g, locals)
	if locals || g.Err != nil {
		return
	}
	// Greenlets first read together are walked again in turns, not all
	// in one sample.
	age := int(obj>>5) % reuseFor
	if m == nil {
		if len(r.memos) >= maxMemos {
			clear(r.memos)
		}
		m = &memo{}
		r.memos[obj] = m
	} else {
		age = 0
	}
	*m = memo{impl: g.Impl, top: g.top, cur: g.cur, copied: g.copied, kind: g.kind, frames: g.Frames, truncated: g.Truncated, name: g.Name, hasName: g.HasName, age: age, named: named}
}

// unmoved tells whether g, as just decoded, holds what m remembers.
func (m *memo) unmoved(g *Greenlet) bool {
	return m.impl == g.Impl && m.top == g.top && m.cur == g.cur && m.copied == g.copied
}

// decode reads one greenlet's PyGreenlet and impl; ok is false when obj
// is no greenlet (any more).
func (r *Reader) decode(obj uint64, m *memo) (g Greenlet, ok bool) {
	g.Addr = obj
	var k kind
	var impl uint64
	if m != nil {
		// A greenlet's impl is its own for life, and points back to
		// it: that it still does (checked below) tells a greenlet
		// parked since the last decode without reading it again.
		k, impl = m.kind, m.impl
	} else {
		// The whole PyGreenlet in one read, with the page around it: a
		// worker's greenlets are allocated side by side.
		pf, err := r.d.Read(obj, pySize, "greenlet")
		if err != nil {
			g.Err = err
			return g, true
		}
		typ := pf.Ptr(r.f.Layout.Object.Type)
		impl = pf.Ptr(pyImpl)
		if pf.Err() != nil {
			g.Err = pf.Err()
			return g, true
		}
		if k, err = r.kindOf(typ); err != nil || k == notGreenlet {
			return g, false
		}
	}
	l := r.l
	g.Impl = impl
	f, err := r.d.Read(impl, r.implSize(), "greenlet impl")
	if err != nil {
		g.Err = fmt.Errorf("greenlet at %#x: %w", obj, err)
		return g, true
	}
	start, stop := f.Ptr(l.StackStart), f.Ptr(l.StackStop)
	g.Main = stop == ^uint64(0)
	self := l.Self
	if self < 0 {
		self = l.UserSelf
		if g.Main {
			self = l.MainSelf
		}
	}
	back := f.Ptr(self)
	g.top, g.cur = f.Ptr(l.TopFrame), f.Ptr(l.CurrentFrame)
	// stack_copy and _stack_saved follow stack_stop in StackState.
	g.copied = [2]uint64{f.Ptr(l.StackStop + 8), f.Ptr(l.StackStop + 16)}
	if f.Err() != nil {
		g.Err = f.Err()
		return g, true
	}
	if back != obj {
		g.Err = fmt.Errorf("greenlet at %#x: impl at %#x points to %#x, not back to it", obj, impl, back)
		return g, true
	}
	g.Started = stop != 0
	g.Dead = g.Started && start == 0
	if g.Main {
		g.MainGreenlet = obj
		g.ThreadState = f.Ptr(l.ThreadState)
		if start > 1 {
			g.StackAddr = start
		}
	} else {
		g.MainGreenlet = f.Ptr(l.MainGreenlet)
		if g.Started {
			g.StackAddr = stop
		}
		if g.MainGreenlet != 0 && !g.Dead {
			g.ThreadState, g.Err = r.threadStateOf(g.MainGreenlet)
		}
	}
	if f.Err() != nil && g.Err == nil {
		g.Err = f.Err()
	}
	// A greenlet of a thread that has exited is dead too.
	if g.Started && g.ThreadState == 0 && g.Err == nil {
		g.Dead = true
	}
	g.kind = k
	return g, true
}

// threadStateOf returns the ThreadState of the main greenlet main, read
// once per Decode.
func (r *Reader) threadStateOf(main uint64) (uint64, error) {
	if ts, ok := r.states[main]; ok {
		return ts, nil
	}
	ts, err := r.readThreadState(main)
	if err == nil && len(r.states) < maxMemos {
		r.states[main] = ts
	}
	return ts, err
}

func (r *Reader) readThreadState(main uint64) (uint64, error) {
	impl, err := r.d.Pointer(main + pyImpl)
	if err != nil {
		return 0, fmt.Errorf("main greenlet at %#x: %w", main, err)
	}
	ts, err := r.d.Pointer(impl + uint64(r.l.ThreadState))
	if err != nil {
		return 0, fmt.Errorf("main greenlet at %#x: %w", main, err)
	}
	return ts, nil
}

// Current returns the greenlet each of the ThreadStates at states runs
// now, as one read each (0 for one that cannot be read): what changes
// when a thread switches greenlets, for a caller that decoded them
// earlier.
func (r *Reader) Current(states []uint64, out []uint64) []uint64 {
	r.c.Begin()
	for _, ts := range states {
		if r.c.Held(ts+tsCur, 8) == nil {
			r.c.Want(ts+tsCur, 8)
		}
	}
	r.c.FetchWanted()
	out = out[:0]
	for _, ts := range states {
		cur, _ := r.c.U64(ts + tsCur)
		out = append(out, cur)
	}
	return out
}

// current returns the current greenlet of the ThreadState ts, checking
// that main is its main greenlet.
func (r *Reader) current(ts, main uint64) (uint64, error) {
	f, err := r.d.Read(ts, tsSize, "greenlet thread state")
	if err != nil {
		return 0, err
	}
	m, cur := f.Ptr(tsMain), f.Ptr(tsCur)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if m != main {
		return 0, fmt.Errorf("greenlet thread state at %#x: main greenlet %#x, not %#x", ts, m, main)
	}
	return cur, nil
}

// frames walks a parked greenlet's saved frames: from the
// _PyInterpreterFrame it saved (3.11+), which must be the one its
// gr_frame object stands for.
func (r *Reader) frames(g *Greenlet, locals bool) ([]frames.Frame, bool, error) {
	if !r.f.Version.AtLeast(3, 11) {
		return nil, false, fmt.Errorf("python %s: %w", r.f.Version, ErrUnknownRelease)
	}
	top, cur := g.top, g.cur
	if top == 0 {
		// Parked from C code with no Python frame: gr_frame is None.
		return nil, false, nil
	}
	ff, err := r.d.Pointer(top + frameFF)
	if err != nil {
		return nil, false, fmt.Errorf("gr_frame of greenlet at %#x: %w", g.Addr, err)
	}
	if ff != cur {
		return nil, false, fmt.Errorf("greenlet at %#x: gr_frame holds frame %#x, saved frame is %#x: %w", g.Addr, ff, cur, frames.ErrTorn)
	}
	r.walk.Frames, r.walk.Links = r.walk.Frames[:0], r.walk.Links[:0]
	err = r.w.Walk(cur, nil, locals, &r.walk)
	fs := slices.Clone(r.walk.Frames)
	if errors.Is(err, frames.ErrTruncated) {
		return fs, true, nil
	}
	return fs, false, err
}

// name is gevent's label for the greenlet at obj: its name attribute if
// one was assigned, else "Greenlet-N" once minimal_ident was asked for
// (gevent's repr does the same), else none.
func (r *Reader) name(obj uint64, k kind) (string, bool) {
	if v, err := r.d.Attribute(obj, "name"); err == nil && v != 0 {
		if s, err := r.d.Str(v); err == nil {
			return s, true
		}
	}
	if k != geventGreenlet {
		return "", false
	}
	id, err := r.d.Pointer(obj + geventIdent)
	if err != nil || id == 0 {
		return "", false
	}
	if t, _, err := r.d.BuiltinType(id); err != nil || t != "int" {
		return "", false
	}
	if n, neg, err := r.d.IntValue(id); err == nil && !neg {
		return fmt.Sprintf("Greenlet-%d", n), true
	}
	return "", false
}
