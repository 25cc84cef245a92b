package proctree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
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
	procs, err := fsys.List()
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
	if _, err := NewFS(filepath.Join(t.TempDir(), "none")).List(); !errors.Is(err, os.ErrNotExist) {
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
		got, err := fsys.Get(tt.pid)
		if err != nil {
			t.Errorf("Get(%d): %v", tt.pid, err)
			continue
		}
		if !equalProc(got, tt.want) {
			t.Errorf("Get(%d) = %+v, want %+v", tt.pid, got, tt.want)
		}
	}
	for _, pid := range []int{0, -1, 12345} {
		if _, err := fsys.Get(pid); !errors.Is(err, syscall.ESRCH) {
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
		got, err := fsys.Ancestors(tt.pid)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Ancestors(%d) = %v, %v; want %v", tt.pid, got, err, tt.want)
		}
	}
	if _, err := fsys.Ancestors(12345); !errors.Is(err, syscall.ESRCH) {
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
	got, err := fsys.Ancestors(pidPyprof)
	if err != nil || len(got) != 0 {
		t.Errorf("Ancestors with the parent gone, not yet reparented = %v, %v; want none", got, err)
	}
	// Reparent to init, as the kernel does.
	writeProc(t, fsys.Root(), fproc{pid: pidPyprof, ppid: pidInit, comm: "pyprof", exe: "/usr/local/bin/pyprof", argv: []string{"pyprof"}})
	got, err = fsys.Ancestors(pidPyprof)
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
		got, err := fsys.Descendants(tt.root)
		if err != nil || !slices.Equal(pids(got), tt.want) {
			t.Errorf("Descendants(%d) = %v, %v; want %v", tt.root, pids(got), err, tt.want)
		}
	}
	for _, pid := range []int{600, 12345} { // a zombie, a missing process
		if _, err := fsys.Descendants(pid); !errors.Is(err, syscall.ESRCH) {
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
	if _, err := fsys.Ancestors(10); err != nil {
		t.Error(err)
	}
	if got, err := fsys.Descendants(10); err != nil || !slices.Equal(pids(got), []int{11}) {
		t.Errorf("Descendants(10) = %v, %v", pids(got), err)
	}
	if _, err := fsys.Pgrep("^a$", 0); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Pgrep in a loop: %v, want ErrAmbiguous", err)
	}
	if m, err := fsys.Pgrep("^b$", 0); err != nil || m.Root.Pid != 12 {
		t.Errorf("Pgrep of a self-parent = %+v, %v", m, err)
	}
}

func TestParseStat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Proc
	}{
		{"42 (python3) R 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 349180 3133440 358 18446744073709551615 1 1 0 0 0\n",
			Proc{Pid: 42, PPid: 1, Comm: "python3", State: 'R', StartTime: 349180}},
		// A comm may hold spaces and parentheses.
		{"7 (a) (b c) S 3 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n",
			Proc{Pid: 7, PPid: 3, Comm: "a) (b c", State: 'S', StartTime: 99}},
		{"8 () Z 3 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
			Proc{Pid: 8, PPid: 3, State: 'Z', StartTime: 5}},
	} {
		got, _, err := parseStat([]byte(tt.in))
		if err != nil || !equalProc(got, tt.want) {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{
		"", "42", "42 (x", "x (y) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"1 (x) S 1 0 0", "1 (x) S y 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"1 (x) SS 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"1 (x) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5",
		"1 (x) S 1 0 0 0 -1 -4 0 0 0 0 0 0 0 0 20 0 1 0 5",
	} {
		if p, _, err := parseStat([]byte(in)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", in, p)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                   nil,
		"\x00\x00":                           nil,
		"python3\x00app.py\x00":              {"python3", "app.py"},
		"a\x00\x00b\x00":                     {"a", "", "b"},
		"gunicorn: master [app]\x00\x00\x00": {"gunicorn: master [app]"},
		"no terminator":                      {"no terminator"},
	} {
		if got := parseCmdline([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("parseCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReaderGrows reads a file larger than the reader's first buffer, as a
// long command line is.
func TestReaderGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	want := strings.Repeat("0123456789", 5000)
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	var r reader
	for range 2 {
		got, err := r.read(path)
		if err != nil || string(got) != want {
			t.Fatalf("read: %d bytes, %v; want %d bytes", len(got), err, len(want))
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (python3) R 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 349180 3133440 358\n"))
	f.Add([]byte("7 (a) (b c) S 3 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, err := parseStat(b)
		if err == nil && !strings.Contains(string(b), "("+p.Comm+")") {
			t.Errorf("comm %q is not in %q", p.Comm, b)
		}
	})
}
