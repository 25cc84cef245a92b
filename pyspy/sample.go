package pyspy

import (
	"errors"
	"fmt"
)

// SampleOptions choose what a sample reads beyond the stacks.
type SampleOptions struct {
	// Locals renders each frame's arguments and local variables.
	Locals bool
	// NoNames skips thread names, which cost extra reads when threads
	// come and go.
	NoNames bool
}

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
	r.cache.begin()
	r.stats.Samples++
	defer func() { r.stats.Reads += r.cache.reads }()
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
	for _, addr := range addrs {
		ts, err := r.readThread(addr)
		if err != nil {
			errs = append(errs, &ThreadError{addr, err})
			continue
		}
		t := Thread{ID: ts.id, NativeID: r.nativeID(&ts), OwnsGIL: addr == gil, Addr: addr}
		start := len(frames)
		frames, err = r.walk(&ts, opts.Locals, frames)
		t.Frames = frames[start:len(frames):len(frames)]
		switch {
		case errors.Is(err, ErrTruncated):
			t.Truncated = true
		case err != nil:
			errs = append(errs, &ThreadError{addr, err})
		}
		threads = append(threads, t)
	}
	r.framesHint = max(r.framesHint, len(frames)+16)
	if !opts.NoNames {
		r.threadNames(threads)
	}
	return threads, errors.Join(errs...)
}
