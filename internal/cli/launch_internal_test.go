package cli

import (
	"fmt"
	"testing"

	"github.com/pyprof/pyprof/internal/proctree"
	"github.com/pyprof/pyprof/internal/target"
)

// TestExplainTargetKinds: errors about what a target is are shown as they
// are, however wrapped, and never as a missing pid or a permission
// problem (a zombie matches ESRCH, a kernel thread ErrNotPython).
func TestExplainTargetKinds(t *testing.T) {
	sleep := proctree.Proc{Pid: 40, Comm: "sleep", Exe: "/usr/bin/sleep"}
	sh := proctree.Proc{Pid: 40, Comm: "sh", Exe: "/usr/bin/dash"}
	python := proctree.Proc{Pid: 41, Comm: "python3"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&target.ZombieError{Pid: 42, PPid: 7, Parent: "bash"},
			"process 42 is a zombie: it has exited and its parent (pid 7: bash) has not reaped it"},
		{&target.ZombieError{Pid: 42, PPid: 7},
			"process 42 is a zombie: it has exited and its parent (pid 7) has not reaped it"},
		{&target.KernelThreadError{Pid: 2, Comm: "kthreadd"},
			"process 2 (kthreadd) is a kernel thread, not a Python process"},
		{&notPythonError{pid: 40, proc: sleep},
			"sleep (pid 40) is not a Python program: no python interpreter in /usr/bin/sleep (with -s, pyprof follows Python subprocesses it starts)"},
		{&notPythonError{pid: 40, proc: sh, sub: &python},
			"sh (pid 40) is not a Python program: no python interpreter in /usr/bin/dash; its subprocess python3 (pid 41) is: add -s to profile it"},
	} {
		for _, err := range []error{tc.err, &targetError{pid: 42, err: fmt.Errorf("attach: %w", tc.err)}} {
			if got := explain(err); got != tc.want {
				t.Errorf("explain(%v) = %q, want %q", err, got, tc.want)
			}
		}
	}
}
