package testpython

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/procmem"
)

// StartUnreaped runs name with args as the child of a process that never
// reaps it (a shell that then execs sleep), so that the child stays a
// zombie once it exits, as under a shell or a supervisor that is busy
// elsewhere. It returns the child's pid and the parent's; both are killed
// when the test ends.
func StartUnreaped(t testing.TB, name string, args ...string) (child, parent int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `"$@" & exec sleep 3600`, "sh", name}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	parent = cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(readyTimeout)
	for child == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no child of %d appeared", name, parent)
		}
		time.Sleep(5 * time.Millisecond)
		kids, err := children(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) > 0 {
			child = kids[0]
		}
	}
	// Before the parent is killed, while the pid cannot have been reused.
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	return child, parent
}

// WaitZombie waits until pid is a zombie, and fails the test if it does
// not become one within the time a target has to start.
func WaitZombie(t testing.TB, pid int) {
	t.Helper()
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(5 * time.Millisecond) {
		st, _, ok := procState(pid)
		if ok && st == 'Z' {
			return
		}
		if !ok || time.Now().After(deadline) {
			t.Fatalf("process %d did not become a zombie (state %q)", pid, st)
		}
	}
}

// procState reads the state and parent of pid from /proc/PID/stat.
func procState(pid int) (state byte, ppid int, ok bool) {
	st, err := procmem.DefaultFS.Stat(pid)
	return st.State, st.PPid, err == nil
}
