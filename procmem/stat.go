package procmem

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// ProcStat is what /proc/PID/stat says of a process, or
// /proc/PID/task/TID/stat of a thread: the fields pyprof uses, read by
// one parser for every caller.
type ProcStat struct {
	Pid   int    // field 1: the pid, or the tid for a thread's file
	Comm  string // field 2: the unescaped task name, as in /proc/PID/comm
	State byte   // field 3: R, S, D, Z, t, ...
	PPid  int    // field 4
	Flags uint64 // field 9: the kernel's PF_* flags
	// KernelThread is PF_KTHREAD: a thread of the kernel, with no
	// program of its own to read. Processes that kthreadd starts for
	// usermode helpers (modprobe, a core dump handler) lack it: they run
	// real programs.
	KernelThread bool
	UTime, STime uint64 // fields 14 and 15, in clock ticks (USER_HZ)
	// StartTime is field 22, clock ticks from boot to the process's
	// start: with the pid, it names a process, since a pid can be reused
	// but not within the same tick.
	StartTime uint64
}

// pfKthread is PF_KTHREAD in the flags field of stat.
const pfKthread = 0x00200000

// parseStat parses a stat line. The command name in field 2 is in
// parentheses and may hold any character, ')' and spaces included, but
// nothing after it can contain ')', so fields are counted from the last
// one.
func parseStat(b []byte) (ProcStat, error) {
	var st ProcStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, fmt.Errorf("malformed stat %.40q", b)
	}
	state, err := statState(b)
	if err != nil {
		return st, err
	}
	// After the comm: state (field 3) up to starttime (22).
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return st, fmt.Errorf("malformed stat %.40q: too few fields", b)
	}
	if st.Pid, err = strconv.Atoi(string(bytes.TrimSpace(b[:open]))); err != nil {
		return st, fmt.Errorf("malformed stat: pid: %w", err)
	}
	st.Comm, st.State = string(b[open+1:end]), state
	if st.PPid, err = strconv.Atoi(string(f[1])); err != nil {
		return st, fmt.Errorf("malformed stat: ppid: %w", err)
	}
	if st.Flags, err = strconv.ParseUint(string(f[6]), 10, 64); err != nil {
		return st, fmt.Errorf("malformed stat: flags: %w", err)
	}
	st.KernelThread = st.Flags&pfKthread != 0
	if st.UTime, err = strconv.ParseUint(string(f[11]), 10, 64); err != nil {
		return st, fmt.Errorf("malformed stat: utime: %w", err)
	}
	if st.STime, err = strconv.ParseUint(string(f[12]), 10, 64); err != nil {
		return st, fmt.Errorf("malformed stat: stime: %w", err)
	}
	if st.StartTime, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return st, fmt.Errorf("malformed stat: starttime: %w", err)
	}
	return st, nil
}

// statState returns field 3 of a stat line, the run state, without
// allocating: the sampling hot path reads it for every thread it finds
// waiting. It follows the last ')' and a space.
func statState(b []byte) (byte, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) || b[i+1] != ' ' {
		return 0, fmt.Errorf("malformed stat %.40q", b)
	}
	return b[i+2], nil
}

// Pids returns the ids of the processes in the FS, sorted.
func (fsys FS) Pids() ([]int, error) {
	d, err := os.Open(fsys.root)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// Stat parses /proc/PID/stat of pid without opening the process. The
// error wraps syscall.ESRCH when there is no such process.
func (fsys FS) Stat(pid int) (ProcStat, error) {
	var r fileReader
	return fsys.stat(&r, pid)
}

// Stats parses the stat file of every process, in pid order, leaving out
// those that exit while they are read and those whose stat cannot be
// read or parsed: whoever scans the process tree must not fail on one
// odd entry. It is the scan that following subprocesses repeats twice a
// second, so it reads with raw system calls into one buffer.
func (fsys FS) Stats() ([]ProcStat, error) {
	pids, err := fsys.Pids()
	if err != nil {
		return nil, err
	}
	var r fileReader
	stats := make([]ProcStat, 0, len(pids))
	for _, pid := range pids {
		if st, err := fsys.stat(&r, pid); err == nil {
			stats = append(stats, st)
		}
	}
	return stats, nil
}

func (fsys FS) stat(r *fileReader, pid int) (ProcStat, error) {
	if pid <= 0 {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, syscall.ESRCH)
	}
	b, err := r.read(filepath.Join(fsys.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, goneErr(err))
	}
	st, err := parseStat(b)
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	if st.Pid != pid {
		return ProcStat{}, fmt.Errorf("process %d: stat names pid %d", pid, st.Pid)
	}
	return st, nil
}

// Exe returns the executable of process pid, as Process.Exe does.
func (fsys FS) Exe(pid int) (string, error) {
	s, err := os.Readlink(filepath.Join(fsys.root, strconv.Itoa(pid), "exe"))
	if err != nil {
		return "", fmt.Errorf("process %d: %w", pid, err)
	}
	return s, nil
}

// goneErr maps "no such file" to ESRCH: the whole directory of a process
// disappears when it is reaped, and reading a file of one being torn down
// may fail with ESRCH directly. For a file that may be absent while its
// process lives, Process.fileErr tells the two apart.
func goneErr(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return syscall.ESRCH
	}
	return err
}

// fileReader reads whole /proc files into one reused buffer with raw
// system calls. os.ReadFile would add an fstat and a failed epoll
// registration per file, on a scan of every process.
type fileReader struct {
	buf []byte
}

// read returns the contents of path, valid until the next call. A read
// that does not fill the buffer is taken as the end, as procps does: the
// kernel hands out a stat line or a command line in one read when it fits,
// so this saves the read that would return 0.
func (r *fileReader) read(path string) ([]byte, error) {
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
