package proctree

import (
	"errors"
	"strings"
	"syscall"

	"github.com/pyprof/pyprof/procmem"
)

// Proc is a snapshot of one process from /proc.
type Proc struct {
	Pid, PPid int
	Comm      string   // /proc/PID/comm
	Exe       string   // readlink /proc/PID/exe ("" if unreadable, e.g. kernel threads)
	Cmdline   []string // argv
	StartTime uint64   // procmem.ProcStat.StartTime, to tell a reused pid
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

// Get reads process pid. The error wraps syscall.ESRCH when there is no
// such process. Unlike List, Get returns zombies and kernel threads.
func Get(fsys procmem.FS, pid int) (Proc, error) {
	st, err := fsys.Stat(pid)
	if err != nil {
		return Proc{}, err
	}
	p := fromStat(st)
	if err := fill(fsys, &p); err != nil {
		return Proc{}, err
	}
	return p, nil
}

// List returns every process, sorted by pid, leaving out kernel threads,
// zombies and processes that exit while the list is read: none of them can
// be profiled, and a zombie never has children, so leaving it out loses no
// part of any tree.
func List(fsys procmem.FS) ([]Proc, error) {
	procs, err := stats(fsys)
	if err != nil {
		return nil, err
	}
	return fillAll(fsys, procs), nil
}

// stats reads the stat file of every process, which is all a tree needs,
// and leaves the other files for fill: reading them costs as much again,
// and Descendants needs them only for the few processes under its root.
// Zombies and the kernel threads stat marks as such are left out here
// already.
func stats(fsys procmem.FS) ([]Proc, error) {
	all, err := fsys.Stats()
	if err != nil {
		return nil, err
	}
	procs := make([]Proc, 0, len(all))
	for _, st := range all {
		if st.State == 'Z' || st.KernelThread {
			continue
		}
		procs = append(procs, fromStat(st))
	}
	return procs, nil
}

// fromStat keeps what stat says of a process. Its comm is the same
// unescaped task name as /proc/PID/comm, so that file is not read.
func fromStat(st procmem.ProcStat) Proc {
	return Proc{Pid: st.Pid, PPid: st.PPid, Comm: st.Comm, StartTime: st.StartTime, State: st.State}
}

// fillAll fills procs in place and drops those that vanish meanwhile and
// kernel threads that stat did not flag.
func fillAll(fsys procmem.FS, procs []Proc) []Proc {
	out := procs[:0]
	for _, p := range procs {
		if fill(fsys, &p) != nil || p.kernelThread() {
			continue
		}
		out = append(out, p)
	}
	return out
}

// fill reads the command line and executable of p. Only a process that
// has gone makes it fail.
func fill(fsys procmem.FS, p *Proc) error {
	args, err := fsys.Cmdline(p.Pid)
	if errors.Is(err, syscall.ESRCH) {
		return err
	}
	// Otherwise keep the process: its parent and comm still place and
	// name it.
	p.Cmdline = args
	// readlink fails for kernel threads (ENOENT) and, without privileges,
	// for other users' processes (EACCES); both leave Exe empty.
	p.Exe, _ = fsys.Exe(p.Pid)
	return nil
}
