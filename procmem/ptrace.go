package procmem

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux accepts ptrace requests for a tracee only from the thread that
// attached to it, and Go moves goroutines between threads, so every request
// runs on one goroutine locked to its thread for the life of the program
// (the pattern of delve's pkg/proc/native).
var tracer struct {
	once sync.Once
	reqs chan func()
	// tid is the thread serving reqs.
	tid atomic.Int64
	// here is the thread of a goroutine in LockTracer, 0 if none.
	here atomic.Int64
}

// onTracer runs fn on the tracer thread and waits for it, and returns that
// thread's id. A goroutine in LockTracer is its own tracer.
func onTracer(fn func()) int {
	if here := tracer.here.Load(); here != 0 && int64(unix.Gettid()) == here {
		fn()
		return int(here)
	}
	tracer.once.Do(func() {
		tracer.reqs = make(chan func())
		started := make(chan struct{})
		go serveTracer(tracer.reqs, started)
		<-started
	})
	done := make(chan struct{})
	tracer.reqs <- func() {
		defer close(done)
		fn()
	}
	<-done
	return int(tracer.tid.Load())
}

func serveTracer(reqs <-chan func(), started chan<- struct{}) {
	// Never unlocked: if the goroutine returned, its thread would exit
	// and the kernel would detach every tracee.
	runtime.LockOSThread()
	tracer.tid.Store(int64(unix.Gettid()))
	close(started)
	for fn := range reqs {
		fn()
	}
}

// LockTracer makes the calling goroutine its own tracer until unlock is
// called: it is locked to its thread, and the Pause, PauseThreads and
// Resume it calls run there rather than on the shared tracer thread.
//
// Handing each request to the tracer thread and back costs two thread
// wakeups, which on a virtual machine cost more CPU than the pause itself
// (about 50 µs each here), and keep the target stopped while they happen.
// A sampler that pauses a thread for one sample calls LockTracer around
// it, and must resume what it paused before unlock. Only one goroutine at
// a time can be its own tracer; others keep using the shared thread.
func LockTracer() (unlock func()) {
	runtime.LockOSThread()
	tid := int64(unix.Gettid())
	if !tracer.here.CompareAndSwap(0, tid) {
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		tracer.here.CompareAndSwap(tid, 0)
		runtime.UnlockOSThread()
	}
}

// testHookSeized, when set by a test, runs on the tracer thread between
// PTRACE_SEIZE and PTRACE_INTERRUPT of each thread, the one window in which
// a signal can put a thread in signal-delivery-stop.
var testHookSeized func(tid int)

// Paused is a process whose threads are all stopped under ptrace. Call
// Resume when done; if this program dies first, the kernel detaches and the
// process runs on.
type Paused struct {
	pid int
	// tracer is the thread that seized the threads, the only one the
	// kernel lets detach them.
	tracer  int
	mu      sync.Mutex
	threads []stoppedThread
	resumed bool
}

type stoppedThread struct {
	tid int
	// sig is a signal that was being delivered when the thread stopped,
	// which must be passed on at detach or the thread would never see it.
	sig syscall.Signal
}

// Pause stops every thread of the process, so that its memory can be read in
// a consistent state.
//
// Threads are attached with PTRACE_SEIZE and stopped with PTRACE_INTERRUPT,
// never with SIGSTOP: no stop signal is left pending if this program dies
// while the target is paused. Threads started during the attach are caught
// by listing /proc/PID/task again until no new thread appears once all known
// ones are stopped; threads that exit meanwhile are skipped. On error every
// thread already attached is released.
//
// A thread in uninterruptible sleep (state D) stops only when the sleep
// ends, and Pause waits for it.
func (p *Process) Pause() (*Paused, error) {
	var pp *Paused
	var err error
	tid := onTracer(func() { pp, err = p.pause() })
	if pp != nil {
		pp.tracer = tid
	}
	return pp, err
}

// PauseThreads stops only the threads tids of the process, with the same
// guarantees as Pause. A Python thread that holds the GIL is the only one
// that can change any Python stack, so stopping it alone freezes them all
// at a fraction of the cost of stopping every thread: one thread stops in
// about 60 µs here, a process with 40 threads in several hundred. Threads
// that have exited are skipped; if none is left, the error is ESRCH.
func (p *Process) PauseThreads(tids []int) (*Paused, error) {
	var pp *Paused
	var err error
	tid := onTracer(func() { pp, err = p.pauseThreads(tids) })
	if pp != nil {
		pp.tracer = tid
	}
	return pp, err
}

func (p *Process) pauseThreads(tids []int) (*Paused, error) {
	pp := &Paused{pid: p.pid}
	fresh, err := p.seizeAll(tids, map[int]bool{})
	if werr := pp.waitStops(fresh); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		pp.detachAll()
		return nil, err
	}
	if len(pp.threads) == 0 {
		return nil, fmt.Errorf("pause threads %v of process %d: %w", tids, p.pid, syscall.ESRCH)
	}
	slices.SortFunc(pp.threads, func(a, b stoppedThread) int { return a.tid - b.tid })
	return pp, nil
}

// seizeAll seizes and interrupts the threads in tids not yet seen, marking
// them seen, and returns those it seized. On error it returns the threads
// seized so far, which must still be waited for: a thread can only be
// detached once it has stopped.
func (p *Process) seizeAll(tids []int, seen map[int]bool) ([]int, error) {
	var fresh []int
	for _, tid := range tids {
		if seen[tid] {
			continue
		}
		seen[tid] = true
		err := seize(tid)
		switch {
		case err == nil:
			fresh = append(fresh, tid)
		case errors.Is(err, syscall.ESRCH):
			// Exited since the listing.
		case errors.Is(err, syscall.EPERM) && p.threadGone(tid):
			// A zombie thread cannot be traced.
		case isRefusal(err):
			seized, err := p.refused(tid, err)
			if err != nil {
				return fresh, err
			}
			if seized {
				fresh = append(fresh, tid)
			}
		default:
			return fresh, err
		}
	}
	return fresh, nil
}

func (p *Process) pause() (*Paused, error) {
	pp := &Paused{pid: p.pid}
	seen := make(map[int]bool)
	fail := func(err error) (*Paused, error) {
		pp.detachAll()
		return nil, err
	}
	for {
		tids, err := p.Threads()
		if err != nil {
			return fail(fmt.Errorf("pause: %w", err))
		}
		fresh, serr := p.seizeAll(tids, seen)
		// Threads seized must be waited for even on failure: a
		// thread can only be detached once it has stopped.
		if err := pp.waitStops(fresh); err != nil && serr == nil {
			serr = err
		}
		if serr != nil {
			return fail(serr)
		}
		if len(fresh) == 0 {
			break
		}
	}
	if len(pp.threads) == 0 {
		return nil, fmt.Errorf("pause process %d: %w", p.pid, syscall.ESRCH)
	}
	slices.SortFunc(pp.threads, func(a, b stoppedThread) int { return a.tid - b.tid })
	return pp, nil
}

func seize(tid int) error {
	// No options: no clone, exec or exit events to handle, and no
	// PTRACE_O_EXITKILL, so that our death releases the target.
	if err := unix.PtraceSeize(tid); err != nil {
		return fmt.Errorf("seize thread %d: %w", tid, err)
	}
	if testHookSeized != nil {
		testHookSeized(tid)
	}
	if err := unix.PtraceInterrupt(tid); err != nil && err != syscall.ESRCH {
		// ESRCH: the thread is exiting; waitStop reaps it.
		return fmt.Errorf("interrupt thread %d: %w", tid, err)
	}
	return nil
}

type waitResult int

const (
	waitPending waitResult = iota // WNOHANG and no news
	waitStopped
	waitGone // exited, or no longer ours
)

// waitStop collects the next report of the seized thread tid of process
// pid. flags is 0 or WNOHANG.
//
// The leader's reports are looked at before they are collected: when
// pyprof is both the tracer and the parent of the process (a program it
// launched), the leader's exit report is also the process's exit status,
// which belongs to the parent's own wait (os/exec's), and collecting it
// here would leave that wait with ECHILD. Other threads' exits, and the
// exit of a process pyprof did not start, are only ever reported to the
// tracer, which must collect them.
func waitStop(pid, tid, flags int) (stoppedThread, waitResult, error) {
	if tid == pid {
		return waitLeader(pid, flags)
	}
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(tid, &ws, unix.WALL|flags, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			return stoppedThread{}, waitGone, nil
		case err != nil:
			return stoppedThread{}, waitGone, fmt.Errorf("wait for thread %d: %w", tid, err)
		case wpid == 0:
			return stoppedThread{}, waitPending, nil
		case ws.Exited() || ws.Signaled():
			return stoppedThread{}, waitGone, nil
		case !ws.Stopped():
			continue
		}
		return stopped(tid, uint32(ws)>>8), waitStopped, nil
	}
}

// stopped describes a thread in a ptrace stop from its stop code: the
// stop signal in the low byte, a PTRACE_EVENT in the next.
func stopped(tid int, code uint32) stoppedThread {
	th := stoppedThread{tid: tid}
	// PTRACE_EVENT_STOP is our interrupt, or a group-stop that the
	// detach will restore by itself. Anything else is a
	// signal-delivery-stop: the thread stays stopped there and gets the
	// signal back when we detach.
	if code>>8 != unix.PTRACE_EVENT_STOP {
		th.sig = syscall.Signal(code & 0xff)
	}
	return th
}

// waitLeader is waitStop for the thread-group leader, with waitid: a
// report is peeked at (WNOWAIT) before it is collected, and a stop is
// collected with WSTOPPED alone, so that an exit that came in between (a
// SIGKILL) cannot be collected in its place.
func waitLeader(pid, flags int) (stoppedThread, waitResult, error) {
	for {
		r, err := waitid(pid, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT|unix.WALL|flags)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			return stoppedThread{}, waitGone, nil
		case err != nil:
			return stoppedThread{}, waitGone, fmt.Errorf("wait for thread %d: %w", pid, err)
		case r.Pid == 0:
			return stoppedThread{}, waitPending, nil
		case r.exited():
			if !ownChild(pid) {
				// Collected, or the process would stay a zombie
				// of ours; its parent is told once we have.
				waitid(pid, unix.WEXITED|unix.WALL|unix.WNOHANG)
			}
			return stoppedThread{}, waitGone, nil
		}
		r, err = waitid(pid, unix.WSTOPPED|unix.WALL|unix.WNOHANG)
		if err != nil && err != syscall.EINTR {
			return stoppedThread{}, waitGone, fmt.Errorf("wait for thread %d: %w", pid, err)
		}
		if err == nil && r.Pid != 0 {
			return stopped(pid, uint32(r.Status)), waitStopped, nil
		}
		// Killed since the peek: look again.
	}
}

// childInfo is the part of a SIGCHLD siginfo_t that waitid fills in.
type childInfo struct {
	Code   int32 // CLD_*
	Pid    int32 // 0 under WNOHANG when nothing is to report
	Status int32 // exit status, killing signal, or stop code
}

// CLD_* codes of a SIGCHLD siginfo.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

func (r childInfo) exited() bool {
	return r.Code == cldExited || r.Code == cldKilled || r.Code == cldDumped
}

// sigchldFields lays out siginfo_t for SIGCHLD: three ints, then a union
// aligned as a pointer, which starts with the pid, the uid and the status.
type sigchldFields struct {
	signo, errno, code int32
	_                  [unsafe.Sizeof(uintptr(0)) - 4]byte
	pid                int32
	uid                uint32
	status             int32
}

func waitid(pid, options int) (childInfo, error) {
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, options, nil); err != nil {
		return childInfo{}, err
	}
	f := (*sigchldFields)(unsafe.Pointer(&info))
	return childInfo{Code: f.code, Pid: f.pid, Status: f.status}, nil
}

// ownChild reports whether pid is a child of this process: then its exit
// status is its parent's to collect, not the tracer's. Parenthood is the
// kernel's, so it is read from our own /proc, whatever FS the process was
// opened in.
func ownChild(pid int) bool {
	st, err := DefaultFS.Stat(pid)
	return err == nil && st.PPid == os.Getpid()
}

// waitStops waits for the seized threads tids to stop and adds them to
// pp.threads; threads that exit instead are dropped.
//
// Other threads are waited for first, with a blocking wait4: a thread other
// than the leader is reported as soon as it stops or exits. The leader is
// different. If the process exits meanwhile, its exit is reported only once
// all other threads are reaped, and the ones we trace can only be reaped by
// us, so a blocking wait for it could hang forever; it is polled instead,
// reaping the others between polls.
func (pp *Paused) waitStops(tids []int) error {
	var errs []error
	leader := false
	for _, tid := range tids {
		if tid == pp.pid {
			leader = true
			continue
		}
		th, res, err := waitStop(pp.pid, tid, 0)
		if err != nil {
			errs = append(errs, err)
		}
		if res == waitStopped {
			pp.threads = append(pp.threads, th)
		}
	}
	spinUntil := time.Now().Add(spinFor)
	for delay := time.Duration(0); leader; {
		if time.Now().After(spinUntil) {
			delay = min(max(2*delay, spinFor), time.Millisecond)
		}
		th, res, err := waitStop(pp.pid, pp.pid, unix.WNOHANG)
		switch {
		case err != nil:
			errs = append(errs, err)
			leader = false
		case res == waitStopped:
			pp.threads = append(pp.threads, th)
			leader = false
		case res == waitGone:
			leader = false
		default:
			pp.reapExited()
			nap(delay)
		}
	}
	return errors.Join(errs...)
}

// spinFor is how long waitStops polls a stopping leader without sleeping:
// a thread stops within tens of microseconds of PTRACE_INTERRUPT, while the
// shortest sleep lasts the 50 µs of timer slack besides, all of it time the
// target's other threads may spend waiting for the one being stopped.
const spinFor = 200 * time.Microsecond

// nap waits d without the Go scheduler, whose timers would hand the
// locked tracer thread's P to another thread and back: a yield while the
// wait is shorter than spinFor, a raw nanosleep after.
func nap(d time.Duration) {
	if d < spinFor {
		unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		return
	}
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// reapExited drops and reaps the stopped threads that have since been
// killed.
func (pp *Paused) reapExited() {
	pp.threads = slices.DeleteFunc(pp.threads, func(th stoppedThread) bool {
		_, res, _ := waitStop(pp.pid, th.tid, unix.WNOHANG)
		return res == waitGone
	})
}

// threadGone reports whether tid has exited or is a zombie.
func (p *Process) threadGone(tid int) bool {
	st, err := p.ThreadStat(tid)
	return err != nil || st == 'Z' || st == 'X'
}

// Pid returns the id of the paused process.
func (pp *Paused) Pid() int { return pp.pid }

// Threads returns the ids of the stopped threads, sorted.
func (pp *Paused) Threads() []int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	tids := make([]int, len(pp.threads))
	for i, th := range pp.threads {
		tids[i] = th.tid
	}
	return tids
}

// Resume lets the process run again. It may be called more than once;
// calls after the first do nothing. It may be called from any goroutine,
// except that what a goroutine in LockTracer paused only it can resume.
func (pp *Paused) Resume() error {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.resumed {
		return nil
	}
	if tid := tracerFor(); tid != pp.tracer {
		return fmt.Errorf("resume process %d: paused by thread %d, not %d", pp.pid, pp.tracer, tid)
	}
	var err error
	onTracer(func() { err = pp.detachAll() })
	pp.resumed = true
	return err
}

// tracerFor returns the thread onTracer would run the caller's requests
// on: its own in LockTracer, else the shared one (0 before it started).
func tracerFor() int {
	if here := tracer.here.Load(); here != 0 && int64(unix.Gettid()) == here {
		return int(here)
	}
	return int(tracer.tid.Load())
}

// detachAll runs on the tracer thread.
func (pp *Paused) detachAll() error {
	var errs []error
	var dead []int
	for _, th := range pp.threads {
		_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(th.tid), 0, uintptr(th.sig), 0, 0)
		switch e {
		case 0:
		case syscall.ESRCH:
			// A stopped tracee that is no longer there was killed
			// (SIGKILL works on stopped threads).
			dead = append(dead, th.tid)
		default:
			errs = append(errs, fmt.Errorf("detach thread %d: %w", th.tid, e))
		}
	}
	reap(pp.pid, dead)
	return errors.Join(errs...)
}

// reap collects the exit of killed tracees, or they would stay zombies
// attached to us. It polls, because the leader is reported only after the
// others (see waitStops), and gives up after a while rather than hang: a
// zombie left behind goes away when we exit.
func reap(pid int, tids []int) {
	deadline := time.Now().Add(time.Second)
	for delay := 10 * time.Microsecond; len(tids) > 0; delay = min(2*delay, 10*time.Millisecond) {
		tids = slices.DeleteFunc(tids, func(tid int) bool {
			_, res, _ := waitStop(pid, tid, unix.WNOHANG)
			return res == waitGone
		})
		if len(tids) == 0 || time.Now().After(deadline) {
			return
		}
		nap(delay)
	}
}
