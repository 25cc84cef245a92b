package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// runWithin runs pyprof with env added to ours, and kills it if it has not
// ended after limit: the tests below check that a run ends at all, never
// how fast.
func runWithin(t *testing.T, limit time.Duration, env []string, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, testpython.BuildPyprof(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	// A process left behind with pyprof's stdout or stderr would keep
	// Run waiting for the pipes after pyprof exits; the leftover checks
	// name it instead.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pyprof %s still running after %v; stderr:\n%s", strings.Join(args, " "), limit, e.String())
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("pyprof %s exited, but a process left behind holds its output", strings.Join(args, " "))
	} else if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode(), time.Since(start)
}

// tempScript writes a file in a temporary directory and returns its path.
func tempScript(t *testing.T, name, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// leftRunning returns the processes whose command line contains marker.
func leftRunning(t *testing.T, marker string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(marker)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " "))
		}
	}
	return found
}

// launchArgs returns pyprof's arguments to run cmd (record or top) on a
// program it launches.
func launchArgs(t *testing.T, cmd string, extra []string, program ...string) []string {
	args := []string{cmd}
	if cmd == "record" {
		args = append(args, "-f", "collapsed", "-o", filepath.Join(t.TempDir(), "p.txt"))
	} else {
		args = append(args, "--delay", "0.5")
	}
	args = append(args, extra...)
	return append(append(args, "--"), program...)
}

// TestLaunchNotPython: a launched program that is not Python is named as
// such, not as a missing pid, while it still runs, and pyprof ends it; one
// that exits before Python was found is said to have, with its status,
// which pyprof exits with. No process is left behind. A launcher that
// forks Python in a new pid namespace is not Python either without -s.
func TestLaunchNotPython(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	// Unique arguments, to find what is left behind by.
	sleep := fmt.Sprintf("60.%d", time.Now().UnixNano()%1000000)
	script := tempScript(t, "sleep_a_minute.py", "import time\ntime.sleep(60)\n", 0o644)
	for _, tc := range []struct {
		name     string
		program  []string
		marker   string
		code     int
		want     []string
		needRoot bool
	}{
		{"sleep", []string{"sleep", sleep}, sleep, 1, []string{"pyprof: sleep (pid ", ") is not a Python program: no python interpreter in /usr/bin/sleep (with -s, pyprof follows Python subprocesses it starts)"}, false},
		{"false", []string{"/bin/false"}, "", 1, []string{`pyprof: "/bin/false" (pid `, ") exited with status 1 before a Python interpreter was found in it"}, false},
		{"shell exit 3", []string{"sh", "-c", "exit 3"}, "", 3, []string{`pyprof: "sh -c exit 3" (pid `, ") exited with status 3 before a Python interpreter was found in it"}, false},
		// unshare --fork ignores SIGTERM and Python is pid 1 of its
		// namespace, which ignores it too: both need SIGKILL.
		{"unshare --fork", []string{"unshare", "--pid", "--fork", py.Path, script}, script, 1, []string{"pyprof: unshare (pid ", ") is not a Python program: no python interpreter in "}, true},
	} {
		for _, cmd := range []string{"record", "top"} {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				if tc.needRoot && os.Geteuid() != 0 {
					t.Skip("needs root for a pid namespace")
				}
				_, stderr, code, took := runWithin(t, 30*time.Second, nil, launchArgs(t, cmd, nil, tc.program...)...)
				t.Logf("exit %d after %.2f s", code, took.Seconds())
				if code != tc.code {
					t.Errorf("exit %d, want %d", code, tc.code)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, stderr)
					}
				}
				for _, bad := range []string{"no process with pid", "container", "ptrace", "sampling"} {
					if strings.Contains(stderr, bad) {
						t.Errorf("stderr says %q:\n%s", bad, stderr)
					}
				}
				noStackTrace(t, stderr)
				if tc.marker != "" {
					if left := leftRunning(t, tc.marker); len(left) > 0 {
						t.Errorf("left running: %q", left)
					}
				}
			})
		}
	}
}

// TestLaunchWrapper: programs that become Python after they exec once or
// more still get profiled: a pyenv shim (a bash script that takes a second
// or more to exec the interpreter), a bash script that computes before it
// execs, env and sh -c 'exec ...'.
func TestLaunchWrapper(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	script := tempScript(t, "spin.py", "import time\nend = time.time() + 2\ndef spin():\n    while time.time() < end: pass\nspin()\n", 0o644)
	slow := tempScript(t, "slow.sh", "#!/bin/bash\nend=$((SECONDS+2))\nwhile ((SECONDS < end)); do :; done\nexec \"$@\"\n", 0o755)
	type wrapper struct {
		name    string
		env     []string
		program []string
	}
	wrappers := []wrapper{
		{"bash computing before exec", nil, []string{slow, py.Path, script}},
		{"env", nil, []string{"/usr/bin/env", py.Path, script}},
		{"sh -c exec", nil, []string{"sh", "-c", `exec "$0" "$1"`, py.Path, script}},
	}
	// A pyenv interpreter sits at ROOT/versions/V/bin/pythonX.Y, its shim
	// at ROOT/shims/pythonX.Y.
	shim := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(py.Path)))), "shims", filepath.Base(py.Path))
	if _, err := os.Stat(shim); err == nil && !py.System {
		wrappers = append(wrappers, wrapper{"pyenv shim", []string{"PYENV_VERSION=" + py.Version}, []string{shim, script}})
	} else {
		t.Logf("no pyenv shim at %s: not tested", shim)
	}
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "p.txt")
			_, stderr, code, _ := runWithin(t, 60*time.Second, w.env, append([]string{"record", "-f", "collapsed", "-o", out, "--"}, w.program...)...)
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			if got, n := share(collapsed(t, out), regexp.MustCompile(`(^|;)spin \(`)); got < 0.5 || n < 30 {
				t.Errorf("spin in %.0f%% of %d samples; stderr:\n%s", 100*got, n, stderr)
			}
		})
	}
}

// TestLaunchUnshareSubprocesses: with -s, a launcher that is not Python
// is followed to its Python subprocess, here one in a pid namespace of its
// own; -d ends both, though both ignore SIGTERM (unshare --fork does, and
// so does the first process of a pid namespace).
func TestLaunchUnshareSubprocesses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a pid namespace")
	}
	py := testpython.For(t, "3.11")[0]
	script := tempScript(t, "spin_a_minute.py", "import time\nend = time.time() + 60\ndef spin():\n    while time.time() < end: pass\nspin()\n", 0o644)
	out := filepath.Join(t.TempDir(), "p.txt")
	_, stderr, code, _ := runWithin(t, 60*time.Second, nil, "record", "-s", "-d", "3", "-f", "collapsed", "-o", out, "--", "unshare", "--pid", "--fork", py.Path, script)
	if code != 137 || !strings.Contains(stderr, "pyprof: -d 3 elapsed: sent SIGTERM and, 2s later, SIGKILL to \"unshare --pid --fork ") {
		t.Errorf("exit %d, want 137 from unshare's SIGKILL; stderr:\n%s", code, stderr)
	}
	if got, n := share(collapsed(t, out), regexp.MustCompile(`;spin \(`)); got < 0.5 || n < 30 {
		t.Errorf("spin in %.0f%% of %d samples; stderr:\n%s", 100*got, n, stderr)
	}
	if left := leftRunning(t, script); len(left) > 0 {
		t.Errorf("left running: %q", left)
	}
}

// TestLaunchExitStatus: pyprof exits with the launched program's status:
// N when it exits N, 128+N when signal N kills it.
func TestLaunchExitStatus(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	for _, tc := range []struct {
		name, end string
		code      int
	}{
		{"exit 0", "sys.exit(0)", 0},
		{"exit 3", "sys.exit(3)", 3},
		{"SIGKILL", "os.kill(os.getpid(), signal.SIGKILL)", 137},
	} {
		script := tempScript(t, "end.py", "import os, signal, sys, time\nend = time.time() + 1\nwhile time.time() < end: pass\n"+tc.end+"\n", 0o644)
		for _, cmd := range []string{"record", "top"} {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				_, stderr, code, _ := runWithin(t, 60*time.Second, nil, launchArgs(t, cmd, nil, py.Path, script)...)
				if code != tc.code {
					t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
				}
				if strings.Contains(stderr, "sent SIGTERM") {
					t.Errorf("pyprof ended a program that ended by itself:\n%s", stderr)
				}
			})
		}
	}
}

// TestLaunchDurationEnds: when -d ends the run, pyprof ends the program
// it launched and says so; it exits with the program's status.
func TestLaunchDurationEnds(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	script := tempScript(t, "sleep_a_minute.py", "import time\ntime.sleep(60)\n", 0o644)
	want := regexp.MustCompile(`(?m)^pyprof: -d 2 elapsed: sent SIGTERM to "` + regexp.QuoteMeta(py.Path+" "+script) +
		`" \(pid [0-9]+\); it exited with status 143 \(killed by SIGTERM\)$`)
	for _, cmd := range []string{"record", "top"} {
		t.Run(cmd, func(t *testing.T) {
			_, stderr, code, _ := runWithin(t, 60*time.Second, nil, launchArgs(t, cmd, []string{"-d", "2", "--idle"}, py.Path, script)...)
			if code != 143 {
				t.Errorf("exit %d, want the program's 143", code)
			}
			if !want.MatchString(stderr) {
				t.Errorf("stderr does not match %s:\n%s", want, stderr)
			}
			if left := leftRunning(t, script); len(left) > 0 {
				t.Errorf("left running: %q", left)
			}
		})
	}
}

// TestLaunchedEndsWithPyprof: a program pyprof launched does not outlive
// pyprof even when pyprof is killed outright.
func TestLaunchedEndsWithPyprof(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	script := tempScript(t, "sleep_a_minute.py", "import time\ntime.sleep(60)\n", 0o644)
	cmd := exec.Command(testpython.BuildPyprof(t), "record", "-o", filepath.Join(t.TempDir(), "p.svg"), "--", py.Path, script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the program to start", func() bool { return len(leftRunning(t, script)) > 0 })
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, "the program to end", func() bool { return len(leftRunning(t, script)) == 0 })
}

// exitRunsEnv sets how many runs TestLaunchedExitStatusRace makes.
const exitRunsEnv = "PYPROF_EXIT_STATUS_RUNS"

// TestLaunchedExitStatusRace records a program that exits 0 while it is
// being paused at 1000 Hz, over and over: pyprof, its tracer and its
// parent, must exit 0 every time. Its waits for paused threads once
// collected the program's exit status instead of its parent's wait, and
// pyprof exited 1. The acceptance run is 200 in a row:
// PYPROF_EXIT_STATUS_RUNS=200 go test ./internal/cli -run TestLaunchedExitStatusRace
func TestLaunchedExitStatusRace(t *testing.T) {
	py := testpython.For(t, "3.9")[0]
	runs := 20
	if s := os.Getenv(exitRunsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a count", exitRunsEnv, s)
		}
		runs = n
	}
	script := tempScript(t, "sleepy.py", "import time\ntime.sleep(0.3)\n", 0o644)
	out := filepath.Join(t.TempDir(), "p.txt")
	for i := range runs {
		_, stderr, code, _ := runWithin(t, 60*time.Second, nil, "record", "--blocking", "--rate", "1000", "--idle", "-f", "collapsed", "-o", out, "--", py.Path, script)
		if code != 0 {
			t.Fatalf("run %d of %d: exit %d; stderr:\n%s", i+1, runs, code, stderr)
		}
	}
}
