package procmem

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// checkPaused verifies that every thread of p is stopped in a tracing stop,
// is known to pp, and that nothing moves.
func checkPaused(t *testing.T, p *Process, pp *Paused, counters uint64) {
	t.Helper()
	states := threadStates(t, p)
	if len(states) < 4 {
		t.Errorf("only %d threads: %s", len(states), statesString(states))
	}
	for tid, st := range states {
		if st != 't' {
			t.Errorf("thread %d in state %c while paused (%s)", tid, st, statesString(states))
		}
		if pp != nil && !slices.Contains(pp.Threads(), tid) {
			t.Errorf("thread %d not among the paused %v", tid, pp.Threads())
		}
	}
	before := readCounters(t, p, counters)
	time.Sleep(30 * time.Millisecond)
	if after := readCounters(t, p, counters); after != before {
		t.Errorf("counters moved while paused: %v -> %v", before, after)
	}
}

// checkRunning verifies that no thread of p is left stopped and that every
// thread makes progress.
func checkRunning(t *testing.T, p *Process, counters uint64) {
	t.Helper()
	waitFor(t, "no thread in tracing stop", func() bool { return !anyTraced(threadStates(t, p)) })
	before := readCounters(t, p, counters)
	waitFor(t, "every thread to make progress", func() bool {
		after := readCounters(t, p, counters)
		for _, i := range spinSlots {
			if after[i] == before[i] {
				return false
			}
		}
		return true
	})
}

func TestPauseResume(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	counters := c.info["counters"]
	stater := p.ThreadStates()
	defer stater.Close()
	tids, err := p.Threads()
	if err != nil {
		t.Fatal(err)
	}
	checkRunning(t, p, counters)

	for round := range 3 {
		pp, err := p.Pause()
		if err != nil {
			t.Fatal(err)
		}
		checkPaused(t, p, pp, counters)
		// The cheap sampler view agrees.
		before := stater.Syscalls()
		for _, tid := range tids {
			if st, err := stater.State(tid); err != nil || st != 't' {
				t.Errorf("ThreadStater.State(%d) = %c, %v", tid, st, err)
			}
		}
		if n := stater.Syscalls() - before; round > 0 && n != uint64(len(tids)) {
			t.Errorf("%d syscalls for %d threads", n, len(tids))
		}
		// Resume is idempotent and can run on any goroutine.
		errc := make(chan error)
		go func() { errc <- pp.Resume() }()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if err := pp.Resume(); err != nil {
			t.Fatal(err)
		}
		checkRunning(t, p, counters)
		for _, tid := range tids {
			if st, err := stater.State(tid); err != nil || st == 't' {
				t.Errorf("after resume, ThreadStater.State(%d) = %c, %v", tid, st, err)
			}
		}
	}
}

// A goroutine that is its own tracer pauses and resumes on its thread;
// another goroutine cannot resume what it paused, and trying leaves the
// target paused for the owner to resume. After unlock, the shared tracer
// serves the goroutine again.
func TestLockTracer(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	counters := c.info["counters"]
	checkRunning(t, p, counters)

	unlock := LockTracer()
	pp, err := p.Pause()
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	if pp.tracer != unix.Gettid() {
		t.Errorf("paused by thread %d, want this goroutine's %d", pp.tracer, unix.Gettid())
	}
	checkPaused(t, p, pp, counters)
	errc := make(chan error)
	go func() { errc <- pp.Resume() }()
	if err := <-errc; err == nil {
		t.Error("Resume from another goroutine succeeded")
	}
	checkPaused(t, p, pp, counters)
	if err := pp.Resume(); err != nil {
		t.Error(err)
	}
	unlock()
	checkRunning(t, p, counters)

	pp, err = p.PauseThreads([]int{p.Pid()})
	if err != nil {
		t.Fatal(err)
	}
	if pp.tracer != int(tracer.tid.Load()) {
		t.Errorf("after unlock, paused by thread %d, want the shared tracer %d", pp.tracer, tracer.tid.Load())
	}
	if err := pp.Resume(); err != nil {
		t.Fatal(err)
	}
	checkRunning(t, p, counters)
}

// A signal sent while the target is paused stays pending and is handled
// once it runs again.
func TestPauseSignalWhilePaused(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	counters := c.info["counters"]
	pp, err := p.Pause()
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Resume()
	before := readCounters(t, p, counters)[usr1Slot]
	if err := syscall.Kill(c.pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	checkPaused(t, p, pp, counters)
	if err := pp.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGUSR1 handler", func() bool { return readCounters(t, p, counters)[usr1Slot] == before+1 })
	checkRunning(t, p, counters)
}

// A signal that arrives between PTRACE_SEIZE and the interrupt stops the
// thread in signal-delivery-stop; it must be passed on at detach.
func TestPauseReinjectsSignal(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	counters := c.info["counters"]
	before := readCounters(t, p, counters)[usr1Slot]
	testHookSeized = func(tid int) {
		if tid == c.pid {
			unix.Tgkill(c.pid, tid, syscall.SIGUSR1)
			time.Sleep(50 * time.Millisecond) // let the thread dequeue it
		}
	}
	pp, err := p.Pause()
	testHookSeized = nil
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Resume()
	var sig syscall.Signal
	for _, th := range pp.threads {
		if th.tid == c.pid {
			sig = th.sig
		}
	}
	if sig != syscall.SIGUSR1 {
		t.Errorf("main thread stopped with signal %v, want SIGUSR1", sig)
	}
	checkPaused(t, p, pp, counters)
	if err := pp.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGUSR1 handler", func() bool { return readCounters(t, p, counters)[usr1Slot] == before+1 })
	checkRunning(t, p, counters)
}

// Threads that start and end all the time are all caught.
func TestPauseThreadChurn(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), `
import json, threading
print(json.dumps({}), flush=True)
while True:
    ts = [threading.Thread(target=lambda: None) for _ in range(4)]
    for th in ts: th.start()
    for th in ts: th.join()
`)
	p := c.open(t)
	for range 50 {
		pp, err := p.Pause()
		if err != nil {
			t.Fatal(err)
		}
		for tid, st := range threadStates(t, p) {
			if st == 'Z' || st == 'X' {
				continue // exited before we could seize it
			}
			if st != 't' || !slices.Contains(pp.Threads(), tid) {
				t.Errorf("thread %d in state %c, paused: %v", tid, st, pp.Threads())
			}
		}
		if err := pp.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "no thread in tracing stop", func() bool { return !anyTraced(threadStates(t, p)) })
}

func TestPauseErrors(t *testing.T) {
	self, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if pp, err := self.Pause(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("pausing ourselves = %v, %v; want EPERM", pp, err)
	}
	// Nothing must stay attached after the failure.
	if anyTraced(threadStates(t, self)) {
		t.Error("a thread of ours is stopped")
	}

	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	pp, err := p.Pause()
	if err != nil {
		t.Fatal(err)
	}
	defer pp.Resume()
	if pp2, err := p.Pause(); !errors.Is(err, syscall.EPERM) {
		t.Errorf("second Pause = %v, %v; want EPERM", pp2, err)
	} else if se := (*SeizeError)(nil); !errors.As(err, &se) || se.Tracer == 0 || errors.Is(err, ErrPtraceDenied) {
		// Traced by another: not a denial of ptrace.
		t.Errorf("second Pause: %v (%#v); want a SeizeError naming the tracer", err, se)
	}
	checkPaused(t, p, pp, c.info["counters"])
	st, err := p.Status()
	if err != nil || !isThreadOf(os.Getpid(), st.TracerPid) {
		t.Errorf("TracerPid = %d, %v; want a thread of ours", st.TracerPid, err)
	}
}

// isThreadOf reports whether tid is a thread of process pid. TracerPid is
// the id of the tracing thread, not of its process.
func isThreadOf(pid, tid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, tid))
	return err == nil
}

const helperEnv = "PYPROF_PROCMEM_HELPER"

// TestHelperProcess is not a test: the tests below run the test binary as a
// child that pauses a target and then dies in various ways.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	pid, _ := strconv.Atoi(os.Getenv(helperEnv + "_PID"))
	sigs := make(chan os.Signal, 1)
	if mode == "signal" {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	}
	p, err := Open(pid)
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	pp, err := p.Pause()
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	fmt.Println("paused")
	switch mode {
	case "panic":
		bufio.NewReader(os.Stdin).ReadString('\n')
		panic("helper panics with its target paused")
	case "signal":
		<-sigs
		if err := pp.Resume(); err != nil {
			fmt.Println(err)
			os.Exit(4)
		}
		fmt.Println("resumed")
		os.Exit(0)
	default:
		time.Sleep(time.Hour)
	}
}

// However the pausing process ends, the target runs on.
func TestPauseSurvivesTracerDeath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   string
		end    func(cmd *exec.Cmd, stdin *os.File) error
		exitOK bool
	}{
		{"panic", "panic", func(_ *exec.Cmd, stdin *os.File) error {
			_, err := stdin.WriteString("go\n")
			return err
		}, false},
		{"SIGKILL", "block", func(cmd *exec.Cmd, _ *os.File) error { return cmd.Process.Kill() }, false},
		{"SIGTERM", "signal", func(cmd *exec.Cmd, _ *os.File) error { return cmd.Process.Signal(syscall.SIGTERM) }, true},
		{"SIGINT", "signal", func(cmd *exec.Cmd, _ *os.File) error { return cmd.Process.Signal(syscall.SIGINT) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startPython(t, needFile(t, systemPython), spinScript)
			p := c.open(t)
			counters := c.info["counters"]

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode, fmt.Sprintf("%s_PID=%d", helperEnv, c.pid))
			stdinR, stdinW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdinW.Close()
			cmd.Stdin = stdinR
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			stdinR.Close()
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			out := bufio.NewScanner(stdout)
			if !out.Scan() || out.Text() != "paused" {
				t.Fatalf("helper said %q", out.Text())
			}
			checkPaused(t, p, nil, counters)
			if st, err := p.Status(); err != nil || !isThreadOf(cmd.Process.Pid, st.TracerPid) {
				t.Errorf("TracerPid = %d, %v; want a thread of the helper %d", st.TracerPid, err, cmd.Process.Pid)
			}

			if err := tc.end(cmd, stdinW); err != nil {
				t.Fatal(err)
			}
			var rest []string
			for out.Scan() {
				rest = append(rest, out.Text())
			}
			err = cmd.Wait()
			if (err == nil) != tc.exitOK {
				t.Errorf("helper exited with %v; output after pausing: %q", err, rest)
			}
			if tc.exitOK && !slices.Contains(rest, "resumed") {
				t.Errorf("helper did not resume: %q", rest)
			}
			checkRunning(t, p, counters)
			if st, err := p.Status(); err != nil || st.TracerPid != 0 {
				t.Errorf("TracerPid = %d, %v; want 0", st.TracerPid, err)
			}
		})
	}
}

func BenchmarkPauseResume(b *testing.B) {
	c := startPython(b, needFile(b, systemPython), spinScript)
	p := c.open(b)
	for b.Loop() {
		pp, err := p.Pause()
		if err != nil {
			b.Fatal(err)
		}
		if err := pp.Resume(); err != nil {
			b.Fatal(err)
		}
	}
}

// A target killed while paused must not make Resume hang or fail, whether
// or not we are also its parent.
func TestPauseTargetKilled(t *testing.T) {
	for _, viaShell := range []bool{false, true} {
		t.Run(fmt.Sprint("grandchild=", viaShell), func(t *testing.T) {
			c := startPythonVia(t, needFile(t, systemPython), spinScript, viaShell)
			p := c.open(t)
			pp, err := p.Pause()
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- pp.Resume() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Resume: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Resume hangs")
			}
			waitFor(t, "the target to go away", func() bool {
				st, err := p.Status()
				return errors.Is(err, syscall.ESRCH) || (err == nil && st.State == 'Z')
			})
		})
	}
}

// A target that exits on its own while being paused over and over never
// makes Pause hang.
func TestPauseTargetExiting(t *testing.T) {
	for round := range 5 {
		c := startPythonVia(t, needFile(t, systemPython), `
import json, os, threading, time
def spin():
    while True: pass
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
print(json.dumps({"pid": os.getpid()}), flush=True)
time.sleep(0.05 + 0.02 * `+strconv.Itoa(round)+`)
os._exit(0)
`, true)
		p := c.open(t)
		deadline := time.Now().Add(20 * time.Second)
		for {
			pp, err := p.Pause()
			if err != nil {
				if !errors.Is(err, syscall.ESRCH) {
					t.Errorf("Pause: %v", err)
				}
				break
			}
			if err := pp.Resume(); err != nil {
				t.Errorf("Resume: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("target does not exit")
			}
		}
	}
}

// A process stopped by SIGSTOP is still stopped after a pause and resume.
func TestPauseStoppedTarget(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	if err := syscall.Kill(c.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	allIn := func(want byte) func() bool {
		return func() bool {
			for _, st := range threadStates(t, p) {
				if st != want {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "job-control stop", allIn('T'))
	pp, err := p.Pause()
	if err != nil {
		t.Fatal(err)
	}
	checkPaused(t, p, pp, c.info["counters"])
	if err := pp.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job-control stop again", allIn('T'))
	time.Sleep(20 * time.Millisecond)
	if !allIn('T')() {
		t.Errorf("threads left the stop: %s", statesString(threadStates(t, p)))
	}
	if err := syscall.Kill(c.pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	checkRunning(t, p, c.info["counters"])
}

// PauseThreads stops the threads it is given and no others, and resumes
// them as Pause does; threads that are gone leave ESRCH.
func TestPauseThreads(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), spinScript)
	p := c.open(t)
	counters := c.info["counters"]
	tids, err := p.Threads()
	if err != nil {
		t.Fatal(err)
	}
	checkRunning(t, p, counters)
	for _, tc := range []struct {
		name string
		stop []int
	}{
		{"one", tids[1:2]},
		{"two", tids[2:4]},
		{"with a gone thread", []int{tids[1], 1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pp, err := p.PauseThreads(tc.stop)
			if err != nil {
				t.Fatal(err)
			}
			for tid, st := range threadStates(t, p) {
				if want := slices.Contains(tc.stop, tid); (st == 't') != want {
					t.Errorf("thread %d in state %c, stopped wanted: %v", tid, st, want)
				}
			}
			if got := pp.Threads(); len(got) != len(slices.DeleteFunc(slices.Clone(tc.stop), func(tid int) bool { return tid == 1<<30 })) {
				t.Errorf("paused %v, asked for %v", got, tc.stop)
			}
			if err := pp.Resume(); err != nil {
				t.Fatal(err)
			}
			checkRunning(t, p, counters)
		})
	}
	if _, err := p.PauseThreads([]int{1 << 30}); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pausing only a gone thread: %v, want ESRCH", err)
	}
}

// BenchmarkPauseLeader pauses only the main thread, as the sampler does
// when it holds the GIL, from the shared tracer thread and from a
// goroutine that is its own tracer; cpu-µs/op is this program's CPU.
func BenchmarkPauseLeader(b *testing.B) {
	c := startPython(b, needFile(b, systemPython), spinScript)
	p := c.open(b)
	for _, bc := range []struct {
		name string
		lock bool
	}{{"shared", false}, {"own", true}} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.lock {
				defer LockTracer()()
			}
			var r0, r1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			for b.Loop() {
				pp, err := p.PauseThreads([]int{p.Pid()})
				if err != nil {
					b.Fatal(err)
				}
				if err := pp.Resume(); err != nil {
					b.Fatal(err)
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
			b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

// A process we started and pause over and over keeps its exit status for
// its parent's wait: pyprof launches the programs it profiles, and exits
// with their status, so being their tracer must not collect it.
func TestPauseLeavesExitStatusToParent(t *testing.T) {
	py := needFile(t, systemPython)
	for _, tc := range []struct {
		name, exit, want string
	}{
		{"exit 7", "os._exit(7)", "exit status 7"},
		{"SIGKILL", "os.kill(os.getpid(), signal.SIGKILL)", "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 10 {
				cmd := exec.Command(py, "-c", fmt.Sprintf(`
import os, signal, threading, time
def spin():
    while True: pass
threading.Thread(target=spin, daemon=True).start()
time.sleep(%g)
%s
`, 0.05+0.01*float64(round), tc.exit))
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				p, err := Open(cmd.Process.Pid)
				if err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					pp, err := p.Pause()
					if err != nil {
						if !errors.Is(err, syscall.ESRCH) {
							t.Errorf("Pause: %v", err)
						}
						break
					}
					if err := pp.Resume(); err != nil {
						t.Errorf("Resume: %v", err)
					}
				}
				p.Close()
				if err := cmd.Wait(); err == nil || err.Error() != tc.want {
					t.Fatalf("round %d: the parent's wait says %v, want %q", round, err, tc.want)
				}
			}
		})
	}
}

// parkScript parks its main thread on a lock, in a futex wait, for good.
const parkScript = `
import _thread, json, os
lock = _thread.allocate_lock()
lock.acquire()
print(json.dumps({"pid": os.getpid()}), flush=True)
lock.acquire()
`

// A thread parked in a futex is waiting at every pause, also when the
// pauses come back to back: each resume takes it out of its wait for the
// kernel to restart the call, and the next pause may stop it before it is
// back in it, backed up to the system call instruction (see
// StoppedInSyscall), as a sampler running late pauses a process again at
// once.
func TestStoppedInSyscallBackToBack(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), parkScript)
	p := c.open(t)
	defer LockTracer()()
	const pauses = 3000
	restarting := 0
	for range pauses {
		pp, err := p.Pause()
		if err != nil {
			t.Fatal(err)
		}
		waiting, err := p.StoppedInSyscall(c.pid)
		nr, _, serr := p.ThreadSyscall(c.pid)
		if rerr := pp.Resume(); rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		if !waiting {
			t.Fatalf("the parked thread was running when stopped (system call %d)", nr)
		}
		if nr == -1 {
			restarting++
		}
	}
	t.Logf("%d of %d pauses stopped the thread as it restarted its wait", restarting, pauses)
}
