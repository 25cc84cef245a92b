package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/pyprof/pyprof/internal/proctree"
	"github.com/pyprof/pyprof/internal/pyfile"
	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/procmem"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/asynctask"
)

type dumpOptions struct {
	targetOptions
	locals        bool
	json          bool
	fullFilenames bool
	nonblocking   bool
}

func newFlagSet(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	return fs
}

// parse runs fs.Parse and maps its failures to usage errors.
func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return flagError(fs, err)
	}
	return nil
}

func runDump(args []string, stdout, stderr io.Writer) error {
	var o dumpOptions
	fs := newFlagSet("dump", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: pyprof dump [-p PID | --pgrep PATTERN] [-s] [--locals] [--json] [--full-filenames] [--nonblocking]")
		fmt.Fprint(stdout, "\nPrint every thread's Python stack once.\n\n")
		printFlags(stdout, fs)
	}
	o.targetOptions.register(fs, true)
	fs.BoolVarP(&o.locals, "locals", "l", false, "show each frame's arguments and local variables")
	fs.BoolVarP(&o.json, "json", "j", false, "print JSON instead of text")
	fs.BoolVar(&o.fullFilenames, "full-filenames", false, "show full file paths instead of shortened ones")
	fs.BoolVar(&o.nonblocking, "nonblocking", false, "do not pause the process while reading (the stacks may be inconsistent)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.ArgsLenAtDash() >= 0 {
		return usagef("dump reads running processes; it cannot launch a command")
	}
	if o.pid == 0 && o.pgrep == "" {
		return usagef("dump needs a process: -p PID or --pgrep PATTERN")
	}
	if testHookValidated != nil {
		if err := testHookValidated(&o); err != nil {
			return err
		}
	}
	rt, err := o.targetOptions.resolve(fs)
	if err != nil {
		return err
	}
	pids := []int{rt.root}
	if rt.follow {
		kids, err := proctree.Descendants(procmem.DefaultFS, rt.root)
		if err != nil {
			return &targetError{pid: rt.root, err: err}
		}
		for _, k := range kids {
			pids = append(pids, k.Pid)
		}
	}
	var dumps []*processDump
	pz := &pauser{stderr: stderr}
	for i, pid := range pids {
		d, err := dumpProcess(pid, o, pz)
		if err != nil {
			// Descendants that are not Python, or that just exited,
			// are skipped; the root is not.
			if i > 0 && (errors.Is(err, target.ErrNotPython) || errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrNotExist)) {
				continue
			}
			return &targetError{pid: pid, err: err}
		}
		dumps = append(dumps, d)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		// Function names such as <module> and <lambda> stay readable.
		enc.SetEscapeHTML(false)
		return enc.Encode(dumps)
	}
	for i, d := range dumps {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		writeText(stdout, d, o)
	}
	return nil
}

// processDump is the --json contract; see README.md.
type processDump struct {
	Pid           int          `json:"pid"`
	NamespacePid  int          `json:"namespace_pid,omitempty"` // in its own pid namespace, when not Pid (a container)
	CommandLine   string       `json:"command_line"`
	PythonVersion string       `json:"python_version"`
	Executable    string       `json:"executable"`
	LayoutSource  string       `json:"layout_source"`
	Threads       []threadDump `json:"threads"`
	// Tasks are the asyncio tasks of loops that no thread runs.
	Tasks  []taskDump `json:"tasks,omitempty"`
	Errors []string   `json:"errors,omitempty"`
}

type threadDump struct {
	ThreadID  uint64      `json:"thread_id"`
	NativeID  int         `json:"native_id"`
	Name      *string     `json:"name"`
	Active    bool        `json:"active"`
	OwnsGIL   bool        `json:"owns_gil"`
	Truncated bool        `json:"truncated,omitempty"`
	Frames    []frameDump `json:"frames"`
	// Greenlets are the thread's started, live greenlets, in a process
	// that imported greenlet.
	Greenlets []greenletDump `json:"greenlets,omitempty"`
	// mainGreenlet is the thread's main greenlet, if it has one.
	mainGreenlet uint64
	// Tasks are the unfinished asyncio tasks of the loop the thread
	// runs.
	Tasks []taskDump `json:"tasks,omitempty"`
}

// taskDump is one asyncio task: its id is id(task), and awaiting lists
// the ids of the tasks it awaits.
type taskDump struct {
	ID       uint64      `json:"id"`
	Name     string      `json:"name"`
	Running  bool        `json:"running"`
	Awaiting []uint64    `json:"awaiting"`
	Frames   []frameDump `json:"frames"`
}

type frameDump struct {
	Function string      `json:"function"`
	Filename string      `json:"filename"`
	Line     int         `json:"line"`
	Locals   []localDump `json:"locals,omitempty"`
}

type localDump struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Argument bool   `json:"argument"`
}

func dumpProcess(pid int, o dumpOptions, pz *pauser) (*processDump, error) {
	p, err := target.Attach(pid, target.Options{})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	// Thread run states are read before pausing: a paused thread is
	// always in tracing stop.
	running := map[int]bool{}
	if tids, err := p.Proc.Threads(); err == nil {
		for _, tid := range tids {
			if st, err := p.Proc.ThreadStat(tid); err == nil {
				running[tid] = st == 'R'
			}
		}
	}
	var tasks []asynctask.Task
	var taskErr error
	greenlets := newDumpGreenlets(p)
	threads, sampleErr := sampleOnce(p, o, pz, func(threads []pyspy.Thread) {
		greenlets.read(o.locals)
		tasks, taskErr = readTasks(p, threads, o.locals)
	})
	if threads == nil && sampleErr != nil {
		return nil, sampleErr
	}
	d := &processDump{
		Pid:           pid,
		CommandLine:   p.CommandLine(),
		PythonVersion: p.Version.String(),
		Executable:    p.Executable,
		LayoutSource:  p.LayoutSource.String(),
		Threads:       []threadDump{},
	}
	if p.OwnPid != pid {
		d.NamespacePid = p.OwnPid
	}
	if sampleErr != nil {
		d.Errors = append(d.Errors, sampleErr.Error())
	}
	if taskErr != nil {
		d.Errors = append(d.Errors, "asyncio tasks: "+taskErr.Error())
	}
	byThread := map[uint64][]taskDump{}
	for _, t := range tasks {
		td := taskDump{ID: t.Addr, Name: t.Name, Running: t.Running, Awaiting: t.Awaiting, Frames: framesDump(t.Frames, o)}
		if td.Awaiting == nil {
			td.Awaiting = []uint64{}
		}
		if t.Thread == 0 {
			d.Tasks = append(d.Tasks, td)
		} else {
			byThread[t.Thread] = append(byThread[t.Thread], td)
		}
	}
	for _, t := range threads {
		td := threadDump{
			ThreadID:  t.ID,
			NativeID:  t.NativeID,
			Active:    running[t.NativeID] || t.OwnsGIL,
			OwnsGIL:   t.OwnsGIL,
			Truncated: t.Truncated,
			Frames:    []frameDump{},
		}
		if t.HasName {
			name := t.Name
			td.Name = &name
		}
		td.Frames = append(td.Frames, framesDump(t.Frames, o)...)
		td.Tasks = byThread[t.ID]
		d.Threads = append(d.Threads, td)
	}
	greenlets.attach(p, threads, d, o)
	return d, nil
}

func framesDump(frames []pyspy.Frame, o dumpOptions) []frameDump {
	out := []frameDump{}
	for _, f := range frames {
		fd := frameDump{Function: f.Name, Filename: f.Filename, Line: f.Line}
		for _, l := range f.Locals {
			fd.Locals = append(fd.Locals, localDump{Name: l.Name, Value: l.Value, Argument: l.Argument})
		}
		if o.locals && fd.Locals == nil {
			fd.Locals = []localDump{}
		}
		out = append(out, fd)
	}
	return out
}

// readTasks reads the asyncio tasks of a process whose threads were just
// sampled, while it is still paused.
func readTasks(p *target.Process, threads []pyspy.Thread, locals bool) ([]asynctask.Task, error) {
	ths := make([]asynctask.Thread, 0, len(threads))
	for _, t := range threads {
		ths = append(ths, asynctask.Thread{Addr: t.Addr, ID: t.ID, Frames: t.Frames})
	}
	tasks, err := p.Tasks(ths, asynctask.ReadOptions{Locals: locals})
	if errors.Is(err, asynctask.ErrUnsupported) {
		return nil, nil
	}
	if err != nil {
		// One line, however many parts could not be read.
		err = errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return tasks, err
}

// testHookPaused, set by tests, runs while the target is paused.
var testHookPaused func() error

// pauser is what a dump learns about pausing its processes: once ptrace
// is found denied to pyprof, it is denied for every process, and said once.
type pauser struct {
	stderr io.Writer
	denied bool
}

// sampleOnce reads all stacks, and runs also on them before resuming,
// with the process paused unless asked not to. SIGINT and SIGTERM are
// held off while it is paused, so the process is always resumed before
// pyprof exits. A process that ptrace refuses to
// pause (see pauseRefusal) is read without pausing, as with --nonblocking,
// and stderr says so.
func sampleOnce(p *target.Process, o dumpOptions, pz *pauser, also func([]pyspy.Thread)) ([]pyspy.Thread, error) {
	opts := pyspy.SampleOptions{Locals: o.locals}
	sample := func() ([]pyspy.Thread, error) {
		threads, err := p.Sample(opts)
		if threads != nil {
			also(threads)
		}
		return threads, err
	}
	if o.nonblocking || pz.denied {
		return sample()
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	paused, err := p.Proc.Pause()
	var refused *procmem.SeizeError
	if errors.As(err, &refused) {
		pz.denied = errors.Is(err, procmem.ErrPtraceDenied)
		fmt.Fprintf(pz.stderr, "pyprof: cannot pause process %d (%s); reading without pausing, so a stack may be inconsistent\n", p.Pid, pauseRefusal(err))
		return sample()
	}
	if err != nil {
		return nil, fmt.Errorf("pause process: %w", err)
	}
	threads, err := func() ([]pyspy.Thread, error) {
		defer paused.Resume()
		if testHookPaused != nil {
			if err := testHookPaused(); err != nil {
				return nil, err
			}
		}
		return sample()
	}()
	if rerr := paused.Resume(); rerr != nil && err == nil {
		err = fmt.Errorf("resume process: %w", rerr)
	}
	select {
	case s := <-sigs:
		return nil, fmt.Errorf("interrupted by %v", s)
	default:
	}
	return threads, err
}

func writeText(w io.Writer, d *processDump, o dumpOptions) {
	if d.NamespacePid != 0 {
		fmt.Fprintf(w, "Process %d (pid %d in its namespace): %s\n", d.Pid, d.NamespacePid, d.CommandLine)
	} else {
		fmt.Fprintf(w, "Process %d: %s\n", d.Pid, d.CommandLine)
	}
	fmt.Fprintf(w, "Python v%s (%s)\n", d.PythonVersion, d.Executable)
	for _, e := range d.Errors {
		fmt.Fprintf(w, "Error: %s\n", e)
	}
	for _, t := range d.Threads {
		fmt.Fprintln(w)
		state := "idle"
		if t.Active {
			state = "active"
		}
		if t.OwnsGIL {
			state += ", gil"
		}
		id := fmt.Sprint(t.NativeID)
		if t.NativeID == 0 {
			id = fmt.Sprintf("%#x", t.ThreadID)
		}
		fmt.Fprintf(w, "Thread %s (%s)", id, state)
		if t.Name != nil {
			fmt.Fprintf(w, ": %q", *t.Name)
		}
		fmt.Fprintln(w)
		writeFrames(w, t.Frames, o, "    ")
		if t.Truncated {
			fmt.Fprintln(w, "    ... (stack truncated)")
		}
		writeGreenlets(w, t, o)
		writeTasks(w, t.Tasks, o)
	}
	if len(d.Tasks) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Tasks of loops no thread runs:")
		writeTasks(w, d.Tasks, o)
	}
}

// writeTasks prints each task as "Task NAME (running|pending) awaiting
// NAME, NAME", then its frames.
func writeTasks(w io.Writer, tasks []taskDump, o dumpOptions) {
	names := map[uint64]string{}
	for _, t := range tasks {
		names[t.ID] = taskName(t)
	}
	for _, t := range tasks {
		state := "pending"
		if t.Running {
			state = "running"
		}
		fmt.Fprintf(w, "    Task %s (%s)", names[t.ID], state)
		for i, a := range t.Awaiting {
			sep := ", "
			if i == 0 {
				sep = " awaiting "
			}
			n, ok := names[a]
			if !ok {
				n = fmt.Sprintf("%#x", a)
			}
			fmt.Fprintf(w, "%s%s", sep, n)
		}
		fmt.Fprintln(w)
		writeFrames(w, t.Frames, o, "        ")
	}
}

// taskName is a task's name, or its address where it has none (3.7).
func taskName(t taskDump) string {
	if t.Name == "" {
		return fmt.Sprintf("%#x", t.ID)
	}
	return t.Name
}

// writeFrames prints frames, and their locals if asked, each line
// indented by indent.
func writeFrames(w io.Writer, frames []frameDump, o dumpOptions, indent string) {
	for _, f := range frames {
		file := f.Filename
		if !o.fullFilenames {
			file = pyfile.Short(file)
		}
		fmt.Fprintf(w, "%s%s (%s:%d)\n", indent, f.Function, file, f.Line)
		if !o.locals {
			continue
		}
		for _, args := range []bool{true, false} {
			header := false
			for _, l := range f.Locals {
				if l.Argument != args {
					continue
				}
				if !header {
					if args {
						fmt.Fprintf(w, "%s    Arguments:\n", indent)
					} else {
						fmt.Fprintf(w, "%s    Locals:\n", indent)
					}
					header = true
				}
				fmt.Fprintf(w, "%s        %s: %s\n", indent, l.Name, l.Value)
			}
		}
	}
}
