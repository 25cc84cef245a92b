package procmem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	const tail = " 0 0 0 -1 %s 0 0 0 0 0 0 0 0 20 0 1 0 18"
	for _, tc := range []struct {
		in   string
		want ProcStat
		ok   bool
	}{
		{"42 (python3) R 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 349180 3133440 358 18446744073709551615 1 1 0 0 0\n",
			ProcStat{Pid: 42, Comm: "python3", State: 'R', PPid: 1, Flags: 4194304, StartTime: 349180}, true},
		{"4242 (python3.11) S 4200 4242 4200 34816 4242 4194304 1234 0 0 0 5 1 0 0 20 0 3 0 100 24764416 2000\n",
			ProcStat{Pid: 4242, Comm: "python3.11", State: 'S', PPid: 4200, Flags: 4194304, UTime: 5, STime: 1, StartTime: 100}, true},
		// A comm may hold spaces and parentheses.
		{"7 (a) (b c) S 3 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n",
			ProcStat{Pid: 7, Comm: "a) (b c", State: 'S', PPid: 3, StartTime: 99}, true},
		{"7 (a) (b)) R 1" + fmt.Sprintf(tail, "0"), ProcStat{Pid: 7, Comm: "a) (b)", State: 'R', PPid: 1, StartTime: 18}, true},
		{"8 () Z 3 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
			ProcStat{Pid: 8, PPid: 3, State: 'Z', StartTime: 5}, true},
		// A kernel thread, and a zombie.
		{"2 (kthreadd) S 0" + fmt.Sprintf(tail, "2129984"),
			ProcStat{Pid: 2, Comm: "kthreadd", State: 'S', PPid: 0, Flags: 2129984, KernelThread: true, StartTime: 18}, true},
		{"4242 (sleep) Z 4200" + fmt.Sprintf(tail, "4227076"),
			ProcStat{Pid: 4242, Comm: "sleep", State: 'Z', PPid: 4200, Flags: 4227076, StartTime: 18}, true},

		{"", ProcStat{}, false},
		{"42", ProcStat{}, false},
		{"42 (x", ProcStat{}, false},
		{"7 x S 1", ProcStat{}, false},
		{"7 (x) S 1 0 0", ProcStat{}, false},
		{"1 (x)S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", ProcStat{}, false},
		{"7 (x) S one" + fmt.Sprintf(tail, "0"), ProcStat{}, false},
		{"x (y) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", ProcStat{}, false},
		{"1 (x) S y 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", ProcStat{}, false},
		{"1 (x) SS 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", ProcStat{}, false},
		{"1 (x) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5", ProcStat{}, false},
		{"1 (x) S 1 0 0 0 -1 -4 0 0 0 0 0 0 0 0 20 0 1 0 5", ProcStat{}, false},
		{"1 (x) S 1 0 0 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 5", ProcStat{}, false},
	} {
		st, err := parseStat([]byte(tc.in))
		if (err == nil) != tc.ok || st != tc.want && tc.ok {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v", tc.in, st, err, tc.want)
		}
	}
}

func TestStatState(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want byte
		ok   bool
	}{
		{"1 (init) S 0", 'S', true},
		{"1 () R 0", 'R', true},
		{"1 ()) (() D 0", 'D', true},
		{"1 (x)", 0, false},
		{"1 (x) ", 0, false},
		{"1 x S 0", 0, false},
		{"1 (x)S 0", 0, false},
	} {
		st, err := statState([]byte(tc.in))
		if (err == nil) != tc.ok || st != tc.want {
			t.Errorf("statState(%q) = %q, %v", tc.in, st, err)
		}
	}
}

// FuzzParseStat checks that what parseStat accepts is what the line says:
// the comm is between parentheses in it, and the hot path's statState
// reads the same state.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (python3) R 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 349180 3133440 358\n"))
	f.Add([]byte("7 (a) (b c) S 3 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n"))
	f.Add([]byte("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 18"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil {
			return
		}
		if !strings.Contains(string(b), "("+st.Comm+")") {
			t.Errorf("comm %q is not in %q", st.Comm, b)
		}
		if state, err := statState(b); err != nil || state != st.State {
			t.Errorf("statState = %q, %v; parseStat says %q", state, err, st.State)
		}
		if st.KernelThread != (st.Flags&pfKthread != 0) {
			t.Errorf("KernelThread %v with flags %#x", st.KernelThread, st.Flags)
		}
	})
}

// FuzzParseStatus checks that the status parser never panics and bounds
// what it keeps.
func FuzzParseStatus(f *testing.F) {
	for _, path := range []string{"testdata/proc/4242/status", "testdata/proc/4242/task/4250/status"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("NSpid:\t1 2 3\nState:\tZ (zombie)\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStatus(b)
		if err != nil {
			return
		}
		if len(st.NSpid) > maxPidNSLevels {
			t.Errorf("%d NSpid levels kept", len(st.NSpid))
		}
	})
}

// TestFileReaderGrows reads a file larger than the reader's first buffer,
// as a long command line is.
func TestFileReaderGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	want := strings.Repeat("0123456789", 5000)
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	var r fileReader
	for range 2 {
		got, err := r.read(path)
		if err != nil || string(got) != want {
			t.Fatalf("read: %d bytes, %v; want %d bytes", len(got), err, len(want))
		}
	}
}

// writeFixture writes files (paths relative to root, such as "7/stat")
// under a new temporary /proc root and returns its FS.
func writeFixture(t *testing.T, files map[string]string) FS {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return NewFS(root)
}

// statLine is a stat line in the kernel's format, fields 3 to 52.
func statLine(pid int, comm string, state byte, ppid int, flags uint64) string {
	return fmt.Sprintf("%d (%s) %c %d %d %d 0 -1 %d 100 0 0 0 7 3 0 0 20 0 1 0 %d 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		pid, comm, state, ppid, pid, pid, flags, 1000+pid)
}

// TestFixtureStats scans a fixture tree with what a real /proc holds
// besides ordinary processes: a comm with spaces and parentheses, a
// zombie, a kernel thread, a process that exited between the listing and
// the read (an empty directory), a stat that does not parse, a stat that
// names another pid, and entries that are not processes.
func TestFixtureStats(t *testing.T) {
	fsys := writeFixture(t, map[string]string{
		"1/stat":       statLine(1, "systemd", 'S', 0, 0x400100),
		"2/stat":       statLine(2, "kthreadd", 'S', 0, 0x208040),
		"7/stat":       statLine(7, "a) (b c", 'R', 1, 0x400000),
		"8/stat":       statLine(8, "gunicorn", 'Z', 1, 0x40040c),
		"9/cmdline":    "",
		"10/stat":      "10 (x",
		"11/stat":      statLine(12, "other", 'S', 1, 0),
		"self/stat":    statLine(1, "systemd", 'S', 0, 0),
		"sys/kernel/x": "",
	})
	stats, err := fsys.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := []ProcStat{
		{Pid: 1, Comm: "systemd", State: 'S', Flags: 0x400100, UTime: 7, STime: 3, StartTime: 1001},
		{Pid: 2, Comm: "kthreadd", State: 'S', Flags: 0x208040, KernelThread: true, UTime: 7, STime: 3, StartTime: 1002},
		{Pid: 7, Comm: "a) (b c", State: 'R', PPid: 1, Flags: 0x400000, UTime: 7, STime: 3, StartTime: 1007},
		{Pid: 8, Comm: "gunicorn", State: 'Z', PPid: 1, Flags: 0x40040c, UTime: 7, STime: 3, StartTime: 1008},
	}
	if !slices.Equal(stats, want) {
		t.Errorf("Stats() =\n%+v\nwant\n%+v", stats, want)
	}
	for _, pid := range []int{9, 12345, 0, -1} {
		if _, err := fsys.Stat(pid); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Stat(%d): %v, want ESRCH", pid, err)
		}
	}
	for _, pid := range []int{10, 11} {
		if st, err := fsys.Stat(pid); err == nil || errors.Is(err, syscall.ESRCH) {
			t.Errorf("Stat(%d) = %+v, %v; want a parse error", pid, st, err)
		}
	}
	if _, err := NewFS(filepath.Join(t.TempDir(), "none")).Stats(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stats() on a missing root: %v, want ErrNotExist", err)
	}
}

// TestFixtureCmdline reads command lines as the kernel writes them,
// through gopsutil rooted at the fixture.
func TestFixtureCmdline(t *testing.T) {
	cases := map[string][]string{
		"":                                   nil,
		"\x00\x00":                           nil,
		"python3\x00app.py\x00":              {"python3", "app.py"},
		"a\x00\x00b\x00":                     {"a", "", "b"},
		"gunicorn: master [app]\x00\x00\x00": {"gunicorn: master [app]"},
		"no terminator":                      {"no terminator"},
	}
	files := map[string]string{}
	var ins []string
	for in := range cases {
		ins = append(ins, in)
	}
	slices.Sort(ins)
	for i, in := range ins {
		files[strconv.Itoa(i+1)+"/cmdline"] = in
	}
	fsys := writeFixture(t, files)
	for i, in := range ins {
		got, err := fsys.Cmdline(i + 1)
		if err != nil || !slices.Equal(got, cases[in]) {
			t.Errorf("Cmdline of %q = %q, %v; want %q", in, got, err, cases[in])
		}
	}
	if _, err := fsys.Cmdline(12345); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Cmdline of a missing process: %v, want ESRCH", err)
	}
}

// TestFixtureUsage reads CPU time and resident memory through gopsutil
// rooted at the fixture: utime 5 and stime 1 ticks, 2000 resident pages.
func TestFixtureUsage(t *testing.T) {
	stat, err := os.ReadFile("testdata/proc/4242/task/4242/stat")
	if err != nil {
		t.Fatal(err)
	}
	fsys := writeFixture(t, map[string]string{
		"4242/stat":  string(stat),
		"4242/statm": "6046 2000 1000 500 0 3000 0\n",
	})
	u, err := fsys.Usage(4242)
	if want := (Usage{CPU: 60 * time.Millisecond, RSS: 2000 * int64(os.Getpagesize())}); err != nil || u != want {
		t.Errorf("Usage = %+v, %v; want %+v", u, err, want)
	}
	if _, err := fsys.Usage(12345); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("Usage of a missing process: %v, want ESRCH", err)
	}
}

// TestThreadVanishes removes a thread's directory after the threads are
// listed, as when it exits meanwhile: reading it reports ESRCH, and the
// next listing closes the run-state files of the threads it no longer
// holds, as closing the process closes the rest.
func TestThreadVanishes(t *testing.T) {
	root := copyFixture(t)
	p, err := NewFS(root).Open(4242)
	if err != nil {
		t.Fatal(err)
	}
	tids, err := p.Threads()
	if err != nil || !slices.Equal(tids, []int{4242, 4250, 4301}) {
		t.Fatalf("Threads = %v, %v", tids, err)
	}
	s := p.ThreadStates()
	for _, tid := range tids {
		if _, err := s.State(tid); err != nil {
			t.Fatal(err)
		}
	}
	for _, tid := range []int{4250, 4301} {
		if err := os.RemoveAll(filepath.Join(root, "4242", "task", strconv.Itoa(tid))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.ThreadStat(4301); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ThreadStat of a vanished thread: %v, want ESRCH", err)
	}
	if _, err := p.ThreadStatus(4301); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ThreadStatus of a vanished thread: %v, want ESRCH", err)
	}
	if got := s.Open(); got != 3 {
		t.Fatalf("%d files open before the listing, want 3", got)
	}
	if tids, err := p.Threads(); err != nil || !slices.Equal(tids, []int{4242}) {
		t.Errorf("Threads after two exited = %v, %v", tids, err)
	}
	if got := s.Open(); got != 1 {
		t.Errorf("%d files open after the listing, want 1", got)
	}
	if p.ThreadStates() != s {
		t.Error("ThreadStates made a second ThreadStater")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Open(); got != 0 {
		t.Errorf("%d files open after Close, want 0", got)
	}
}
