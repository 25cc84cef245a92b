package cli_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// containerMinors are the versions profiled in namespaces: 3.11 for its
// native_thread_id, with Debian's static build and pyenv's shared
// libpython, 3.10 for the thread ids read from struct pthread, 3.13 for a
// layout read from the target's _Py_DebugOffsets, and 3.14 and 3.15, which
// only sid's stripped builds provide, as they run in Debian containers.
var containerMinors = []string{"3.10", "3.11", "3.13", "3.14", "3.15"}

// checkNamespaced fails unless tg runs as a container's init from files
// that only its own mount namespace has: then only /proc/PID/root reaches
// them, and no path of the host could stand in.
func checkNamespaced(t *testing.T, tg *testpython.Target) {
	t.Helper()
	if tg.OwnPid != 1 || tg.Pid == tg.OwnPid {
		t.Fatalf("target has pid %d in its namespace and %d outside; want 1 and another", tg.OwnPid, tg.Pid)
	}
	exe := tg.Expect.Executable
	if !strings.HasPrefix(exe, tg.Root+"/") {
		t.Fatalf("target runs %s, not a copy under %s", exe, tg.Root)
	}
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", tg.Pid))
	if err != nil {
		t.Fatal(err)
	}
	private := []string{exe}
	exeMapped := false
	for _, line := range strings.Split(string(maps), "\n") {
		i := strings.Index(line, "/")
		if i < 0 {
			continue
		}
		exeMapped = exeMapped || line[i:] == exe
		if strings.HasPrefix(filepath.Base(line[i:]), "libpython") {
			private = append(private, line[i:])
		}
	}
	if !exeMapped {
		t.Fatalf("%s is not mapped:\n%s", exe, maps)
	}
	// The interpreter's state lives in libpython or, for a distribution's
	// static build, in the executable itself: either way in a private file.
	switch libs := len(private) - 1; {
	case !tg.Interp.System && libs == 0:
		t.Fatalf("%s maps no libpython:\n%s", tg.Interp.Name, maps)
	case tg.Interp.System && libs > 0:
		t.Fatalf("%s links libpython statically, yet maps %q", tg.Interp.Name, private[1:])
	}
	for _, path := range private {
		if !strings.HasPrefix(path, tg.Root+"/") {
			t.Errorf("%s is mapped from the host's files", path)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists outside the target's mount namespace (%v)", path, err)
		}
	}
}

// TestDumpInContainer is the oracle test for a process in its own mount
// and pid namespaces: stacks, thread names and locals as the target itself
// reports them, native ids as the host numbers the threads, and every
// thread idle.
func TestDumpInContainer(t *testing.T) {
	for _, py := range testpython.For(t, containerMinors...) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := testpython.StartInNamespace(t, py, "stacks.py")
			checkNamespaced(t, tg)
			d := dump(t, tg.Pid, "--locals")
			if diff := testpython.DiffThreads(tg.Expect.Threads, toExpect(d)); diff != "" {
				t.Errorf("pyprof disagrees with the target's own view:\n%s", diff)
			}
			if d.Pid != tg.Pid || d.NamespacePid != tg.OwnPid || d.PythonVersion != tg.Expect.Version {
				t.Errorf("header: pid %d (namespace pid %d) version %s, want %d (%d) %s",
					d.Pid, d.NamespacePid, d.PythonVersion, tg.Pid, tg.OwnPid, tg.Expect.Version)
			}
			if d.Executable != tg.Expect.Executable {
				t.Errorf("executable %q, want %q as the target names it", d.Executable, tg.Expect.Executable)
			}
			native := map[uint64]int{}
			for _, th := range d.Threads {
				native[th.ThreadID] = th.NativeID
				if th.Active {
					t.Errorf("thread %d is parked but reported active", th.NativeID)
				}
			}
			checked := 0
			for _, w := range tg.Expect.Threads {
				if w.NativeID == nil {
					continue
				}
				host, err := tg.HostTID(*w.NativeID)
				if err != nil {
					t.Fatal(err)
				}
				if native[w.ThreadID] != host {
					t.Errorf("thread %d [%s]: native id %d, want %d (%d in the namespace)", w.ThreadID, w.Shape, native[w.ThreadID], host, *w.NativeID)
				}
				if w.Shape == "main" && host != tg.Pid {
					t.Errorf("main thread is %d on the host, want the pid %d", host, tg.Pid)
				}
				checked++
			}
			if checked < 2 {
				t.Errorf("only %d threads reported native ids", checked)
			}
		})
	}
}

// TestProfileInContainer finds a namespaced target with --pgrep and checks
// what the user sees of it: host pids and thread ids, which ps and top -H
// show on the host, with its own pid beside; a thread running without the
// GIL as active, which needs its run state from /proc under its host id;
// and a short recording of that thread.
func TestProfileInContainer(t *testing.T) {
	for _, py := range testpython.For(t, containerMinors...) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			// A name of its own, so that --pgrep finds this target and
			// not one of a parallel test.
			root, err := testpython.ModuleRoot()
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.ReadFile(filepath.Join(root, "testdata", "targets", "nogil.py"))
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("nogil_%d_%s.py", os.Getpid(), strings.NewReplacer(".", "_", "-", "_").Replace(py.Name))
			script := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(script, src, 0o644); err != nil {
				t.Fatal(err)
			}
			tg := testpython.StartInNamespace(t, py, script)
			checkNamespaced(t, tg)
			hasher, parked := tg.Expect.Shape("hash"), tg.Expect.Shape("park")
			if hasher == nil || parked == nil || hasher.NativeID == nil {
				t.Fatalf("report lacks the threads or their native ids: %+v", tg.Expect.Threads)
			}
			hasherTID, err := tg.HostTID(*hasher.NativeID)
			if err != nil {
				t.Fatal(err)
			}
			pattern := regexp.QuoteMeta(name)

			out, stderr, code := runPyprof(t, "dump", "--json", "--pgrep", pattern)
			if code != 0 {
				t.Fatalf("dump --pgrep exited %d: %s", code, stderr)
			}
			var ds []dumpJSON
			if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
				t.Fatalf("want one process, got %v:\n%s", err, out)
			}
			d := ds[0]
			if d.Pid != tg.Pid || d.NamespacePid != tg.OwnPid {
				t.Errorf("--pgrep found pid %d (namespace pid %d), want %d (%d)", d.Pid, d.NamespacePid, tg.Pid, tg.OwnPid)
			}
			for _, th := range d.Threads {
				switch th.ThreadID {
				case hasher.ThreadID:
					if th.NativeID != hasherTID || !th.Active {
						t.Errorf("hasher: native id %d active %v, want %d and active", th.NativeID, th.Active, hasherTID)
					}
				case parked.ThreadID:
					if th.NativeID != tg.Pid || th.Active {
						t.Errorf("main thread: native id %d active %v, want %d and idle", th.NativeID, th.Active, tg.Pid)
					}
				default:
					t.Errorf("unexpected thread %+v", th)
				}
			}

			text, stderr, code := runPyprof(t, "dump", "--pgrep", pattern)
			if code != 0 {
				t.Fatalf("dump --pgrep exited %d: %s", code, stderr)
			}
			header := fmt.Sprintf("Process %d (pid %d in its namespace): ", tg.Pid, tg.OwnPid)
			if !strings.HasPrefix(text, header) {
				t.Errorf("text dump does not start with %q:\n%s", header, text)
			}
			if want := fmt.Sprintf("\nThread %d (active", hasherTID); !strings.Contains(text, want) {
				t.Errorf("text dump lacks %q:\n%s", want, text)
			}

			// Only active threads are recorded: the parked main thread
			// must not appear, and the hasher must, under its host id.
			file := filepath.Join(t.TempDir(), "p.txt")
			_, stderr, code = runPyprof(t, "record", "-p", strconv.Itoa(tg.Pid), "-d", "2", "--threads", "-f", "collapsed", "-o", file)
			if code != 0 {
				t.Fatalf("record exited %d: %s", code, stderr)
			}
			stacks := collapsed(t, file)
			frac, total := share(stacks, regexp.MustCompile(fmt.Sprintf(`^thread %d: hasher;.*hash_forever`, hasherTID)))
			if total < 20 || frac < 0.9 {
				t.Errorf("%.0f%% of %d samples in the hasher, want 90%% of at least 20:\n%v", 100*frac, total, stacks)
			}
			if f, _ := share(stacks, regexp.MustCompile(fmt.Sprintf(`^thread %d:`, tg.Pid))); f > 0 {
				t.Errorf("the parked main thread was recorded as active:\n%v", stacks)
			}
		})
	}
}
