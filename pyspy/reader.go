package pyspy

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// Config says where one process's interpreter lives. Addresses are in the
// target's address space, with the load bias applied.
type Config struct {
	Layout *pyversions.Layout
	// Version is the target's exact release; it defaults to the layout's.
	Version pyversions.Version
	// Runtime is the address of _PyRuntime (3.7+), or 0 if unknown.
	Runtime uint64
	// InterpHead is the address of the interp_head variable (2.7 and
	// 3.6), or 0 if unknown.
	InterpHead uint64
	// TstateCurrent is the address of the _PyThreadState_Current variable
	// (2.7 and 3.6), or 0 if unknown.
	TstateCurrent uint64
	// Scan lists memory to search for the interpreter when no symbol
	// locates it: the .PyRuntime, .data and .bss sections of a stripped
	// binary, in that order.
	Scan []Range
	// NoReadahead makes the reader fetch only the bytes its decoders ask
	// for instead of whole pages. Sampling is slower, but a Recorder then
	// captures a small snapshot.
	NoReadahead bool
	// Facts, if set, are pyobj.NewFacts of Layout and Version, worked out
	// for an earlier process of the same binary: the readers of a
	// gunicorn master and its workers share one. New works them out
	// otherwise.
	Facts *pyobj.Facts
}

// Range is a region of target memory.
type Range struct {
	Addr, Size uint64
	Name       string // for messages, e.g. ".bss"
}

// errNoInterpreter means no interpreter state could be found.
var errNoInterpreter = errors.New("no python interpreter found")

// errNotInitialized means the interpreter's roots exist but are still
// empty: the process is starting (or exiting). Attaching again shortly
// may succeed.
var errNotInitialized = errors.New("python interpreter not initialized yet")

// Reader samples the Python stacks of one process. It keeps what it
// learns of the process between samples (where its interpreter is, its
// code objects and types, the stacks of its waiting threads) and is not
// safe for concurrent use.
type Reader struct {
	// facts are those of the interpreter build, which the readers of
	// other processes of the same binary may share.
	facts *pyobj.Facts
	l     *pyversions.Layout
	v     pyversions.Version

	// What follows is the process's own: the read cache and the
	// decoders over it (with their caches), the judge of its stacks,
	// where its interpreter is, and what earlier samples learnt.
	cache  *mem.Cache
	dec    *pyobj.Decoder
	codes  *pyobj.Codes
	walker *frames.Walker
	judge  judge
	interp uint64
	// runtime is the address of _PyRuntime, or 0.
	runtime uint64
	// gilVar is the address of the variable holding the thread state that
	// has the GIL (3.7–3.11: _PyRuntime.gilstate.tstate_current), or 0.
	gilVar uint64
	// memos are the stacks of waiting threads, by thread state.
	memos  map[uint64]*stackMemo
	names  nameCache
	native nativeIDs
	stats  Stats

	scratch sampleScratch
}

// sampleScratch is what one sample builds and the next reuses, so that a
// steady sample allocates only what it returns.
type sampleScratch struct {
	// stack holds the sample's walks: the frames of the walk under way,
	// and every thread's links.
	stack frames.Walk
	// refresh is the memory of waiting threads to walk again in the next
	// sample, for its first batch.
	refresh []mem.Region
	// threadAddrs is threadList's result, reused, and threads the length
	// of its last result (threadAddrs is kept empty between calls).
	threadAddrs []uint64
	threads     int
	// framesHint sizes a sample's frames from the largest sample seen.
	framesHint int
}

// Stats counts work done, for benchmarks and status lines.
type Stats struct {
	Samples    int
	Reads      int // fetches from target memory
	CodeMisses int // code objects decoded (not served from cache)
	// Returned counts stacks verify kept from a caller the thread had
	// returned to by the time of its second read, and Popped the
	// innermost frames a walk skipped because they had returned since
	// the frame pointer was read.
	Returned, Popped int
	// Ordered counts stacks kept without a second read because the
	// sample's first batch read them in an order that makes them
	// consistent, and Reused the stacks of waiting threads taken from an
	// earlier sample (see stillStack).
	Ordered, Reused int
	// Unanchored counts stacks (before 3.11) kept with innermost frames
	// that no second read could vouch for (see verifyObjects).
	Unanchored int
}

// New locates the interpreter and returns a Reader for it.
func New(m Memory, cfg Config) (*Reader, error) {
	if cfg.Layout == nil {
		return nil, errors.New("no layout")
	}
	v := cfg.Version
	if v.Major == 0 {
		v = cfg.Layout.Version
	}
	f := cfg.Facts
	switch {
	case f == nil:
		f = pyobj.NewFacts(cfg.Layout, v)
	case f.Layout != cfg.Layout || f.Version != v:
		return nil, fmt.Errorf("facts of python %s with another layout, for python %s", f.Version, v)
	}
	r := newReader(m, f, !cfg.NoReadahead)
	if err := r.locate(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// newReader returns a reader that has not located its interpreter yet.
func newReader(m Memory, f *pyobj.Facts, readahead bool) *Reader {
	r := &Reader{facts: f, l: f.Layout, v: f.Version, cache: mem.NewCache(m, readahead)}
	// From 3.11 no frame lies in the body of a sample's batch: the data
	// stacks come right after the frame pointers.
	r.cache.BodyFirst = f.Version.AtLeast(3, 11)
	r.dec = pyobj.NewDecoder(r.cache, f)
	r.codes = pyobj.NewCodes(r.dec)
	r.walker = frames.NewWalker(r.dec, r.codes)
	r.judge = judge{
		dec: r.dec, codes: r.codes, facts: f, l: f.Layout, v: f.Version,
		cache: r.cache, fresh: mem.NewCache(m, readahead),
		stats: &r.stats, stack: &r.scratch.stack,
	}
	r.names.init()
	return r
}

// Interpreter returns the address of the PyInterpreterState being read.
func (r *Reader) Interpreter() uint64 { return r.interp }

// Runtime returns the address of _PyRuntime, or 0 when unknown (3.6, or a
// stripped build where the scan found only the interpreter).
func (r *Reader) Runtime() uint64 { return r.runtime }

// Stats returns counters accumulated since New.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.CodeMisses = r.codes.Misses()
	return s
}

func (r *Reader) locate(cfg Config) error {
	r.cache.Begin()
	var tried []string
	// A symbol (or the .PyRuntime section) is authoritative: if it says
	// there is no interpreter yet, the process is still starting, and
	// scanning would only find look-alikes in static data.
	if cfg.Runtime != 0 && r.l.Runtime.InterpretersHead >= 0 {
		interp, err := r.dec.Pointer(cfg.Runtime + uint64(r.l.Runtime.InterpretersHead))
		if err == nil && interp == 0 {
			return errNotInitialized
		}
		if err == nil {
			err = r.checkInterp(interp, false)
		}
		if err == nil {
			r.setRuntime(cfg.Runtime, interp)
			return nil
		}
		return fmt.Errorf("%w (_PyRuntime at %#x: %v)", errNoInterpreter, cfg.Runtime, err)
	}
	if cfg.InterpHead != 0 {
		interp, err := r.dec.Pointer(cfg.InterpHead)
		if err == nil && interp == 0 {
			return errNotInitialized
		}
		if err == nil {
			err = r.checkInterp(interp, false)
		}
		if err == nil {
			r.interp, r.gilVar = interp, cfg.TstateCurrent
			return nil
		}
		return fmt.Errorf("%w (interp_head at %#x: %v)", errNoInterpreter, cfg.InterpHead, err)
	}
	for _, rg := range cfg.Scan {
		if err := r.scan(rg, cfg.TstateCurrent); err == nil {
			return nil
		} else {
			tried = append(tried, fmt.Sprintf("scan of %s: %v", rg.Name, err))
		}
	}
	if len(tried) == 0 {
		return fmt.Errorf("%w: no symbol or section to look in", errNoInterpreter)
	}
	return fmt.Errorf("%w (%s)", errNoInterpreter, joinErrs(tried))
}

func joinErrs(s []string) string {
	out := ""
	for i, e := range s {
		if i > 0 {
			out += "; "
		}
		out += e
	}
	return out
}

func (r *Reader) setRuntime(runtime, interp uint64) {
	r.runtime, r.interp = runtime, interp
	if r.l.Runtime.TstateCurrent >= 0 {
		r.gilVar = runtime + uint64(r.l.Runtime.TstateCurrent)
	}
}

// maxCheckThreads bounds the threads checkInterp looks at.
const maxCheckThreads = 64

// checkInterp accepts an interpreter state only if every thread state in
// its list (up to maxCheckThreads) points back to it and one at least has
// a thread id: a thread being started is in the list before its id is set,
// which a process that starts threads all the time shows at any moment.
// A candidate found by scanning must also have a thread whose stack walks
// to at least one frame: static data holds look-alikes whose empty stacks
// would walk trivially. Walk errors are not held against a candidate found
// through a symbol: the process is running, and a stack read while it
// changes can tear.
func (r *Reader) checkInterp(interp uint64, scanned bool) error {
	if interp == 0 || interp%8 != 0 {
		return fmt.Errorf("bad interpreter pointer %#x", interp)
	}
	head, err := r.dec.Pointer(interp + uint64(r.l.Interp.ThreadsHead))
	if err != nil {
		return fmt.Errorf("interpreter at %#x: %w", interp, err)
	}
	if head == 0 || head%8 != 0 {
		return fmt.Errorf("interpreter at %#x: bad thread list head %#x", interp, head)
	}
	walked, withID := false, false
	var cyc frames.Brent
	n := 0
	for addr := head; addr != 0 && n < maxCheckThreads; n++ {
		if cyc.Step(addr) {
			return fmt.Errorf("interpreter at %#x: thread list: %w", interp, frames.ErrCycle)
		}
		ts, err := r.readThread(addr)
		if err != nil {
			return err
		}
		if ts.interp != interp {
			return fmt.Errorf("thread state at %#x belongs to interpreter %#x, not %#x", addr, ts.interp, interp)
		}
		withID = withID || ts.id != 0
		if scanned && !walked && ts.id != 0 {
			fs, err := r.walk(&ts, false, nil)
			walked = len(fs) > 0 && (err == nil || errors.Is(err, frames.ErrTruncated))
		}
		addr = ts.next
	}
	if !withID {
		return fmt.Errorf("interpreter at %#x: no thread state has a thread id", interp)
	}
	if scanned && !walked {
		return fmt.Errorf("interpreter at %#x: no thread has a Python stack", interp)
	}
	return nil
}

// maxScan bounds how much memory the interpreter scan reads.
const maxScan = 64 << 20

// scan looks for a pointer to an interpreter state in rg. For 3.7+ the
// word is taken to be _PyRuntime.interpreters.head when the following
// word, interpreters.main, agrees, which also yields the GIL variable.
func (r *Reader) scan(rg Range, tstateVar uint64) error {
	if rg.Size == 0 || rg.Size > maxScan {
		return fmt.Errorf("size %d out of range", rg.Size)
	}
	buf := make([]byte, rg.Size&^7)
	if _, err := r.cache.ReadAt(buf, int64(rg.Addr)); err != nil {
		return err
	}
	checked := map[uint64]bool{}
	for off := 0; off+8 <= len(buf); off += 8 {
		p := mem.LE64(buf[off:])
		if p < 0x1000 || p%8 != 0 || p > 0x7fffffffffff || checked[p] {
			continue
		}
		if len(checked) > 100000 {
			break
		}
		checked[p] = true
		// The cheap test first: a pointer to a thread list head whose
		// interp points back.
		head, err := r.dec.Pointer(p + uint64(r.l.Interp.ThreadsHead))
		if err != nil || head == 0 || head%8 != 0 {
			continue
		}
		if back, err := r.dec.Pointer(head + uint64(r.l.Thread.Interp)); err != nil || back != p {
			continue
		}
		if err := r.checkInterp(p, true); err != nil {
			continue
		}
		r.interp, r.gilVar = p, tstateVar
		// Other globals may point at the interpreter too; _PyRuntime is
		// where interpreters.head is followed by an equal
		// interpreters.main.
		if hd := int(r.l.Runtime.InterpretersHead); hd >= 0 {
			for o := off; o+16 <= len(buf); o += 8 {
				if o >= hd && mem.LE64(buf[o:]) == p && mem.LE64(buf[o+8:]) == p {
					r.setRuntime(rg.Addr+uint64(o-hd), p)
					break
				}
			}
		}
		return nil
	}
	return errors.New("no candidate passed validation")
}
