package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestPtraceDenied runs every command under a seccomp filter that denies
// ptrace while process_vm_readv stays allowed, as in a locked-down pod.
// Each works, saying once on stderr that it cannot pause where that
// matters, or fails at once with the reason; the target is never left
// stopped.
func TestPtraceDenied(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	parked := testpython.Start(t, py, "stacks.py", "--shapes", "recursion,locals")
	busy := testpython.Start(t, py, "busy.py", "--split", "60,30,10")
	parkedPid := func(*testing.T) int { return parked.Pid }
	busyPid := func(*testing.T) int { return busy.Pid }
	// The default mode pauses only for a stack still torn after two
	// reads: churn.py on 3.7 tears tens of times a second at 1000 Hz.
	churnPid := func(t *testing.T) int {
		return testpython.StartProgress(t, testpython.For(t, "3.7")[0], "churn.py")
	}
	const (
		dumpNote     = "); reading without pausing, so a stack may be inconsistent"
		samplingNote = "); sampling without pausing from now on, so stacks that change while being read are dropped and counted as errors"
	)
	for _, tc := range []struct {
		name   string
		filter []string // noptrace's options
		pid    func(t *testing.T) int
		args   []string
		code   int
		// note is the line stderr must hold once, after "pyprof: cannot
		// pause process PID (ptrace: operation not permitted"; "" if
		// none may appear. The default mode pauses only when a stack
		// stays torn, which is likely but not certain in one run.
		note  string
		check func(t *testing.T, pid int, dir, stdout, stderr string)
	}{
		{name: "dump", pid: parkedPid, args: []string{"dump"}, note: dumpNote, check: func(t *testing.T, pid int, _, stdout, _ string) {
			if !strings.HasPrefix(stdout, "Process "+strconv.Itoa(pid)+": ") || !strings.Contains(stdout, `: "recurse"`) {
				t.Errorf("stdout:\n%s", stdout)
			}
		}},
		{name: "dump --json", pid: parkedPid, args: []string{"dump", "--json", "--locals"}, note: dumpNote, check: func(t *testing.T, _ int, _, stdout, _ string) {
			checkDumpJSON(t, parked, stdout)
		}},
		{name: "dump --json, process_vm_readv denied too", filter: []string{"-readv"}, pid: parkedPid, args: []string{"dump", "--json", "--locals"}, note: dumpNote, check: func(t *testing.T, _ int, _, stdout, _ string) {
			checkDumpJSON(t, parked, stdout)
		}},
		{name: "dump --nonblocking", pid: parkedPid, args: []string{"dump", "--nonblocking", "--json", "--locals"}, check: func(t *testing.T, _ int, _, stdout, _ string) {
			checkDumpJSON(t, parked, stdout)
		}},
		{name: "record", pid: churnPid, args: []string{"record", "-d", "2", "-r", "1000", "-o", "p.txt"}, note: samplingNote, check: func(t *testing.T, _ int, dir, _, stderr string) {
			checkRecorded(t, dir, "p.txt", "level (", stderr)
		}},
		{name: "record --nonblocking", pid: busyPid, args: []string{"record", "--nonblocking", "-d", "1", "-o", "p.txt"}, check: func(t *testing.T, _ int, dir, _, stderr string) {
			checkRecorded(t, dir, "p.txt", "hot_a (", stderr)
		}},
		{name: "record --blocking", pid: busyPid, args: []string{"record", "--blocking", "-d", "20", "-o", "p.txt"}, code: 1, check: func(t *testing.T, pid int, dir, _, stderr string) {
			checkBlockingRefused(t, pid, stderr)
			if _, err := os.Stat(filepath.Join(dir, "p.txt")); !os.IsNotExist(err) {
				t.Errorf("a profile was written (%v)", err)
			}
		}},
		{name: "top --once", pid: churnPid, args: []string{"top", "--once", "-r", "1000", "--delay", "2"}, note: samplingNote, check: func(t *testing.T, _ int, _, stdout, _ string) {
			if !strings.Contains(stdout, "%Own") || !strings.Contains(stdout, "level (") {
				t.Errorf("no table:\n%s", stdout)
			}
		}},
		{name: "top --blocking", pid: busyPid, args: []string{"top", "--once", "--blocking", "--delay", "20"}, code: 1, check: func(t *testing.T, pid int, _, stdout, stderr string) {
			checkBlockingRefused(t, pid, stderr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.pid(t)
			var stdout, stderr, dir string
			for attempt := 1; ; attempt++ {
				dir = t.TempDir()
				args := append(append(append([]string{}, tc.filter...), testpython.BuildPyprof(t)), tc.args...)
				cmd := testpython.NoPtrace(t, append(args, "-p", strconv.Itoa(pid))...)
				cmd.Dir = dir
				var o, e bytes.Buffer
				cmd.Stdout, cmd.Stderr = &o, &e
				err := cmd.Run()
				if _, ok := err.(*exec.ExitError); err != nil && !ok {
					t.Fatal(err)
				}
				stdout, stderr = o.String(), e.String()
				if code := cmd.ProcessState.ExitCode(); code != tc.code {
					t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
				}
				testpython.CheckResumed(t, pid)
				noStackTrace(t, stderr)
				notes := strings.Count(stderr, "pyprof: cannot pause process ")
				if tc.note == "" && notes > 0 || notes > 1 {
					t.Fatalf("%d notes that pausing failed:\n%s", notes, stderr)
				}
				// A default mode that never needed a pause had nothing
				// to say: run again.
				if notes == 0 && tc.note == samplingNote && attempt < 5 {
					t.Logf("attempt %d needed no pause:\n%s", attempt, stderr)
					continue
				}
				break
			}
			if tc.note != "" {
				want := "pyprof: cannot pause process " + strconv.Itoa(pid) + " (ptrace: operation not permitted" + tc.note + "\n"
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			tc.check(t, pid, dir, stdout, stderr)
			t.Logf("stderr:\n%s", stderr)
		})
	}
}

// checkDumpJSON checks that stdout is the dump of the parked target as it
// sees itself: its threads wait, so an unpaused read is consistent.
func checkDumpJSON(t *testing.T, tg *testpython.Target, stdout string) {
	t.Helper()
	var ds []dumpJSON
	if err := json.Unmarshal([]byte(stdout), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("stdout is not one process's dump (%v):\n%s", err, stdout)
	}
	if diff := testpython.DiffThreads(tg.Expect.Threads, toExpect(&ds[0])); diff != "" {
		t.Errorf("dump disagrees with the target's own view:\n%s", diff)
	}
}

// checkRecorded checks that a profile of the function want was written.
func checkRecorded(t *testing.T, dir, file, want, stderr string) {
	t.Helper()
	stacks := collapsed(t, filepath.Join(dir, file))
	if got, n := share(stacks, regexp.MustCompile(regexp.QuoteMeta(want))); n == 0 || got == 0 {
		t.Errorf("%d samples, %.0f%% in %s; stderr:\n%s", n, 100*got, want, stderr)
	}
}

// checkBlockingRefused checks --blocking's failure: the reason and what to
// do instead, and no capability advice, which would not help.
func checkBlockingRefused(t *testing.T, pid int, stderr string) {
	t.Helper()
	want := "pyprof: --blocking needs ptrace to pause the target, and ptrace was refused (pause process " + strconv.Itoa(pid) + ": seize thread "
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "operation not permitted); run without --blocking, which pauses only when needed and otherwise drops torn stacks\n") {
		t.Errorf("stderr lacks the reason:\n%s", stderr)
	}
	for _, bad := range []string{"wrote ", "CAP_SYS_PTRACE", "setcap"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr has %q:\n%s", bad, stderr)
		}
	}
}
