package procmem

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// FS is a procfs mount point. Tests root it at a fixture tree; a profiler
// running in a container may root it at a bind mount of the host's /proc.
type FS struct {
	root string
}

// NewFS returns an FS rooted at root, normally "/proc".
func NewFS(root string) FS {
	return FS{root: root}
}

// DefaultFS is the host's /proc.
var DefaultFS = NewFS("/proc")

// Root returns the directory the FS was created with.
func (fsys FS) Root() string { return fsys.root }

// Open returns a handle on process pid. The error wraps syscall.ESRCH when
// there is no such process.
func (fsys FS) Open(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("process %d: %w", pid, syscall.ESRCH)
	}
	dir := filepath.Join(fsys.root, strconv.Itoa(pid))
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("process %d: %w", pid, syscall.ESRCH)
		}
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return &Process{pid: pid, fs: fsys, dir: dir}, nil
}

// Open returns a handle on process pid in DefaultFS.
func Open(pid int) (*Process, error) {
	return DefaultFS.Open(pid)
}

// Process is a handle on a live process. Its methods are safe for concurrent
// use, except Close, which must not race with reads.
type Process struct {
	pid int
	fs  FS
	dir string // fs root joined with the pid

	// syscalls counts memory reads issued to the kernel, for benchmarks
	// and for the profiler's own overhead report.
	syscalls atomic.Uint64

	// mem is set once process_vm_readv has been refused and every read
	// goes through /proc/PID/mem instead. It never goes back: the refusal
	// comes from a policy (seccomp, a kernel without the call) that does
	// not change while we run.
	mem   atomic.Pointer[memFile]
	memMu sync.Mutex

	// forceMem makes the first read switch to /proc/PID/mem, so tests
	// can run the fallback on a machine where process_vm_readv works.
	forceMem bool

	// states holds the run-state files of the threads, once asked for.
	states atomic.Pointer[ThreadStater]
}

type memFile struct {
	f  *os.File
	fd int
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.pid }

// Close releases the file descriptors held for the process: its memory
// file and its threads' run-state files.
func (p *Process) Close() error {
	var err error
	if s := p.states.Load(); s != nil {
		err = s.Close()
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	if m := p.mem.Load(); m != nil && m.f != nil {
		// A late read must fail with EBADF, not pread a descriptor
		// number that some other file has taken since.
		p.mem.Store(&memFile{fd: -1})
		return errors.Join(err, m.f.Close())
	}
	return err
}

// Syscalls returns the number of memory-read system calls issued so far.
func (p *Process) Syscalls() uint64 { return p.syscalls.Load() }

// path returns a file under /proc/PID.
func (p *Process) path(elem ...string) string {
	return filepath.Join(append([]string{p.dir}, elem...)...)
}

// readFile reads a whole /proc file of the process.
func (p *Process) readFile(elem ...string) ([]byte, error) {
	b, err := os.ReadFile(p.path(elem...))
	if err != nil {
		return nil, p.fileErr(err, "")
	}
	return b, nil
}

// fileErr turns "no such file" on a file of a process or thread that has
// gone away into ESRCH, which is what callers test for; a file that is
// merely absent on this kernel keeps its ENOENT.
func (p *Process) fileErr(err error, taskDir string) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, serr := os.Stat(p.dir); errors.Is(serr, fs.ErrNotExist) {
		return fmt.Errorf("process %d: %w", p.pid, syscall.ESRCH)
	}
	if taskDir != "" {
		if _, serr := os.Stat(p.path("task", taskDir)); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("thread %s: %w", taskDir, syscall.ESRCH)
		}
	}
	return err
}
