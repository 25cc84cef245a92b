package cli_test

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyversions"
)

// noStackTrace fails if stderr looks like a Go panic or leaks source paths:
// errors must read as messages, not crashes.
func noStackTrace(t *testing.T, stderr string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic:", ".go:", "runtime."} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, stderr)
		}
	}
}

func freePid(t *testing.T) int {
	for pid := 4000000; pid > 100000; pid -= 7919 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return pid
		}
	}
	t.Fatal("no free pid")
	return 0
}

// startProcess runs a command for the test's duration.
func startProcess(t *testing.T, name string, args ...string) int {
	t.Helper()
	return startProcessEnv(t, nil, name, args...)
}

// startProcessEnv runs a command with env added to ours for the test's
// duration.
func startProcessEnv(t *testing.T, env []string, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(200 * time.Millisecond)
	return cmd.Process.Pid
}

// fakeFutureVersion copies a python binary whose Py_Version constant says
// major.minor: the program still runs as the Python it was built as, but
// pyprof reads its version from the constant, as from any 3.11+ binary.
func fakeFutureVersion(t *testing.T, src string, major, minor int) string {
	t.Helper()
	if _, err := os.Stat(src); err != nil {
		t.Skipf("no %s: %v", src, err)
	}
	return testpython.FutureExecutable(t, src, major, minor)
}

// TestErrors covers the failures users meet, end to end through the binary:
// each exits with status 1 and a clear message, without a stack trace.
func TestErrors(t *testing.T) {
	t.Run("no such process", func(t *testing.T) {
		pid := freePid(t)
		_, stderr, code := runPyprof(t, "dump", "-p", strconv.Itoa(pid))
		if code != 1 || !strings.Contains(stderr, "no process with pid "+strconv.Itoa(pid)) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		noStackTrace(t, stderr)
	})
	t.Run("not python", func(t *testing.T) {
		pid := startProcess(t, "sleep", "60")
		_, stderr, code := runPyprof(t, "dump", "-p", strconv.Itoa(pid))
		if code != 1 || !strings.Contains(stderr, "is not a python process") || !strings.Contains(stderr, strconv.Itoa(pid)) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		noStackTrace(t, stderr)
	})
	t.Run("unsupported version", func(t *testing.T) {
		py := fakeFutureVersion(t, testpython.SystemPython, 3, 16)
		pid := startProcess(t, py, "-c", "import time; time.sleep(60)")
		_, stderr, code := runPyprof(t, "dump", "-p", strconv.Itoa(pid))
		if code != 1 || !strings.Contains(stderr, "Python 3.16.0") || !strings.Contains(stderr, "supported: 2.7, 3.6–3.15)") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		noStackTrace(t, stderr)
	})
	t.Run("unrecognised descriptor", func(t *testing.T) {
		// A 3.13 that claims to be 3.16 and whose _Py_DebugOffsets no
		// known format accepts: pyprof has neither a table nor a way to
		// read the descriptor, and must say so.
		for _, py := range testpython.For(t, "3.13") {
			if py.System {
				continue // FutureLibpython needs pyenv's shared libpython
			}
			sizeAt := int64(-1)
			for _, f := range pyversions.DebugOffsetsFormats() {
				for _, fl := range f.Fields {
					if f.Version.MinorString() == "3.13" && fl.Path == "runtime_state.size" {
						sizeAt = fl.Offset
					}
				}
			}
			lib := testpython.FutureLibpython(t, py, 3, 16, func(desc []byte) {
				binary.LittleEndian.PutUint64(desc[sizeAt:], 0)
			})
			pid := startProcessEnv(t, []string{"LD_PRELOAD=" + lib}, py.Path, "-c", "import time; time.sleep(60)")
			_, stderr, code := runPyprof(t, "dump", "-p", strconv.Itoa(pid))
			want := "process " + strconv.Itoa(pid) + ": python 3.16.0: _Py_DebugOffsets layout not recognised (known formats: 3.13, 3.14, 3.15)"
			if code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
			}
			noStackTrace(t, stderr)
		}
	})
	t.Run("descriptor of another minor", func(t *testing.T) {
		// A 3.13 that claims to be 3.15: pyprof knows 3.15's format, and
		// a 3.13 descriptor does not fit it. Reading it with 3.15's
		// table would give wrong stacks, so it must be refused.
		for _, py := range testpython.For(t, "3.13") {
			if py.System {
				continue
			}
			lib := testpython.FutureLibpython(t, py, 3, 15, nil)
			pid := startProcessEnv(t, []string{"LD_PRELOAD=" + lib}, py.Path, "-c", "import time; time.sleep(60)")
			_, stderr, code := runPyprof(t, "dump", "-p", strconv.Itoa(pid))
			want := "process " + strconv.Itoa(pid) + ": python 3.15.0: _Py_DebugOffsets layout not recognised (known formats: 3.13, 3.14, 3.15)"
			if code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
			}
			noStackTrace(t, stderr)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to run pyprof as another user")
		}
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("no setpriv")
		}
		py := testpython.For(t, "3.11")[0]
		tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
		// The binary must be reachable by the unprivileged user.
		dir, err := os.MkdirTemp("", "pyprof-perm")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		bin := filepath.Join(dir, "pyprof")
		data, err := os.ReadFile(testpython.BuildPyprof(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin, "dump", "-p", strconv.Itoa(tg.Pid))
		out, _ := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		stderr := string(out)
		if code != 1 {
			t.Errorf("exit %d", code)
		}
		for _, want := range []string{"permission denied", strconv.Itoa(tg.Pid), "sudo", "setcap cap_sys_ptrace+ep", "SYS_PTRACE"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		noStackTrace(t, stderr)
	})
	// Root without CAP_SYS_PTRACE in its bounding set, as in a container
	// started without it: sudo and setcap cannot help, adding the
	// capability to the container does.
	t.Run("capability dropped", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root: an unprivileged user is refused before capabilities matter")
		}
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("no setpriv")
		}
		py := testpython.For(t, "3.11")[0]
		tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
		for _, tc := range []struct {
			name string
			env  []string
			want []string
		}{
			{"as found", nil, []string{"already runs as root", "neither sudo nor setcap"}},
			{"in a pod", []string{"KUBERNETES_SERVICE_HOST=10.96.0.1"}, []string{"looks like a container", "already runs as root"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cmd := exec.Command(setpriv, "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", testpython.BuildPyprof(t), "dump", "-p", strconv.Itoa(tg.Pid))
				cmd.Env = append(os.Environ(), tc.env...)
				out, _ := cmd.CombinedOutput()
				stderr := string(out)
				if code := cmd.ProcessState.ExitCode(); code != 1 {
					t.Errorf("exit %d", code)
				}
				want := append([]string{"permission denied", strconv.Itoa(tg.Pid), "docker run --cap-add SYS_PTRACE", `capabilities: {add: ["SYS_PTRACE"]}`, "kubectl debug", "--profile=general"}, tc.want...)
				for _, w := range want {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, stderr)
					}
				}
				if strings.Contains(stderr, "sudo pyprof") {
					t.Errorf("advises sudo to root:\n%s", stderr)
				}
				noStackTrace(t, stderr)
			})
		}
	})
}

// TestUsageErrors checks that command line mistakes exit with status 2.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"dump"},
		{"dump", "-p", "abc"},
		{"dump", "--nope", "-p", "1"},
		{"dump", "-p", "1", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, stderr, code := runPyprof(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			noStackTrace(t, stderr)
		})
	}
}
