package testpython

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
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
		ents, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if _, ppid, ok := procState(pid); ok && ppid == parent {
				child = pid
				break
			}
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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return f[0][0], ppid, err == nil
}
