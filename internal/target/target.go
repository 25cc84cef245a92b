// Package target attaches pyspy to a live process: it finds the binary that
// holds the interpreter (libpython or the executable), detects its version,
// resolves the interpreter's symbols with the load bias applied, and builds
// a pyspy.Reader over the process's memory.
//
// Facts about a binary (version, symbols, sections) are cached by file
// identity, so the workers of a gunicorn master share one parse of their
// libpython.
package target

import (
	"debug/elf"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/pyprof/pyprof/procmem"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// ErrNotPython means the process has no CPython interpreter mapped.
var ErrNotPython = errors.New("not a python process")

// NotPythonError names the process that is not Python.
type NotPythonError struct {
	Pid int
	Exe string
}

func (e *NotPythonError) Error() string {
	return fmt.Sprintf("process %d (%s) is not a python process: no python binary or libpython in its memory maps", e.Pid, e.Exe)
}

func (e *NotPythonError) Is(target error) bool { return target == ErrNotPython }

// ZombieError means the process has exited and its parent has not yet
// reaped it: nothing of its program is left to read. It matches
// syscall.ESRCH, since the process is gone for every purpose but its
// parent's.
type ZombieError struct {
	Pid, PPid int
	Parent    string // the parent's command name, "" if unknown
}

func (e *ZombieError) Error() string {
	parent := fmt.Sprintf("pid %d", e.PPid)
	if e.Parent != "" {
		parent += ": " + e.Parent
	}
	return fmt.Sprintf("process %d is a zombie: it has exited and its parent (%s) has not reaped it", e.Pid, parent)
}

func (e *ZombieError) Is(target error) bool { return target == syscall.ESRCH }

// KernelThreadError means the process is a thread of the kernel (kthreadd
// or one it started), which runs no program. It matches ErrNotPython.
type KernelThreadError struct {
	Pid  int
	Comm string
}

func (e *KernelThreadError) Error() string {
	return fmt.Sprintf("process %d (%s) is a kernel thread, not a Python process", e.Pid, e.Comm)
}

func (e *KernelThreadError) Is(target error) bool { return target == ErrNotPython }

// Options tune how a process is attached.
type Options struct {
	// NoSymbols ignores symbol tables and finds the interpreter by
	// scanning, as for a stripped binary. Tests use it to exercise the
	// scan on binaries that have symbols.
	NoSymbols bool
	// Wrap, if set, wraps the process memory the reader uses, for
	// recording snapshots.
	Wrap func(pyspy.Memory) pyspy.Memory
	// NoReadahead is passed to pyspy.Config.
	NoReadahead bool
}

// Located says how a Process's interpreter was found.
type Located uint8

const (
	// LocatedBySymbol: through a symbol or section (_PyRuntime,
	// interp_head, .PyRuntime).
	LocatedBySymbol Located = iota
	// LocatedByScan: by scanning a stripped binary's .PyRuntime, .data
	// and .bss for a pointer to the interpreter.
	LocatedByScan
)

// String names how, as "symbol" or "scan".
func (l Located) String() string {
	switch l {
	case LocatedBySymbol:
		return "symbol"
	case LocatedByScan:
		return "scan"
	}
	return fmt.Sprintf("Located(%d)", uint8(l))
}

// Process is an attached Python process.
type Process struct {
	// Pid is the process id in the pid namespace of /proc, which is
	// pyprof's own: what -p takes and what ps and top -H show.
	Pid int
	// OwnPid is the pid the process has in its own pid namespace, where
	// os.getpid() returns it: different from Pid in a container that does
	// not share the host's pid namespace.
	OwnPid     int
	Proc       *procmem.Process
	Reader     *pyspy.Reader
	Version    pyversions.Version
	Executable string   // the executable, as /proc/PID/exe names it
	Cmdline    []string // argv
	Binary     string   // the file holding the interpreter: libpython or the executable
	// Located says how the interpreter was found.
	Located Located
	// LayoutSource says where the struct layout came from.
	LayoutSource LayoutSource
	// DebugOffsets is the target's decoded _Py_DebugOffsets when the
	// layout came from it, else nil.
	DebugOffsets *pyversions.DebugOffsets
	// Config is what the reader was built from.
	Config pyspy.Config

	// tids maps thread ids between the namespaces.
	tids *procmem.ThreadIDs
	// calibrated is the most threads the reader has learnt native ids
	// from (before 3.11).
	calibrated int
	// ids is Sample's scratch for translating native thread ids.
	ids []int
}

// Close releases the process's file descriptors.
func (p *Process) Close() error { return p.Proc.Close() }

// CommandLine joins argv for display.
func (p *Process) CommandLine() string {
	if len(p.Cmdline) == 0 {
		return p.Executable
	}
	// A process that retitles itself (setproctitle, as gunicorn does)
	// pads its title with spaces or NULs to the length of the original
	// command line.
	return strings.TrimRight(strings.Join(p.Cmdline, " "), " \x00")
}

// Sample reads every thread's stack, as Reader.Sample does, and gives
// native thread ids in Pid's namespace: the target stores them as its own
// pid namespace numbers them, but /proc/PID/task, top -H and the user's
// tools on the host number them in pyprof's. An id whose thread has just
// exited becomes 0, since its number may already name another thread.
func (p *Process) Sample(opts pyspy.SampleOptions) ([]pyspy.Thread, error) {
	threads, err := p.Reader.Sample(opts)
	p.calibrate(len(threads))
	// The sample that showed a new thread was read before calibrate
	// could learn from it: until then, threads have no OS thread id.
	threads = p.Reader.FillOSThreads(threads)
	if p.tids != nil && p.tids.Nested() {
		ids := p.ids[:0]
		for i := range threads {
			ids = append(ids, threads[i].NativeID)
		}
		p.tids.ToFS(ids)
		for i := range threads {
			threads[i].NativeID = ids[i]
		}
		p.ids = ids
	}
	return threads, err
}

// calibrate has the reader learn where the C library keeps thread ids
// (before 3.11), and check it again whenever the process has more Python
// threads than the last time: with a single thread the choice can be
// ambiguous, notably when the pid is 1, as a container's init. The ids are
// the target's own, as the C library stores them. Until the reader has
// learnt them it tries at every sample: a thread that ends during a try
// has its id cleared by the C library, which fails it, and a process that
// starts and ends one thread at a time may never show more threads.
func (p *Process) calibrate(threads int) {
	if p.tids == nil || p.Config.Layout.Thread.NativeThreadID >= 0 || threads <= p.calibrated && p.Reader.KnowsOSThreads() {
		return
	}
	p.calibrated = threads
	if tids, err := p.tids.OwnThreads(); err == nil {
		p.Reader.SetOSThreads(p.OwnPid, tids)
	}
}

// A live process is read in batches, and a batch that fails in part says
// which regions it could not read, as the reader's cache expects.
var (
	_ mem.BatchReader  = (*procmem.Process)(nil)
	_ mem.PartialError = (*procmem.BatchError)(nil)
)

var libpythonRE = regexp.MustCompile(`^libpython[23]\.\d+[a-z]*\.so`)

// Attach opens pid and locates its interpreter. It does not pause the
// process.
func Attach(pid int, opts Options) (*Process, error) {
	proc, err := procmem.Open(pid)
	if err != nil {
		return nil, err
	}
	p, err := attach(proc, opts)
	if err != nil {
		err = unreadable(proc, err)
		proc.Close()
		return nil, err
	}
	return p, nil
}

// unreadable explains a failed attach to a process that has no program to
// read, whatever step failed first (a zombie's executable link is gone, its
// maps are empty): a zombie or a kernel thread. Other failures are
// returned as they are.
func unreadable(proc *procmem.Process, err error) error {
	st, serr := proc.Stat()
	switch {
	case serr != nil:
		return err
	case st.State == 'Z' || st.State == 'X':
		if full, ferr := proc.Status(); ferr == nil && full.Threads > 1 {
			// Only its main thread has exited; the others run.
			return err
		}
		ze := &ZombieError{Pid: proc.Pid(), PPid: st.PPid}
		if parent, perr := procmem.Open(st.PPid); perr == nil {
			ze.Parent, _ = parent.Comm()
			parent.Close()
		}
		return ze
	case st.KernelThread:
		comm, _ := proc.Comm()
		return &KernelThreadError{Pid: proc.Pid(), Comm: comm}
	}
	return err
}

func attach(proc *procmem.Process, opts Options) (*Process, error) {
	p := &Process{Pid: proc.Pid(), Proc: proc}
	var err error
	if p.Executable, err = proc.Exe(); err != nil {
		return nil, err
	}
	p.Cmdline, _ = proc.Cmdline()
	maps, err := proc.Maps()
	if err != nil {
		return nil, err
	}
	bin, info, err := findInterpreterBinary(proc, maps, p.Executable)
	if err != nil {
		return nil, err
	}
	p.Binary, p.Version = bin, info.version
	bias, err := procmem.LoadBias(info.elf, maps, bin)
	if err != nil {
		return nil, fmt.Errorf("load bias of %s: %w", bin, err)
	}
	at := func(link uint64) uint64 {
		if link == 0 {
			return 0
		}
		return link + bias
	}
	var m pyspy.Memory = proc
	if opts.Wrap != nil {
		m = opts.Wrap(m)
	}
	layout, desc, err := chooseLayout(m, info.version, at(info.runtime))
	if err != nil {
		return nil, err
	}
	p.LayoutSource, p.DebugOffsets = LayoutGenerated, desc
	if desc != nil {
		p.LayoutSource = LayoutDebugOffsets
	}
	facts := info.factsFor(layout, info.version)
	cfg := pyspy.Config{Layout: facts.Layout, Version: info.version, NoReadahead: opts.NoReadahead, Facts: facts}
	if !opts.NoSymbols {
		cfg.Runtime = at(info.runtime)
		cfg.InterpHead = at(info.interpHead)
	}
	// _PyThreadState_Current is exported, so it survives stripping; it is
	// needed to find the GIL holder even when the scan finds the
	// interpreter.
	cfg.TstateCurrent = at(info.tstateCurrent)
	for _, s := range info.scan {
		cfg.Scan = append(cfg.Scan, pyspy.Range{Addr: at(s.Addr), Size: s.Size, Name: s.Name})
	}
	r, err := pyspy.New(m, cfg)
	if err != nil {
		return nil, fmt.Errorf("python %s in %s: %w", info.version, bin, err)
	}
	p.Reader, p.Config = r, cfg
	p.Located = LocatedBySymbol
	if cfg.Runtime == 0 && cfg.InterpHead == 0 {
		p.Located = LocatedByScan
	}
	if p.tids, err = proc.NewThreadIDs(); err != nil {
		return nil, fmt.Errorf("thread ids: %w", err)
	}
	p.OwnPid = p.tids.OwnPid()
	p.calibrate(1)
	return p, nil
}

// Interpreter returns the file that holds pid's interpreter (a libpython,
// or the executable) without attaching to it. Its error is a
// *NotPythonError when there is none, which for a program that is still
// starting may change: see LinksLibpython.
func Interpreter(pid int) (string, error) {
	proc, err := procmem.Open(pid)
	if err != nil {
		return "", err
	}
	defer proc.Close()
	exe, err := proc.Exe()
	if err != nil {
		return "", unreadable(proc, err)
	}
	maps, err := proc.Maps()
	if err != nil {
		return "", unreadable(proc, err)
	}
	bin, _, err := findInterpreterBinary(proc, maps, exe)
	if err != nil {
		return "", unreadable(proc, err)
	}
	return bin, nil
}

// LinksLibpython reports whether the ELF executable at path needs a
// libpython: its dynamic loader maps the interpreter before any of the
// program's code runs, so the program is Python even while its maps do not
// show it yet.
func LinksLibpython(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return false
	}
	for _, l := range libs {
		if libpythonRE.MatchString(l) {
			return true
		}
	}
	return false
}

// binaryInfo is what is learnt once per interpreter binary. Symbol values
// are link-time addresses.
type binaryInfo struct {
	elf                                *procmem.ELF
	version                            pyversions.Version
	runtime, interpHead, tstateCurrent uint64
	scan                               []pyspy.Range
	python                             bool
	// facts are the reader's facts of the build, made by the first
	// process attached and shared by the others (see factsFor).
	facts *pyobj.Facts
}

// factsFor returns the facts of the binary's build with layout l, shared
// by every process that maps the binary: the readers of a gunicorn master
// and its workers work them out once. A layout that differs from the one
// the facts were made for (a _Py_DebugOffsets that reads otherwise) gets
// facts of its own.
func (b *binaryInfo) factsFor(l *pyversions.Layout, v pyversions.Version) *pyobj.Facts {
	binaries.Lock()
	defer binaries.Unlock()
	if f := b.facts; f != nil && f.Version == v && *f.Layout == *l {
		return f
	}
	b.facts = pyobj.NewFacts(l, v)
	return b.facts
}

var binaries struct {
	sync.Mutex
	byKey map[string]*binaryInfo
}

// findInterpreterBinary picks the mapped file that holds the interpreter:
// a libpython if one is mapped, else the executable if it carries the
// interpreter's symbols, sections or name.
func findInterpreterBinary(proc *procmem.Process, maps []procmem.Mapping, exe string) (string, *binaryInfo, error) {
	var candidates []procmem.Mapping
	for _, m := range maps {
		if m.Offset == 0 && libpythonRE.MatchString(filepath.Base(m.Path)) {
			candidates = append(candidates, m)
		}
	}
	for _, m := range maps {
		if m.Offset == 0 && m.Path == strings.TrimSuffix(exe, " (deleted)") {
			candidates = append(candidates, m)
			break
		}
	}
	var lastErr error
	for _, m := range candidates {
		info, err := binary(proc, m)
		if err != nil {
			lastErr = err
			continue
		}
		if info.python {
			return m.Path, info, nil
		}
	}
	if lastErr != nil {
		return "", nil, lastErr
	}
	return "", nil, &NotPythonError{Pid: proc.Pid(), Exe: exe}
}

func binary(proc *procmem.Process, m procmem.Mapping) (*binaryInfo, error) {
	key := fmt.Sprintf("%s:%d:%s", m.Dev, m.Inode, m.Path)
	binaries.Lock()
	defer binaries.Unlock()
	if info, ok := binaries.byKey[key]; ok {
		return info, nil
	}
	e, err := proc.OpenELF(m.Path)
	if err != nil {
		return nil, err
	}
	info := &binaryInfo{elf: e}
	sym := func(name string) uint64 {
		v, _, _ := e.Symbol(name)
		return v
	}
	info.runtime, info.interpHead, info.tstateCurrent = sym("_PyRuntime"), sym("interp_head"), sym("_PyThreadState_Current")
	if info.runtime == 0 {
		if addr, _, ok := e.Section(".PyRuntime"); ok {
			info.runtime = addr
		}
	}
	for _, name := range []string{".PyRuntime", ".data", ".bss"} {
		if addr, size, ok := e.Section(name); ok {
			info.scan = append(info.scan, pyspy.Range{Addr: addr, Size: size, Name: name})
		}
	}
	_, _, hasEval := e.Symbol("PyEval_EvalCode")
	_, _, major := pyversions.FileNameVersion(m.Path)
	info.python = info.runtime != 0 || info.interpHead != 0 || hasEval || major
	if info.python {
		v, _, err := pyversions.Detect(e, filepath.Base(m.Path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
		info.version = v
	}
	if binaries.byKey == nil {
		binaries.byKey = map[string]*binaryInfo{}
	}
	binaries.byKey[key] = info
	return info, nil
}
