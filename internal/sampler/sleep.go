package sampler

import (
	"context"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxNap bounds one sleep of sleepUntil, and so how long a cancellation
// can wait to be seen.
const maxNap = 20 * time.Millisecond

// sleepUntil waits until next, or until ctx is done, which it reports by
// returning false.
//
// A profiler wakes a hundred times a second to do a few microseconds of
// work, and at that rate the Go runtime's way of sleeping costs more than
// the work: a timer parks the goroutine, the thread waits in epoll, wakes
// another thread to run the goroutine, and sysmon polls every few dozen
// microseconds meanwhile (measured here: 90-140 µs of CPU per wakeup, 13
// syscalls per sample). A nanosleep made as a raw syscall keeps the
// goroutine on its thread and costs about half as much. The scheduler
// then sees a goroutine that never yields, so it yields after each nap,
// which keeps sysmon from preempting it with a signal; and naps are short
// enough that a signal's goroutine (Ctrl-C), which may need this P, runs
// soon.
func sleepUntil(ctx context.Context, next time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(next)
		if d <= 0 {
			return true
		}
		ts := unix.NsecToTimespec(int64(min(d, maxNap)))
		// Interrupted by a signal (EINTR), it returns early; the loop
		// sleeps what remains.
		unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		runtime.Gosched()
	}
}
