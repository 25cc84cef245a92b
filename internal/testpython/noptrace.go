package testpython

import (
	"os/exec"
	"runtime"
	"sync"
	"testing"
)

var noPtraceBuild struct {
	once sync.Once
	path string
	err  error
}

// NoPtrace returns a command that runs noptrace with args, "[-readv]
// PROGRAM ARGS...": PROGRAM under a seccomp filter that denies ptrace
// (EPERM) and allows every other system call, process_vm_readv included
// unless -readv is given. That is what pyprof meets in a locked-down pod.
// See ./noptrace, which is built once per test process. The filter is
// written for x86_64; elsewhere the test is skipped.
func NoPtrace(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("the seccomp filter of noptrace is written for amd64, not %s", runtime.GOARCH)
	}
	noPtraceBuild.once.Do(func() {
		noPtraceBuild.path, noPtraceBuild.err = buildCommand("./internal/testpython/noptrace")
	})
	if noPtraceBuild.err != nil {
		t.Fatalf("build noptrace: %v", noPtraceBuild.err)
	}
	return exec.Command(noPtraceBuild.path, args...)
}
