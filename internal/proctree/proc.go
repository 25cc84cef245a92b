package proctree

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Proc is a snapshot of one process from /proc.
type Proc struct {
	Pid, PPid int
	Comm      string   // /proc/PID/comm
	Exe       string   // readlink /proc/PID/exe ("" if unreadable, e.g. kernel threads)
	Cmdline   []string // argv
	StartTime uint64   // field 22 of /proc/PID/stat (clock ticks since boot), to tell a reused pid
	State     byte     // R, S, D, Z, ... from /proc/PID/stat
}

// CommandLine returns argv joined with spaces, as pgrep -f sees it, or
// "[comm]" for a process without arguments, as ps shows it.
func (p Proc) CommandLine() string {
	if len(p.Cmdline) == 0 {
		return "[" + p.Comm + "]"
	}
	return strings.Join(p.Cmdline, " ")
}

// kernelThread reports whether p is kthreadd or one of its children, which
// have no user-space program to profile.
func (p Proc) kernelThread() bool {
	return len(p.Cmdline) == 0 && (p.Pid == 2 || p.PPid == 2)
}

// FS is a procfs mount point. Tests root it at a fixture tree.
type FS struct {
	root string
}

// NewFS returns an FS rooted at procRoot, normally "/proc".
func NewFS(procRoot string) FS { return FS{root: procRoot} }

// Default is the host's /proc.
var Default = NewFS("/proc")

// Root returns the directory the FS was created with.
func (fsys FS) Root() string { return fsys.root }

// errVanished marks a process that exited while we read it; List skips it
// and Get reports it as ESRCH, which is what procmem reports too.
var errVanished = syscall.ESRCH

// Get reads process pid. The error wraps syscall.ESRCH when there is no
// such process. Unlike List, Get returns zombies and kernel threads.
func (fsys FS) Get(pid int) (Proc, error) {
	var r reader
	p, _, err := fsys.stat(&r, pid)
	if err == nil {
		err = fsys.fill(&r, &p)
	}
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return p, nil
}

// List returns every process, sorted by pid, leaving out kernel threads,
// zombies and processes that exit while the list is read: none of them can
// be profiled, and a zombie never has children, so leaving it out loses no
// part of any tree.
func (fsys FS) List() ([]Proc, error) {
	var r reader
	procs, err := fsys.stats(&r)
	if err != nil {
		return nil, err
	}
	return fsys.fillAll(&r, procs), nil
}

// stats reads the stat file of every process, which is all a tree needs,
// and leaves the other files for fill: reading them costs as much again,
// and Descendants needs them only for the few processes under its root.
// Zombies and the kernel threads stat marks as such are left out here
// already.
func (fsys FS) stats(r *reader) ([]Proc, error) {
	d, err := os.Open(fsys.root)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	procs := make([]Proc, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		p, flags, err := fsys.stat(r, pid)
		// A process we cannot stat has no parent we could place it
		// under, whatever the reason, so one odd entry must not make
		// the whole list fail.
		if err != nil || p.State == 'Z' || flags&pfKthread != 0 {
			continue
		}
		procs = append(procs, p)
	}
	slices.SortFunc(procs, func(a, b Proc) int { return a.Pid - b.Pid })
	return procs, nil
}

// fillAll fills procs in place and drops those that vanish meanwhile and
// kernel threads that stat did not flag.
func (fsys FS) fillAll(r *reader, procs []Proc) []Proc {
	out := procs[:0]
	for _, p := range procs {
		if fsys.fill(r, &p) != nil || p.kernelThread() {
			continue
		}
		out = append(out, p)
	}
	return out
}

// pfKthread is PF_KTHREAD in the flags field of stat, which marks kernel
// threads without a further read. Processes that kthreadd starts for
// usermode helpers (modprobe, a core dump handler) lack it: they run real
// programs.
const pfKthread = 0x00200000

// stat reads /proc/PID/stat. Its line gives the comm too: the kernel prints
// the same unescaped task name there as in /proc/PID/comm, so one fewer
// file is opened per process.
func (fsys FS) stat(r *reader, pid int) (p Proc, flags uint64, err error) {
	if pid <= 0 {
		return Proc{}, 0, errVanished
	}
	b, err := r.read(filepath.Join(fsys.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return Proc{}, 0, procErr(err)
	}
	p, flags, err = parseStat(b)
	if err != nil {
		return Proc{}, 0, err
	}
	if p.Pid != pid {
		return Proc{}, 0, fmt.Errorf("stat names pid %d", p.Pid)
	}
	return p, flags, nil
}

// fill reads the command line and executable of p.
func (fsys FS) fill(r *reader, p *Proc) error {
	dir := filepath.Join(fsys.root, strconv.Itoa(p.Pid))
	b, err := r.read(filepath.Join(dir, "cmdline"))
	if err != nil {
		if err = procErr(err); errors.Is(err, errVanished) {
			return err
		}
		// Keep the process: its parent and comm still place and name it.
	}
	p.Cmdline = parseCmdline(b)
	// readlink fails for kernel threads (ENOENT) and, without privileges,
	// for other users' processes (EACCES); both leave Exe empty.
	p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	return nil
}

// procErr maps "no such file" to ESRCH: the whole directory of a process
// disappears when it is reaped, and reading a file of one being torn down
// may fail with ESRCH directly.
func procErr(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errVanished
	}
	return err
}

// parseStat parses /proc/PID/stat. The comm is in parentheses and may hold
// spaces and parentheses itself, so fields are counted from the last ')'.
func parseStat(b []byte) (p Proc, flags uint64, err error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Proc{}, 0, errors.New("malformed stat: no comm")
	}
	if p.Pid, err = strconv.Atoi(string(bytes.TrimSpace(b[:open]))); err != nil {
		return Proc{}, 0, fmt.Errorf("malformed stat: pid: %w", err)
	}
	p.Comm = string(b[open+1 : end])
	// After the comm: state (field 3), ppid (4), flags (9), starttime (22).
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Proc{}, 0, errors.New("malformed stat: too few fields")
	}
	p.State = f[0][0]
	if p.PPid, err = strconv.Atoi(string(f[1])); err != nil {
		return Proc{}, 0, fmt.Errorf("malformed stat: ppid: %w", err)
	}
	if flags, err = strconv.ParseUint(string(f[6]), 10, 64); err != nil {
		return Proc{}, 0, fmt.Errorf("malformed stat: flags: %w", err)
	}
	if p.StartTime, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return Proc{}, 0, fmt.Errorf("malformed stat: starttime: %w", err)
	}
	return p, flags, nil
}

// parseCmdline splits NUL-separated argv. All trailing NULs go, not just
// the terminator: setproctitle writes its title over the argument area and
// pads the rest with NULs, which would otherwise read as empty arguments.
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// reader reads whole /proc files into one reused buffer with raw system
// calls. os.ReadFile would add an fstat and a failed epoll registration per
// file, and List runs every second while recording, over every process.
type reader struct {
	buf []byte
}

// read returns the contents of path, valid until the next call. A read
// that does not fill the buffer is taken as the end, as procps does: the
// kernel hands out a stat line or a command line in one read when it fits,
// so this saves the read that would return 0.
func (r *reader) read(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = slices.Grow(r.buf, len(r.buf))[:2*len(r.buf)]
		}
		m, err := syscall.Read(fd, r.buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		n += m
		if n < len(r.buf) {
			return r.buf[:n], nil
		}
	}
}
