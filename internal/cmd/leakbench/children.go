package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Every child (targets, gunicorn and its workers, profilers, wrk) runs in
// a process group of its own, registered here until it has exited; the
// registered groups get SIGKILL when leakbench ends, fails or is
// interrupted, and Pdeathsig kills the children if leakbench itself dies.
// A group is unregistered before its leader is reaped, so a group id that
// is killed can never be a reused one.
var children = struct {
	sync.Mutex
	pgids   map[int]*child
	cleanup []func()
}{pgids: map[int]*child{}}

// child is a started process whose exit is awaited in the background.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
	err  error         // from Wait
	// cpu is the user and system time of the whole process, read from
	// /proc/PID/stat after it exited and before it was reaped.
	cpu time.Duration
}

// spawn starts cmd in a new process group.
func spawn(cmd *exec.Cmd) (*child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	children.Lock()
	if err := cmd.Start(); err != nil {
		children.Unlock()
		return nil, err
	}
	pid := cmd.Process.Pid
	c := &child{cmd: cmd, done: make(chan struct{})}
	children.pgids[pid] = c
	children.Unlock()
	go func() {
		// Wait for the exit without reaping, so that the pid (and the
		// group id) stays taken while the group is unregistered, and
		// the zombie's stat still has its CPU times.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if st, err := readStat(pid); err == nil {
			c.cpu = st.cpu
		}
		children.Lock()
		delete(children.pgids, pid)
		children.Unlock()
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited waits up to d for the child to exit by itself.
func (c *child) exited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill kills the child's whole process group and waits until the child
// is reaped.
func (c *child) kill() {
	children.Lock()
	if children.pgids[c.pid()] != nil {
		syscall.Kill(-c.pid(), syscall.SIGKILL)
	}
	children.Unlock()
	<-c.done
}

// atExit registers f to run after the children are killed.
func atExit(f func()) {
	children.Lock()
	defer children.Unlock()
	children.cleanup = append(children.cleanup, f)
}

// exit kills every registered process group, reaps the children, runs the
// cleanups and exits.
func exit(code int) {
	children.Lock()
	var left []*child
	for _, c := range children.pgids {
		syscall.Kill(-c.pid(), syscall.SIGKILL)
		left = append(left, c)
	}
	children.Unlock()
	deadline := time.After(2 * time.Second)
	for _, c := range left {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
	children.Lock()
	for i := len(children.cleanup) - 1; i >= 0; i-- {
		children.cleanup[i]()
	}
	os.Exit(code)
}

// fatalf reports an error that ends the whole run.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "leakbench: "+format+"\n", args...)
	exit(1)
}

// handleSignals kills the children on Ctrl-C, SIGTERM or SIGHUP.
func handleSignals() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nleakbench: %v: killing every child\n", sig)
		exit(130)
	}()
}
