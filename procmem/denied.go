package procmem

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrPtraceDenied is matched by the error of a Pause or PauseThreads when
// ptrace itself is denied to this program: PTRACE_SEIZE of a live thread
// that nothing traces failed with EPERM or EACCES, twice. A seccomp filter
// does this (a locked-down container's profile), as can a security module.
// Reading memory may still be allowed, process_vm_readv being another
// system call, so a caller can go on without pausing; pausing again will
// fail the same way.
var ErrPtraceDenied = errors.New("ptrace denied")

// SeizeError is the error of a Pause or PauseThreads whose PTRACE_SEIZE of
// a live thread was refused (EPERM or EACCES). Either another program
// traces the thread (Tracer), which may end at any moment, or ptrace is
// denied to this program, and the error matches ErrPtraceDenied.
type SeizeError struct {
	Tid int
	// Tracer is the thread tracing Tid, as TracerPid in its status gives
	// it: 0 if none.
	Tracer int
	Err    error // ptrace's errno
}

func (e *SeizeError) Error() string {
	if e.Tracer != 0 {
		return fmt.Sprintf("seize thread %d: traced by thread %d: %v", e.Tid, e.Tracer, e.Err)
	}
	return fmt.Sprintf("seize thread %d: %v", e.Tid, e.Err)
}

func (e *SeizeError) Unwrap() error { return e.Err }

// Is matches ErrPtraceDenied when nothing else traces the thread.
func (e *SeizeError) Is(target error) bool { return target == ErrPtraceDenied && e.Tracer == 0 }

// refused examines a PTRACE_SEIZE of the live thread tid that failed with
// err, a refusal (see isRefusal), on the tracer thread. A tracer that
// detached between the refusal and the check of TracerPid would pass for a
// denial of ptrace, which a caller may take as final, so the thread is
// seized again before that is concluded: seized reports that this attempt
// succeeded, and neither seized nor an error that the thread has exited
// meanwhile.
func (p *Process) refused(tid int, err error) (seized bool, _ error) {
	if p.pid == os.Getpid() {
		// The kernel never lets a process trace its own threads.
		return false, err
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false, err
	}
	for retried := false; ; retried = true {
		if st, serr := p.ThreadStatus(tid); serr == nil && st.TracerPid != 0 {
			return false, &SeizeError{Tid: tid, Tracer: st.TracerPid, Err: errno}
		}
		if retried {
			return false, &SeizeError{Tid: tid, Err: errno}
		}
		err := seize(tid)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.ESRCH) || p.threadGone(tid):
			return false, nil
		case !isRefusal(err):
			return false, err
		}
	}
}

func isRefusal(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}
