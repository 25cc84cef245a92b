package target

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

// kthreadd returns the pid of kthreadd, the kernel thread that starts the
// others, or skips: a pid namespace of its own (a container) does not show
// it.
func kthreadd(t *testing.T) int {
	p, err := procmem.Open(2)
	if err == nil {
		defer p.Close()
		if st, err := p.Stat(); err == nil && st.KernelThread {
			return 2
		}
	}
	t.Skip("no kernel thread at pid 2 in this pid namespace")
	return 0
}

// TestAttachUnreadable: a process with no program to read is named for
// what it is, however the attach failed, and matches the sentinel its
// callers test (a zombie has gone, a kernel thread is not Python).
func TestAttachUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) int
		check func(t *testing.T, pid int, err error)
	}{
		{"zombie", func(t *testing.T) int {
			child, _ := testpython.StartUnreaped(t, "true")
			testpython.WaitZombie(t, child)
			return child
		}, func(t *testing.T, pid int, err error) {
			var ze *ZombieError
			if !errors.As(err, &ze) || ze.Pid != pid || ze.Parent != "sleep" || !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("%v (%T), want a *ZombieError of %d whose parent is sleep, matching ESRCH", err, err, pid)
			}
			if want := "is a zombie: it has exited and its parent (pid "; !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}},
		{"kernel thread", kthreadd, func(t *testing.T, pid int, err error) {
			var ke *KernelThreadError
			if !errors.As(err, &ke) || ke.Comm != "kthreadd" || !errors.Is(err, ErrNotPython) {
				t.Fatalf("%v (%T), want a *KernelThreadError of kthreadd, matching ErrNotPython", err, err)
			}
			if want := "process 2 (kthreadd) is a kernel thread, not a Python process"; err.Error() != want {
				t.Errorf("%q, want %q", err, want)
			}
		}},
		{"not python", func(t *testing.T) int {
			cmd := exec.Command("sleep", "60")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return cmd.Process.Pid
		}, func(t *testing.T, pid int, err error) {
			var ne *NotPythonError
			if !errors.As(err, &ne) || ne.Pid != pid {
				t.Fatalf("%v (%T), want a *NotPythonError", err, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.start(t)
			_, err := Attach(pid, Options{})
			tc.check(t, pid, err)
			_, err = Interpreter(pid)
			tc.check(t, pid, err)
		})
	}
}

// TestLinksLibpython: an interpreter that loads a shared libpython is
// known as Python from its file alone, before its loader has mapped
// anything; one linked statically, or another program, is not.
func TestLinksLibpython(t *testing.T) {
	type file struct {
		path string
		want bool
	}
	files := []file{{"/usr/bin/sleep", false}}
	if _, err := os.Stat(testpython.SystemPython); err == nil {
		files = append(files, file{testpython.SystemPython, false})
	}
	for _, py := range testpython.For(t, "2.7", "3.11") {
		if !py.System {
			files = append(files, file{py.Path, true})
		}
	}
	for _, f := range files {
		if got := LinksLibpython(f.path); got != f.want {
			t.Errorf("LinksLibpython(%s) = %v, want %v", f.path, got, f.want)
		}
	}
}
