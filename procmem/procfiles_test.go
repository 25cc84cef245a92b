package procmem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"unsafe"
)

func fixtureProcess(t *testing.T) *Process {
	t.Helper()
	p, err := NewFS("testdata/proc").Open(4242)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFixtureStatus(t *testing.T) {
	st, err := fixtureProcess(t).Status()
	if err != nil {
		t.Fatal(err)
	}
	want := &Status{
		Name:      "python3.11",
		State:     'S',
		Tgid:      4242,
		Pid:       4242,
		PPid:      4200,
		TracerPid: 0,
		Uid:       [4]int{1000, 1001, 1002, 1003},
		Gid:       [4]int{100, 101, 102, 103},
		NSpid:     []int{4242, 17},
		Threads:   3,
		CapEff:    0xa80425fb,
		VmRSS:     7000,
		VmHWM:     8000,
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("got  %+v\nwant %+v", st, want)
	}
}

func TestParseStatusErrors(t *testing.T) {
	for _, in := range []string{
		"Uid:\t1\t2\t3\n",
		"PPid:\tx\n",
		"NSpid:\t1 x\n",
		"CapEff:\tzz\n",
		"State:\t\n",
		"VmRSS:\tmany kB\n",
	} {
		if st, err := parseStatus([]byte(in)); err == nil {
			t.Errorf("parseStatus(%q) = %+v, want error", in, st)
		}
	}
}

func TestFixtureFiles(t *testing.T) {
	p := fixtureProcess(t)
	args, err := p.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"python3.11", "-c", `print("a b")`}; !slices.Equal(args, want) {
		t.Errorf("Cmdline = %q, want %q", args, want)
	}
	comm, err := p.Comm()
	if err != nil || comm != "python3.11" {
		t.Errorf("Comm = %q, %v", comm, err)
	}
	tids, err := p.Threads()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4242, 4250, 4301}; !slices.Equal(tids, want) {
		t.Errorf("Threads = %v, want %v", tids, want)
	}
	maps, err := p.Maps()
	if err != nil || len(maps) != 15 {
		t.Errorf("Maps: %d mappings, %v", len(maps), err)
	}
}

func TestFixtureThreadStat(t *testing.T) {
	p := fixtureProcess(t)
	for _, tc := range []struct {
		tid  int
		want byte
	}{
		{4242, 'S'},
		{4250, 'R'}, // comm "my (weird)) comm"
		{4301, 't'}, // comm "a b"
	} {
		st, err := p.ThreadStat(tc.tid)
		if err != nil || st != tc.want {
			t.Errorf("ThreadStat(%d) = %q, %v; want %q", tc.tid, st, err, tc.want)
		}
	}
	if _, err := p.ThreadStat(1); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ThreadStat of a missing thread: %v, want ESRCH", err)
	}
}

func TestFixtureThreadSyscall(t *testing.T) {
	p := fixtureProcess(t)
	for _, tc := range []struct {
		tid     int
		nr      int64
		running bool
	}{
		{4242, 7, false}, // poll
		{4250, 0, true},
		{4301, -1, false}, // blocked outside a system call
	} {
		nr, running, err := p.ThreadSyscall(tc.tid)
		if err != nil || nr != tc.nr || running != tc.running {
			t.Errorf("ThreadSyscall(%d) = %d, %v, %v; want %d, %v", tc.tid, nr, running, err, tc.nr, tc.running)
		}
	}
	if _, _, err := parseSyscall([]byte("x 0x1\n")); err == nil {
		t.Error("parseSyscall accepted garbage")
	}
}

// insnFixture holds a system call instruction after other code, in this
// process's memory, for StoppedInSyscall to find at a stopped thread's pc.
var insnFixture = append([]byte{0x90, 0x90, 0x90, 0x90}, syscallInsn...)

// TestStoppedInSyscall reads fixture syscall files of stopped threads, with
// their pcs in this process's own memory. A thread stopped with -1 on a
// system call instruction is restarting a call that a pause interrupted
// (the kernel backs it up to the instruction): it was waiting, as much as
// one stopped inside the call.
func TestStoppedInSyscall(t *testing.T) {
	if len(syscallInsn) == 0 {
		t.Skipf("no system call instruction known on %s", runtime.GOARCH)
	}
	insn := uint64(uintptr(unsafe.Pointer(&insnFixture[4])))
	other := uint64(uintptr(unsafe.Pointer(&insnFixture[0])))
	pid := os.Getpid()
	root := t.TempDir()
	cases := []struct {
		syscall string
		waiting bool
	}{
		{"202 0x55e34580cf90 0x189 0x0 0x0 0x0 0xffffffff 0x7ffeeb7764e0 0x7f4badb98f16", true}, // in a futex
		{"219 0x0 0x0 0x0 0x0 0x0 0x0 0x7ffeeb7764e0 0x7f4badb98f14", true},                     // restart_syscall
		{fmt.Sprintf("-1 0x7ffeeb7764e0 %#x", insn), true},                                      // backed up to restart its call
		{fmt.Sprintf("-1 0x7ffeeb7764e0 %#x", other), false},                                    // in user code
		{"-1 0x7ffeeb7764e0 0x0", false},
		{"-1 0x7ffeeb7764e0 0x10", false}, // pc unreadable
		{"-1 0x7ffeeb7764e0 0xzz", false},
		{"running", false},
	}
	for i, tc := range cases {
		dir := filepath.Join(root, strconv.Itoa(pid), "task", strconv.Itoa(i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "syscall"), []byte(tc.syscall+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewFS(root).Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i, tc := range cases {
		waiting, err := p.StoppedInSyscall(i + 1)
		if err != nil || waiting != tc.waiting {
			t.Errorf("syscall file %q: waiting %v, %v; want %v", tc.syscall, waiting, err, tc.waiting)
		}
	}
	runtime.KeepAlive(insnFixture)
}

func TestFixtureExe(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "77"), 0o755); err != nil {
		t.Fatal(err)
	}
	const target = "/usr/bin/python3.11 (deleted)"
	if err := os.Symlink(target, filepath.Join(root, "77", "exe")); err != nil {
		t.Fatal(err)
	}
	p, err := NewFS(root).Open(77)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := p.Exe()
	if err != nil || exe != target {
		t.Errorf("Exe = %q, %v", exe, err)
	}
	if _, err := p.Comm(); !errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		t.Errorf("missing comm of a present process: %v, want ENOENT", err)
	}
	if f, err := p.OpenFile(target); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenFile of a deleted file with no mapping = %v, %v", f, err)
	}

	// Without a root to go through, the executable is still reachable
	// through the exe link.
	realExe := filepath.Join(root, "real-exe")
	if err := os.WriteFile(realExe, []byte("ELF?"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "77", "exe"))
	if err := os.Symlink(realExe, filepath.Join(root, "77", "exe")); err != nil {
		t.Fatal(err)
	}
	f, err := p.OpenFile(realExe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Name() != filepath.Join(root, "77", "exe") {
		t.Errorf("opened %s, want the exe link", f.Name())
	}
}

func TestOpenMissing(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   FS
		pid  int
	}{
		{"fixture", NewFS("testdata/proc"), 4243},
		{"zero", DefaultFS, 0},
		{"negative", DefaultFS, -5},
		{"live", DefaultFS, 1 << 30}, // above pid_max
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.fs.Open(tc.pid)
			if !errors.Is(err, syscall.ESRCH) {
				t.Errorf("Open(%d) = %v, %v; want ESRCH", tc.pid, p, err)
			}
		})
	}
}

// A process that exits after Open reports ESRCH from every method.
func TestProcessGone(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), memScript)
	p := c.open(t)
	viaMem := c.open(t)
	viaMem.forceMem = true
	buf := make([]byte, 8)
	if _, err := viaMem.ReadAt(buf, int64(c.info["big"])); err != nil {
		t.Fatal(err)
	}
	late := c.open(t) // falls back only after the process is gone
	late.forceMem = true
	tids, err := p.Threads()
	if err != nil {
		t.Fatal(err)
	}
	stater := p.ThreadStates()
	defer stater.Close()
	if _, err := stater.State(tids[0]); err != nil {
		t.Fatal(err)
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()

	checks := map[string]error{}
	_, checks["ReadAt"] = p.ReadAt(buf, int64(c.info["big"]))
	checks["ReadBatch"] = p.ReadBatch([]uint64{c.info["big"]}, [][]byte{buf})
	_, checks["Threads"] = p.Threads()
	_, checks["Status"] = p.Status()
	_, checks["Maps"] = p.Maps()
	_, checks["ThreadStat"] = p.ThreadStat(tids[0])
	_, checks["ThreadStater"] = stater.State(tids[0])
	_, checks["Pause"] = p.Pause()
	_, checks["ReadAt /proc/PID/mem"] = viaMem.ReadAt(buf, int64(c.info["big"]))
	checks["ReadBatch /proc/PID/mem"] = viaMem.ReadBatch([]uint64{c.info["big"]}, [][]byte{buf})
	_, checks["ReadAt /proc/PID/mem opened late"] = late.ReadAt(buf, int64(c.info["big"]))
	for name, err := range checks {
		if !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: %v, want ESRCH", name, err)
		}
	}
}

func TestThreadStaterPrune(t *testing.T) {
	for _, tc := range []struct {
		name     string
		read     []int // threads whose state is read first
		live     []int // what Prune is told
		wantOpen []int // threads whose files stay open
	}{
		{"all live", []int{4242, 4250, 4301}, []int{4301, 4242, 4250}, []int{4242, 4250, 4301}},
		{"one gone", []int{4242, 4250, 4301}, []int{4242, 4301}, []int{4242, 4301}},
		{"none live", []int{4242, 4250}, nil, nil},
		{"live never read", []int{4242}, []int{4242, 4250, 9999}, []int{4242}},
		{"nothing open", nil, []int{4242}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fixtureProcess(t).ThreadStates()
			defer s.Close()
			for _, tid := range tc.read {
				if _, err := s.State(tid); err != nil {
					t.Fatal(err)
				}
			}
			s.Prune(tc.live)
			if got := s.Open(); got != len(tc.wantOpen) {
				t.Errorf("%d files open after Prune, want %d", got, len(tc.wantOpen))
			}
			// A thread that stayed open is read again without opening
			// its file: one syscall.
			for _, tid := range tc.wantOpen {
				before := s.Syscalls()
				if _, err := s.State(tid); err != nil {
					t.Fatal(err)
				}
				if n := s.Syscalls() - before; n != 1 {
					t.Errorf("State(%d) after Prune took %d syscalls, want 1 (its file kept)", tid, n)
				}
			}
			// A second Prune with the same live threads keeps them.
			s.Prune(tc.live)
			if got := s.Open(); got != len(tc.wantOpen) {
				t.Errorf("%d files open after a second Prune, want %d", got, len(tc.wantOpen))
			}
		})
	}
}
