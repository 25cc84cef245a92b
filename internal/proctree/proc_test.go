package proctree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/pyprof/pyprof/procmem"
)

func TestList(t *testing.T) {
	fsys := writeTree(t, gunicornTree("gunicorn"))
	// A process that exits between readdir and open leaves a directory
	// with nothing readable in it, and an unparseable stat must not
	// fail the whole list either.
	if err := os.Mkdir(filepath.Join(fsys.Root(), "999"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(fsys.Root(), "998")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "stat"), []byte("998 (x"), 0o644); err != nil {
		t.Fatal(err)
	}
	procs, err := List(fsys)
	if err != nil {
		t.Fatal(err)
	}
	// Not 2, 3, 4 (kernel threads), 600 (zombie), 998, 999; 5 is a
	// usermode helper, a real program.
	want := []int{1, 5, 100, 200, 300, 301, 400, 401, 402, 403, 500}
	if got := pids(procs); !slices.Equal(got, want) {
		t.Fatalf("List() pids = %v, want %v", got, want)
	}
	p := procs[slices.IndexFunc(procs, func(p Proc) bool { return p.Pid == 401 })]
	wantP := Proc{
		Pid: 401, PPid: 400, Comm: "gunicorn", Exe: "/usr/bin/python3.11",
		Cmdline:   []string{"/usr/bin/python3.11", "/srv/venv/bin/gunicorn", "app:app", "-w", "3"},
		StartTime: 1401, State: 'S',
	}
	if !equalProc(p, wantP) {
		t.Errorf("List()[401] = %+v, want %+v", p, wantP)
	}
}

func equalProc(a, b Proc) bool {
	return a.Pid == b.Pid && a.PPid == b.PPid && a.Comm == b.Comm && a.Exe == b.Exe &&
		slices.Equal(a.Cmdline, b.Cmdline) && a.StartTime == b.StartTime && a.State == b.State
}

func TestListMissingRoot(t *testing.T) {
	if _, err := List(procmem.NewFS(filepath.Join(t.TempDir(), "none"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("List() on a missing root: %v, want ErrNotExist", err)
	}
}

func TestGet(t *testing.T) {
	fsys := writeTree(t, gunicornTree("gunicorn"))
	for _, tt := range []struct {
		pid  int
		want Proc
	}{
		{600, Proc{Pid: 600, PPid: 1, Comm: "gunicorn", StartTime: 1600, State: 'Z'}},
		{3, Proc{Pid: 3, PPid: 2, Comm: "kworker/0:0-events", StartTime: 1003, State: 'S'}},
		{4, Proc{Pid: 4, PPid: 2, Comm: "python", StartTime: 1004, State: 'S'}},
		{pidBash, Proc{Pid: pidBash, PPid: pidSSHD, Comm: "bash", Exe: "/usr/bin/bash", Cmdline: []string{"-bash"}, StartTime: 1200, State: 'S'}},
	} {
		got, err := Get(fsys, tt.pid)
		if err != nil {
			t.Errorf("Get(%d): %v", tt.pid, err)
			continue
		}
		if !equalProc(got, tt.want) {
			t.Errorf("Get(%d) = %+v, want %+v", tt.pid, got, tt.want)
		}
	}
	for _, pid := range []int{0, -1, 12345} {
		if _, err := Get(fsys, pid); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Get(%d): %v, want ESRCH", pid, err)
		}
	}
}

func TestAncestors(t *testing.T) {
	fsys := writeTree(t, gunicornTree("gunicorn"))
	for _, tt := range []struct {
		pid  int
		want []int
	}{
		{pidPyprof, []int{pidSudo, pidBash, pidSSHD, pidInit}},
		{402, []int{400, pidInit}},
		{pidInit, nil},
		{3, []int{2}},
	} {
		got, err := Ancestors(fsys, tt.pid)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Ancestors(%d) = %v, %v; want %v", tt.pid, got, err, tt.want)
		}
	}
	if _, err := Ancestors(fsys, 12345); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Ancestors of a missing process: %v, want ESRCH", err)
	}
}

// TestAncestorsReparented removes an ancestor from the tree, as when it
// exits: until the kernel has moved its child the walk must stop cleanly
// rather than fail, and afterwards it must follow the new parent.
func TestAncestorsReparented(t *testing.T) {
	fsys := writeTree(t, gunicornTree("gunicorn"))
	if err := os.RemoveAll(filepath.Join(fsys.Root(), "300")); err != nil {
		t.Fatal(err)
	}
	got, err := Ancestors(fsys, pidPyprof)
	if err != nil || len(got) != 0 {
		t.Errorf("Ancestors with the parent gone, not yet reparented = %v, %v; want none", got, err)
	}
	// Reparent to init, as the kernel does.
	writeProc(t, fsys.Root(), fproc{pid: pidPyprof, ppid: pidInit, comm: "pyprof", exe: "/usr/local/bin/pyprof", argv: []string{"pyprof"}})
	got, err = Ancestors(fsys, pidPyprof)
	if want := []int{pidInit}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Ancestors after reparenting = %v, %v; want %v", got, err, want)
	}
}

func TestDescendants(t *testing.T) {
	fsys := writeTree(t, gunicornTree("gunicorn"))
	for _, tt := range []struct {
		root int
		want []int
	}{
		{400, []int{401, 402, 403}},
		{pidBash, []int{pidSudo, 500, pidPyprof}}, // parents before children
		{pidInit, []int{pidSSHD, 400, pidBash, 401, 402, 403, pidSudo, 500, pidPyprof}},
		{403, nil},
	} {
		got, err := Descendants(fsys, tt.root)
		if err != nil || !slices.Equal(pids(got), tt.want) {
			t.Errorf("Descendants(%d) = %v, %v; want %v", tt.root, pids(got), err, tt.want)
		}
	}
	for _, pid := range []int{600, 12345} { // a zombie, a missing process
		if _, err := Descendants(fsys, pid); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Descendants(%d): %v, want ESRCH", pid, err)
		}
	}
}

func TestParentLoop(t *testing.T) {
	// Two processes that name each other as parent: impossible in one
	// instant, but walks must end anyway.
	fsys := writeTree(t, []fproc{
		{pid: 10, ppid: 11, comm: "a", exe: "/bin/a", argv: []string{"a"}},
		{pid: 11, ppid: 10, comm: "a", exe: "/bin/a", argv: []string{"a"}},
		{pid: 12, ppid: 12, comm: "b", exe: "/bin/b", argv: []string{"b"}},
	})
	if _, err := Ancestors(fsys, 10); err != nil {
		t.Error(err)
	}
	if got, err := Descendants(fsys, 10); err != nil || !slices.Equal(pids(got), []int{11}) {
		t.Errorf("Descendants(10) = %v, %v", pids(got), err)
	}
	if _, err := Pgrep(fsys, "^a$", 0); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Pgrep in a loop: %v, want ErrAmbiguous", err)
	}
	if m, err := Pgrep(fsys, "^b$", 0); err != nil || m.Root.Pid != 12 {
		t.Errorf("Pgrep of a self-parent = %+v, %v", m, err)
	}
}
