package pyspy

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/frames"
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

// errNoFrame is the error of a stack read empty though the thread's frame
// pointer was set.
var errNoFrame = fmt.Errorf("frame pointer set but no frame read: %w", frames.ErrTorn)

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
	j := &r.judge
	j.beginSample(r.scratch.refresh, opts.Verify)
	r.scratch.refresh = r.scratch.refresh[:0]
	r.scratch.stack.Links = r.scratch.stack.Links[:0]
	r.stats.Samples++
	defer func() { r.stats.Reads += r.cache.Reads() + j.freshReads }()
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
	all := make([]Frame, 0, r.scratch.framesHint)
	read := j.verifying[:0]
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
			start := len(all)
			all = append(all, m.frames...)
			t.Frames, t.Truncated = all[start:len(all):len(all)], m.truncated
			threads = append(threads, t)
			continue
		}
		j.order(&ts)
		start := len(all)
		all, err = r.walk(&ts, opts.Locals, all)
		t.Frames = all[start:len(all):len(all)]
		if r.l.IFrame.Code < 0 && addr == gil {
			j.hotFrames(&ts)
		}
		if opts.Verify && err == nil && ts.frame != 0 && len(t.Frames) == 0 {
			// A thread in Python code has a frame of it; one whose
			// frame pointer led to none was read as it moved.
			err = errNoFrame
		}
		r.remember(addr, &ts, &t, err, gil, opts)
		switch {
		case errors.Is(err, frames.ErrTruncated):
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
		if r.cache.Reads() == fetches && j.ordered(&ts, addr == gil) {
			r.stats.Ordered++
			continue
		}
		read = append(read, verifyEntry{ts, len(threads) - 1})
	}
	j.verifying = read
	if len(read) > 0 {
		errs = append(errs, j.verify(threads, read, gil, opts.Plausible)...)
	} else {
		// Nothing needed a second read: the next sample reads one only
		// if it needs one, after its walks, rather than in a syscall of
		// its own at its start that a steady stack never uses.
		j.nextVerify = j.nextVerify[:0]
	}
	r.scratch.framesHint = max(r.scratch.framesHint, len(all)+16)
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
