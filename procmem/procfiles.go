package procmem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cmdline returns the arguments of the process (see FS.Cmdline).
func (p *Process) Cmdline() ([]string, error) {
	args, err := p.fs.Cmdline(p.pid)
	if err != nil {
		return nil, p.fileErr(err, "")
	}
	return args, nil
}

// Exe returns the path of the executable, in the target's mount namespace.
// It ends in " (deleted)" when the file has been removed or replaced since
// the process started; OpenFile accepts it either way.
func (p *Process) Exe() (string, error) {
	s, err := os.Readlink(p.path("exe"))
	if err != nil {
		return "", p.fileErr(err, "")
	}
	return s, nil
}

// Comm returns the command name, which the kernel truncates to 15 bytes.
func (p *Process) Comm() (string, error) {
	b, err := p.readFile("comm")
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b, []byte{'\n'})), nil
}

// Stat parses /proc/PID/stat.
func (p *Process) Stat() (ProcStat, error) {
	b, err := p.readFile("stat")
	if err != nil {
		return ProcStat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d stat: %w", p.pid, err)
	}
	return st, nil
}

// Threads returns the ids of the threads of the process, sorted.
func (p *Process) Threads() ([]int, error) {
	ents, err := os.ReadDir(p.path("task"))
	if err != nil {
		return nil, p.fileErr(err, "")
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		tids = append(tids, tid)
	}
	slices.Sort(tids)
	// A listing is the one sure word on which threads are gone, so the
	// run-state files of the others are closed here too.
	if st := p.states.Load(); st != nil {
		st.Prune(tids)
	}
	return tids, nil
}

// Maps returns the memory mappings of the process, in address order.
func (p *Process) Maps() ([]Mapping, error) {
	f, err := os.Open(p.path("maps"))
	if err != nil {
		return nil, p.fileErr(err, "")
	}
	defer f.Close()
	maps, err := ParseMaps(f)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", p.pid, err)
	}
	return maps, nil
}

// Status holds the fields of /proc/PID/status that a profiler needs to
// explain a failure or to find the process in its own pid namespace.
type Status struct {
	Name      string
	State     byte // R, S, D, T, t, Z, ...
	Tgid      int
	Pid       int
	PPid      int
	TracerPid int    // 0 when no debugger or profiler is attached
	Uid       [4]int // real, effective, saved, filesystem
	Gid       [4]int // real, effective, saved, filesystem
	NSpid     []int  // pid in each nested pid namespace, outermost first; nil before Linux 4.1
	Threads   int
	CapEff    uint64
	VmRSS     int64 // resident memory now, in kB; 0 for a zombie or kernel thread
	VmHWM     int64 // the most resident memory so far, in kB
}

// Status parses /proc/PID/status.
func (p *Process) Status() (*Status, error) {
	b, err := p.readFile("status")
	if err != nil {
		return nil, err
	}
	st, err := parseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("process %d status: %w", p.pid, err)
	}
	return st, nil
}

func parseStatus(b []byte) (*Status, error) {
	st := new(Status)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Name":
			st.Name = val
		case "State":
			if val == "" {
				return nil, errors.New("empty State")
			}
			st.State = val[0]
		case "Tgid":
			st.Tgid, err = strconv.Atoi(val)
		case "Pid":
			st.Pid, err = strconv.Atoi(val)
		case "PPid":
			st.PPid, err = strconv.Atoi(val)
		case "TracerPid":
			st.TracerPid, err = strconv.Atoi(val)
		case "Threads":
			st.Threads, err = strconv.Atoi(val)
		case "Uid":
			err = parseIDs(st.Uid[:], val)
		case "Gid":
			err = parseIDs(st.Gid[:], val)
		case "NSpid":
			fields := strings.Fields(val)
			if len(fields) > maxPidNSLevels {
				err = fmt.Errorf("%d levels, the kernel nests at most %d", len(fields), maxPidNSLevels)
				break
			}
			for _, f := range fields {
				n, perr := strconv.Atoi(f)
				if perr != nil {
					err = perr
					break
				}
				st.NSpid = append(st.NSpid, n)
			}
		case "CapEff":
			st.CapEff, err = strconv.ParseUint(val, 16, 64)
		case "VmRSS":
			st.VmRSS, err = strconv.ParseInt(strings.TrimSuffix(val, " kB"), 10, 64)
		case "VmHWM":
			st.VmHWM, err = strconv.ParseInt(strings.TrimSuffix(val, " kB"), 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return st, sc.Err()
}

// ThreadStatus parses /proc/PID/task/TID/status. Its NSpid is the
// thread's id in each pid namespace, which is how ids the target keeps in
// its own memory are matched with the FS's.
func (p *Process) ThreadStatus(tid int) (*Status, error) {
	tidStr := strconv.Itoa(tid)
	b, err := os.ReadFile(p.path("task", tidStr, "status"))
	if err != nil {
		return nil, p.fileErr(err, tidStr)
	}
	st, err := parseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("thread %d status: %w", tid, err)
	}
	return st, nil
}

func parseIDs(dst []int, val string) error {
	f := strings.Fields(val)
	if len(f) != len(dst) {
		return fmt.Errorf("want %d ids, got %q", len(dst), val)
	}
	for i := range dst {
		n, err := strconv.Atoi(f[i])
		if err != nil {
			return err
		}
		dst[i] = n
	}
	return nil
}

// ThreadStat returns the state letter of thread tid (R, S, D, t, ...) from
// /proc/PID/task/TID/stat. To poll many threads repeatedly, use a
// ThreadStater.
func (p *Process) ThreadStat(tid int) (state byte, err error) {
	tidStr := strconv.Itoa(tid)
	b, err := os.ReadFile(p.path("task", tidStr, "stat"))
	if err != nil {
		return 0, p.fileErr(err, tidStr)
	}
	st, err := statState(b)
	if err != nil {
		return 0, fmt.Errorf("thread %d stat: %w", tid, err)
	}
	return st, nil
}

// StoppedInSyscall reports, for a thread stopped under ptrace, whether it
// was blocked in a system call when it stopped (waiting: a futex, select,
// read) rather than running. A stopped thread's run state is only 't';
// /proc/PID/task/TID/syscall still names the call it was in, or -1 when
// it was running user code.
//
// A thread stopped on a system call instruction counts as in that call.
// The kernel restarts a blocking call that a stop interrupted by backing
// the thread up to the instruction that made it, so a thread that an
// earlier pause took out of its wait, and that is stopped again before it
// has re-entered the call (the next pause came first), reads -1 there,
// though it only left the wait for the pause. A running thread stopped on
// such an instruction by chance was about to make a call all the same.
func (p *Process) StoppedInSyscall(tid int) (bool, error) {
	tidStr := strconv.Itoa(tid)
	b, err := os.ReadFile(p.path("task", tidStr, "syscall"))
	if err != nil {
		return false, p.fileErr(err, tidStr)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false, fmt.Errorf("thread %d syscall: empty", tid)
	}
	if f[0] == "running" {
		return false, nil
	}
	if f[0] != "-1" {
		return true, nil
	}
	pc, err := strconv.ParseUint(strings.TrimPrefix(f[len(f)-1], "0x"), 16, 64)
	return err == nil && len(f) == 3 && p.atSyscallInsn(pc), nil
}

// syscallInsn is the instruction that enters the kernel, the one a
// restarted call is backed up to: syscall on amd64, svc #0 on arm64. The
// target runs on pyprof's own architecture.
var syscallInsn = map[string][]byte{
	"amd64": {0x0f, 0x05},
	"arm64": {0x01, 0x00, 0x00, 0xd4},
}[runtime.GOARCH]

// atSyscallInsn reports whether the instruction at pc in the process's
// memory is syscallInsn.
func (p *Process) atSyscallInsn(pc uint64) bool {
	if len(syscallInsn) == 0 || pc == 0 || pc > math.MaxInt64-uint64(len(syscallInsn)) {
		return false
	}
	b := make([]byte, len(syscallInsn))
	if _, err := p.ReadAt(b, int64(pc)); err != nil {
		return false
	}
	return bytes.Equal(b, syscallInsn)
}

// ThreadSyscall reports what thread tid is doing from
// /proc/PID/task/TID/syscall: running is true when it is on a CPU in user
// space; otherwise nr is the number of the system call it is blocked in, or
// -1 when it is blocked outside one (a page fault, for instance). Reading the
// file needs the same rights as ptrace.
func (p *Process) ThreadSyscall(tid int) (nr int64, running bool, err error) {
	tidStr := strconv.Itoa(tid)
	b, err := os.ReadFile(p.path("task", tidStr, "syscall"))
	if err != nil {
		return 0, false, p.fileErr(err, tidStr)
	}
	return parseSyscall(b)
}

func parseSyscall(b []byte) (nr int64, running bool, err error) {
	s := strings.TrimSpace(string(b))
	if s == "running" {
		return 0, true, nil
	}
	first, _, _ := strings.Cut(s, " ")
	nr, err = strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed syscall file %.40q", s)
	}
	return nr, false, nil
}

// ThreadStater reads the run state of threads repeatedly at one system call
// per thread: it keeps each /proc/PID/task/TID/stat open and rereads it from
// offset 0, where procfs regenerates the contents. Each Process has one
// (see ThreadStates), which owns those files: it closes the file of a
// thread found gone, those of the threads a listing (Threads) or a Prune
// leaves out, and all of them when the Process is closed. It is safe for
// concurrent use.
type ThreadStater struct {
	p     *Process
	mu    sync.Mutex
	files map[int]*statFile
	// gen numbers the calls to Prune; a file that Prune is told is live
	// gets the call's number.
	gen      uint64
	buf      [512]byte
	syscalls atomic.Uint64
}

type statFile struct {
	f   *os.File
	gen uint64
}

// ThreadStates returns the process's ThreadStater, made on first use.
func (p *Process) ThreadStates() *ThreadStater {
	if s := p.states.Load(); s != nil {
		return s
	}
	s := &ThreadStater{p: p, files: make(map[int]*statFile)}
	if p.states.CompareAndSwap(nil, s) {
		return s
	}
	return p.states.Load()
}

// State returns the state letter of thread tid. The error wraps
// syscall.ESRCH once the thread has exited; its file is then closed.
func (s *ThreadStater) State(tid int) (byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sf := s.files[tid]
	if sf == nil {
		tidStr := strconv.Itoa(tid)
		s.syscalls.Add(1)
		f, err := os.Open(s.p.path("task", tidStr, "stat"))
		if err != nil {
			return 0, s.p.fileErr(err, tidStr)
		}
		sf = &statFile{f: f, gen: s.gen}
		s.files[tid] = sf
	}
	f := sf.f
	var n int
	var err error
	for {
		s.syscalls.Add(1)
		// Fd is safe here: procfs files are never put in the
		// runtime poller, so it does not change their mode.
		n, err = unix.Pread(int(f.Fd()), s.buf[:], 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err == nil && n == 0 {
		err = syscall.ESRCH
	}
	if err != nil {
		f.Close()
		delete(s.files, tid)
		return 0, fmt.Errorf("thread %d stat: %w", tid, err)
	}
	st, err := statState(s.buf[:n])
	if err != nil {
		return 0, fmt.Errorf("thread %d: %w", tid, err)
	}
	return st, nil
}

// Prune closes the files of threads not in live, so that a long-running
// sampler of a process that starts and ends threads keeps no stale
// descriptors: a thread that exits while nobody asks for its state would
// otherwise keep its file until the next listing. A sampler calls it now
// and then with the threads it sees, which costs no system call. It costs a map lookup per thread in live and one step per
// open file: no more for a process of many threads than a sample does.
func (s *ThreadStater) Prune(live []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	for _, tid := range live {
		if sf := s.files[tid]; sf != nil {
			sf.gen = s.gen
		}
	}
	for tid, sf := range s.files {
		if sf.gen != s.gen {
			sf.f.Close()
			delete(s.files, tid)
		}
	}
}

// Open returns the number of files held open.
func (s *ThreadStater) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files)
}

// Syscalls returns the number of system calls the ThreadStater has made.
func (s *ThreadStater) Syscalls() uint64 { return s.syscalls.Load() }

// Close closes all files. The ThreadStater stays usable: a later State
// opens its thread's file again.
func (s *ThreadStater) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for tid, sf := range s.files {
		errs = append(errs, sf.f.Close())
		delete(s.files, tid)
	}
	return errors.Join(errs...)
}
