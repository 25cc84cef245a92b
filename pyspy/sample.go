package pyspy

import (
	"encoding/binary"
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
	// Verify checks, after reading, that no thread's stack moved while it
	// was read, at the cost of one more read. A running target's stack
	// can change between the reads of one sample (even within one
	// process_vm_readv, which copies its regions one after another); a
	// stack read across such a change is torn, and is reported as
	// ErrTorn so that the caller can sample again.
	Verify bool
}

// ErrTorn is the error of a thread whose stack changed while it was read.
var ErrTorn = errors.New("stack changed while being read")

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
	var read []tstate
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
		if opts.Verify && err == nil && ts.frame != 0 {
			read = append(read, ts)
		}
	}
	if len(read) > 0 {
		errs = append(errs, r.verify(read)...)
	}
	r.framesHint = max(r.framesHint, len(frames)+16)
	if !opts.NoNames {
		r.threadNames(threads)
	}
	return threads, errors.Join(errs...)
}

// verify reads again, in one batch and bypassing the sample cache, the
// links a torn stack would break: where each thread's innermost frame is,
// that frame's code object and caller, and the instruction the caller is
// suspended at. The innermost frame itself runs on, but while these four
// hold, the stack below it has not moved. Comparing the caller link and
// the code matters before 3.11, where frame objects are recycled in LIFO
// order: a frame read a moment later can sit at the same address as the
// one it replaced.
func (r *Reader) verify(ts []tstate) []error {
	const per = 4
	addrs := make([]uint64, 0, per*len(ts))
	bufs := make([][]byte, 0, per*len(ts))
	codeOff, backOff, instrOff, instrLen := r.l.IFrame.Code, r.l.IFrame.Previous, r.l.IFrame.Instr, 8
	if r.l.IFrame.Code < 0 {
		codeOff, backOff, instrOff, instrLen = r.l.Frame.Code, r.l.Frame.Back, r.l.Frame.Lasti, 4
	}
	// One backing array for every destination: this runs on every
	// sample.
	space := make([]byte, (24+instrLen)*len(ts))
	for i, t := range ts {
		instrAt := t.frame + uint64(instrOff)
		if t.caller != 0 {
			instrAt = t.caller + uint64(instrOff)
		}
		addrs = append(addrs, t.framePtr, t.frame+uint64(codeOff), t.frame+uint64(backOff), instrAt)
		b := space[(24+instrLen)*i:]
		bufs = append(bufs, b[0:8:8], b[8:16:16], b[16:24:24], b[24:24+instrLen:24+instrLen])
	}
	var err error
	if b, ok := r.mem.(BatchReader); ok {
		err = b.ReadBatch(addrs, bufs)
	} else {
		for i := range addrs {
			if _, e := r.mem.ReadAt(bufs[i], int64(addrs[i])); e != nil && err == nil {
				err = e
			}
		}
	}
	r.cache.reads++
	var errs []error
	for i, t := range ts {
		b := bufs[per*i:]
		frame, code, caller := le64(b[0]), r.untag(le64(b[1])), le64(b[2])
		var instr uint64
		if instrLen == 8 {
			instr = le64(b[3])
		} else {
			instr = uint64(binary.LittleEndian.Uint32(b[3]))
		}
		if err != nil || frame != t.frame || code != t.code || caller != t.caller || t.caller != 0 && instr != t.instr {
			errs = append(errs, &ThreadError{t.addr, ErrTorn})
		}
	}
	return errs
}
