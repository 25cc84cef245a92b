package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestOutputPermissionNoPtraceAdvice: an unprivileged user profiling their
// own process into a directory they cannot write gets a message about the
// output, not the ptrace advice meant for a target pyprof may not read.
func TestOutputPermissionNoPtraceAdvice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to an unprivileged user needs root")
	}
	bin := testpython.BuildPyprof(t)
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	// The user's own process.
	sleep := exec.Command("sleep", "30")
	sleep.SysProcAttr = nobody
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	// The binary must be reachable by nobody: a copy in a world-readable
	// directory.
	dir, err := os.MkdirTemp("", "pyprof-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe := filepath.Join(dir, "pyprof")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	private := t.TempDir() // root's, mode 0700
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"own process", []string{"record", "-p", itoa(sleep.Process.Pid), "-d", "1", "-o", filepath.Join(private, "x.svg")}},
		{"launched program", []string{"record", "-d", "1", "-o", filepath.Join(private, "x.svg"), "--", "sleep", "1"}},
	} {
		args := tc.args
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exe, args...)
			cmd.Dir = dir
			cmd.SysProcAttr = nobody
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1:\n%s", err, out)
			}
			for _, bad := range []string{"CAP_SYS_PTRACE", "setcap", "ptrace_scope", "permission denied reading process"} {
				if strings.Contains(string(out), bad) {
					t.Errorf("ptrace advice for an unwritable output:\n%s", out)
					break
				}
			}
			if !strings.Contains(string(out), "permission denied") {
				t.Errorf("the message does not say permission denied:\n%s", out)
			}
			noStackTrace(t, string(out))
		})
	}
}
