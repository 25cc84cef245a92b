package procmem

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// copyFixture copies process 4242 of the fixture tree into a temporary
// /proc, for tests that change it.
func copyFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("testdata", "proc")
	err := filepath.WalkDir(filepath.Join(src, "4242"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(root, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func writeThreadStatus(t *testing.T, root string, tid int, nspid string) {
	t.Helper()
	dir := filepath.Join(root, "4242", "task", strconv.Itoa(tid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tpython3.11\nNSpid:\t"+nspid+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFixtureThreadIDs maps the threads of fixture process 4242, which is
// 17 in its own pid namespace, through thread exits and new threads.
func TestFixtureThreadIDs(t *testing.T) {
	root := copyFixture(t)
	p, err := NewFS(root).Open(4242)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.NewThreadIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !m.Nested() || m.OwnPid() != 17 {
		t.Fatalf("Nested %v, OwnPid %d; want true, 17", m.Nested(), m.OwnPid())
	}
	own, err := m.OwnThreads()
	if err != nil || !slices.Equal(own, []int{17, 18, 25}) {
		t.Errorf("OwnThreads = %v, %v", own, err)
	}
	listed := m.Listings()
	for _, tc := range []struct {
		name     string
		change   func()
		ids      []int
		want     []int
		listings int // more than before
	}{
		{"known", nil, []int{25, 17, 18}, []int{4301, 4242, 4250}, 0},
		{"unknown and none", nil, []int{0, 99, 18}, []int{0, 0, 4250}, 1},
		{"two unknown, one listing", nil, []int{98, 99}, []int{0, 0}, 1},
		{"exited, not listed yet", func() { os.RemoveAll(filepath.Join(root, "4242", "task", "4301")) }, []int{25}, []int{4301}, 0},
		{"new thread", func() { writeThreadStatus(t, root, 4400, "4400\t30") }, []int{30, 25}, []int{4400, 0}, 1},
		{"own id reused", func() { writeThreadStatus(t, root, 4500, "4500\t25") }, []int{26, 25}, []int{0, 4500}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change()
			}
			ids := slices.Clone(tc.ids)
			m.ToFS(ids)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("ToFS(%v) = %v, want %v", tc.ids, ids, tc.want)
			}
			if n := m.Listings() - listed; n != tc.listings {
				t.Errorf("%d listings, want %d", n, tc.listings)
			}
			listed = m.Listings()
		})
	}
}

func TestThreadIDsNotNested(t *testing.T) {
	root := copyFixture(t)
	status := filepath.Join(root, "4242", "status")
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, nspid string }{
		{"same namespace", "NSpid:\t4242\n"},
		{"kernel before 4.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := strings.Replace(string(b), "NSpid:\t4242\t17\n", tc.nspid, 1)
			if err := os.WriteFile(status, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := NewFS(root).Open(4242)
			if err != nil {
				t.Fatal(err)
			}
			m, err := p.NewThreadIDs()
			if err != nil {
				t.Fatal(err)
			}
			ids := []int{4242, 4250, 7}
			m.ToFS(ids)
			if m.Nested() || m.OwnPid() != 4242 || !slices.Equal(ids, []int{4242, 4250, 7}) || m.Listings() != 0 {
				t.Errorf("Nested %v, OwnPid %d, ToFS %v, %d listings; want the identity and no listing", m.Nested(), m.OwnPid(), ids, m.Listings())
			}
			own, err := m.OwnThreads()
			if err != nil || !slices.Equal(own, []int{4242, 4250, 4301}) {
				t.Errorf("OwnThreads = %v, %v", own, err)
			}
		})
	}
}

func TestParseStatusNSpidBound(t *testing.T) {
	levels := strings.Repeat("1\t", maxPidNSLevels)
	if _, err := parseStatus([]byte("NSpid:\t" + levels + "\n")); err != nil {
		t.Errorf("%d levels: %v", maxPidNSLevels, err)
	}
	if _, err := parseStatus([]byte("NSpid:\t" + levels + "1\n")); err == nil {
		t.Errorf("%d levels accepted", maxPidNSLevels+1)
	}
}

// nsScript runs inside new mount and pid namespaces: it mounts a tmpfs
// over an empty directory, copies the interpreter and libz (which it links)
// there, and runs the copy as pid 1. Arguments: the directory, the
// interpreter, libz, then the interpreter's arguments.
const nsScript = `set -e
root=$1 exe=$2 lib=$3
shift 3
mount -t tmpfs -o mode=0755 pyprof-procmem "$root"
mkdir "$root/bin" "$root/lib"
cp "$exe" "$root/bin/"
cp "$lib" "$root/lib/"
export LD_LIBRARY_PATH="$root/lib"
exec "$root/bin/${exe##*/}" "$@"
`

// threadsScript reports its pid and the native ids of its threads, which
// then wait for stdin to close.
const threadsScript = `
import json, os, sys, threading
ids = {}
ready = threading.Barrier(3)
def run(name):
    ids[name] = threading.get_native_id()
    ready.wait()
    threading.Event().wait()
for name in ("a", "b"):
    threading.Thread(target=run, args=(name,), daemon=True).start()
ids["main"] = threading.get_native_id()
ready.wait()
ids["pid"] = os.getpid()
print(json.dumps(ids), flush=True)
sys.stdin.read()
`

// startInNamespace runs python -c script as the init of new pid and mount
// namespaces, from a copy of the interpreter and of libz at a path only
// that mount namespace has. It returns the child with its pid outside, and
// the directory of the copies.
func startInNamespace(t *testing.T, python, script string) (*pyChild, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating namespaces needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("namespace tests need unshare from util-linux: %v", err)
	}
	libz, _ := filepath.Glob("/lib/*/libz.so.1")
	if len(libz) == 0 {
		libz, _ = filepath.Glob("/usr/lib/*/libz.so.1")
	}
	if len(libz) == 0 {
		t.Fatalf("no libz.so.1, which %s links", python)
	}
	root := t.TempDir()
	cmd := exec.Command(unshare, "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
		"/bin/sh", "-c", nsScript, "sh", root, python, libz[0], "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := startReporting(t, cmd, "namespaced python")
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	kids := strings.Fields(string(b))
	if len(kids) != 1 {
		t.Fatalf("unshare has children %q", kids)
	}
	c.pid, _ = strconv.Atoi(kids[0])
	return c, root
}

// TestNamespacedProcess reads a process that runs as a container's init
// from files that exist only in its mount namespace: they must be opened
// through /proc/PID/root, and its threads' ids mapped from its own pid
// namespace, where they are small, to ours.
func TestNamespacedProcess(t *testing.T) {
	c, root := startInNamespace(t, needFile(t, systemPython), threadsScript)
	p := c.open(t)
	exe, err := p.Exe()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "bin", filepath.Base(systemPython)); exe != want {
		t.Errorf("Exe = %q, want %q", exe, want)
	}
	maps, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	var libz string
	for _, m := range maps {
		if filepath.Base(m.Path) == "libz.so.1" {
			libz = m.Path
		}
	}
	if libz != filepath.Join(root, "lib", "libz.so.1") {
		t.Fatalf("libz mapped from %q, not from the copy under %s", libz, root)
	}
	for _, path := range []string{exe, libz} {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s is visible outside the namespace (%v)", path, err)
		}
		f, err := p.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Neither the exe link nor map_files: those work for a few
		// files only, and map_files only with CAP_SYS_ADMIN.
		if want := fmt.Sprintf("/proc/%d/root%s", c.pid, path); f.Name() != want {
			t.Errorf("opened %s as %s, want %s", path, f.Name(), want)
		}
		f.Close()
		e, err := p.OpenELF(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoadBias(e, maps, path); err != nil {
			t.Errorf("load bias of %s: %v", path, err)
		}
		e.Close()
	}

	m, err := p.NewThreadIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !m.Nested() || m.OwnPid() != int(c.info["pid"]) || m.OwnPid() != 1 {
		t.Errorf("Nested %v, OwnPid %d; want true and %d", m.Nested(), m.OwnPid(), c.info["pid"])
	}
	own := []int{int(c.info["main"]), int(c.info["a"]), int(c.info["b"])}
	got, err := m.OwnThreads()
	if err != nil || !slices.Equal(got, own) {
		t.Errorf("OwnThreads = %v, %v; want %v", got, err, own)
	}
	ids := slices.Clone(own)
	m.ToFS(ids)
	tids, err := p.Threads()
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != c.pid {
		t.Errorf("main thread is %d outside, want the pid %d", ids[0], c.pid)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, tids) {
		t.Errorf("ToFS(%v) = %v, want the threads %v", own, ids, tids)
	}
	// Every thread ends up waiting; right after the report some may
	// still be on their way there.
	waitFor(t, "every thread to sleep", func() bool {
		for _, tid := range tids {
			if st, err := p.ThreadStat(tid); err != nil || st != 'S' {
				return false
			}
		}
		return true
	})
}
