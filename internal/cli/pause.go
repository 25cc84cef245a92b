package cli

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/procmem"
)

// What the commands say when ptrace refuses to pause a target whose memory
// they can read: a seccomp filter that denies ptrace (as in a locked-down
// pod) while process_vm_readv stays allowed, or another program tracing
// the target.

// pauseRefusal says why a pause was refused, for a message's parentheses.
func pauseRefusal(err error) string {
	var se *procmem.SeizeError
	switch {
	case !errors.As(err, &se):
		return err.Error()
	case se.Tracer != 0:
		return fmt.Sprintf("another program traces it: TracerPid %d", se.Tracer)
	}
	return "ptrace: " + se.Err.Error()
}

// unpausedNote is what record and top say, once, when the default mode
// finds ptrace denied.
func unpausedNote(pid int, err error) string {
	return fmt.Sprintf("pyprof: cannot pause process %d (%s); sampling without pausing from now on, so stacks that change while being read are dropped and counted as errors", pid, pauseRefusal(err))
}

// blockingDeniedError is --blocking's failure when ptrace is denied. It
// explains itself completely and unwraps to nothing, so that it is not
// taken for a failure to read the target, which gets capability advice.
type blockingDeniedError struct{ err error }

func (e *blockingDeniedError) Error() string {
	return fmt.Sprintf("--blocking needs ptrace to pause the target, and ptrace was refused (%v); run without --blocking, which pauses only when needed and otherwise drops torn stacks", e.err)
}

// samplingError is what record and top report for the error that ended
// sampling.
func samplingError(err error) error {
	if errors.Is(err, procmem.ErrPtraceDenied) {
		return &blockingDeniedError{err}
	}
	return err
}
