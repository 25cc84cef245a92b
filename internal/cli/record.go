package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/pyprof/pyprof/flamegraph"
	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/pyspy"
)

type recordOptions struct {
	targetOptions
	samplingOptions
	output   string
	format   string
	threads  bool
	nolineno bool
	function bool
}

// samplingOptions are the flags record and top share: how often and how
// the target is sampled, and for how long.
type samplingOptions struct {
	rate        float64
	duration    float64
	nonblocking bool
	blocking    bool
	idle        bool
	gil         bool
}

func (o *samplingOptions) register(fs *pflag.FlagSet, durationHelp string) {
	fs.Float64VarP(&o.rate, "rate", "r", 100, "samples per second")
	fs.Float64VarP(&o.duration, "duration", "d", 0, durationHelp)
	fs.BoolVar(&o.nonblocking, "nonblocking", false, "never pause the target; drop stacks that change while being read")
	fs.BoolVar(&o.blocking, "blocking", false, "pause the thread holding the GIL (every thread if need be) for every sample")
	fs.BoolVar(&o.idle, "idle", false, "include idle threads")
	fs.BoolVar(&o.gil, "gil", false, "only sample the thread holding the GIL")
}

func (o *samplingOptions) check() error {
	if o.rate <= 0 || o.rate > 10000 {
		return usagef("--rate must be between 0 and 10000")
	}
	if o.duration < 0 {
		return usagef("--duration must not be negative")
	}
	if o.blocking && o.nonblocking {
		return usagef("--blocking and --nonblocking exclude each other")
	}
	return nil
}

// mode picks the sampling mode from the flags.
func (o *samplingOptions) mode() sampler.Mode {
	switch {
	case o.blocking:
		return sampler.Blocking
	case o.nonblocking:
		return sampler.Nonblocking
	}
	return sampler.Auto
}

// formats maps -f values to file extensions.
var formats = map[string]string{
	"svg":        "svg",
	"pprof":      "pb.gz",
	"speedscope": "speedscope.json",
	"collapsed":  "txt",
}

// formatOf picks a format from an output file's extension.
func formatOf(path string) (string, bool) {
	p := strings.ToLower(path)
	switch {
	case strings.HasSuffix(p, ".svg"):
		return "svg", true
	case strings.HasSuffix(p, ".pb.gz"), strings.HasSuffix(p, ".pprof"), strings.HasSuffix(p, ".pb"):
		return "pprof", true
	case strings.HasSuffix(p, ".json"):
		return "speedscope", true
	case strings.HasSuffix(p, ".txt"), strings.HasSuffix(p, ".collapsed"), strings.HasSuffix(p, ".folded"):
		return "collapsed", true
	}
	return "", false
}

func runRecord(args []string, stdout, stderr io.Writer) (code int, err error) {
	var o recordOptions
	fs := newFlagSet("record", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: pyprof record [-p PID | --pgrep PATTERN | -- COMMAND...] [-o FILE] [-f FORMAT] [options]")
		fmt.Fprintln(stderr, "\nSample a process until Ctrl-C, the duration, or its exit, and write a profile.")
		fs.PrintDefaults()
	}
	o.targetOptions.register(fs, true)
	fs.StringVarP(&o.output, "output", "o", "", "output file (default profile-PID.EXT)")
	fs.StringVarP(&o.format, "format", "f", "", "svg, pprof, speedscope or collapsed (default: from -o's extension, else svg)")
	o.samplingOptions.register(fs, "stop after this many seconds (default: until Ctrl-C or the target exits)")
	fs.BoolVar(&o.threads, "threads", false, "add a frame for each thread")
	fs.BoolVar(&o.nolineno, "nolineno", false, "aggregate by function, not by line")
	fs.BoolVar(&o.function, "function", false, "show each function at its first line")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if err := o.samplingOptions.check(); err != nil {
		return 0, err
	}
	if o.format != "" {
		if _, ok := formats[o.format]; !ok {
			return 0, usagef("unknown format %q (svg, pprof, speedscope or collapsed)", o.format)
		}
	} else if f, ok := formatOf(o.output); ok {
		o.format = f
	} else {
		o.format = "svg"
	}
	// Fail before sampling, not after, when the result cannot be written.
	if o.output != "" {
		if err := checkWritable(o.output); err != nil {
			return 0, err
		}
	} else if err := checkWritable("profile.tmp"); err != nil {
		return 0, err
	}
	rt, err := o.targetOptions.resolve(fs)
	if err != nil {
		return 0, err
	}
	if o.output == "" {
		o.output = fmt.Sprintf("profile-%d.%s", rt.root, formats[o.format])
	}
	return record(rt, &o, stderr)
}

// checkWritable creates and removes a file next to path.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".pyprof-*.tmp")
	if err != nil {
		return fmt.Errorf("cannot write the output: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// testHookWriting, set by tests, runs before the output is written.
var testHookWriting func()

// attachTimeout bounds how long a just-started program may take to
// initialise its interpreter.
const attachTimeout = 10 * time.Second

func record(rt *resolved, o *recordOptions, stderr io.Writer) (int, error) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	opts := sampler.Options{
		Rate: o.rate, Mode: o.mode(), Subprocesses: rt.follow,
		Idle: o.idle, GIL: o.gil,
	}
	tty := isTerminal(stderr)
	var lastStatus time.Time
	start := time.Now()
	// Without a terminal there is no status line, and no Tick: the
	// sampler would build its Stats, which allocate, for every round.
	if tty {
		opts.Tick = func(st sampler.Stats) {
			if time.Since(lastStatus) < 250*time.Millisecond {
				return
			}
			lastStatus = time.Now()
			fmt.Fprintf(stderr, "\r\x1b[K%s  %d samples  %d errors  %d processes  lag %s",
				time.Since(start).Round(100*time.Millisecond), st.Stacks, st.Errors, st.Processes, st.MaxLag.Round(10*time.Microsecond))
		}
	}
	b := profile.NewBuilder()
	agg := newAggregator(b, o, rt.follow)
	opts.Exited = agg.forget
	s, err := newSampler(rt, opts, sigs)
	if err != nil {
		return 0, &targetError{pid: rt.root, err: err}
	}
	defer s.Close()

	fmt.Fprintf(stderr, "pyprof: sampling %s at %g Hz (%s); press Ctrl-C to stop and write %s\n",
		s.Describe(), o.rate, opts.Mode, o.output)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(o.duration*float64(time.Second)))
		defer cancel()
	}
	var stopSig os.Signal
	go func() {
		select {
		case sig := <-sigs:
			stopSig = sig
			cancel()
		case <-ctx.Done():
		}
	}()
	if rt.launched != nil {
		go func() {
			<-rt.launched.done
			cancel()
		}()
	}
	start = time.Now()
	runErr := s.Run(ctx, agg.addSample)
	elapsed := time.Since(start)
	if tty {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	st := s.Stats()
	exited := errors.Is(runErr, sampler.ErrTargetExited) || rt.launched != nil && rt.launched.exited()
	if runErr != nil && !errors.Is(runErr, sampler.ErrTargetExited) {
		return 0, runErr
	}

	meta := b.Meta()
	meta.Command = commandTitle(rt, s)
	meta.Pids = st.Seen
	meta.Start, meta.Duration = start, elapsed
	meta.Rate, meta.Interval = o.rate, time.Duration(float64(time.Second)/o.rate)
	meta.Samples, meta.Errors, meta.Missed = st.Rounds, st.Errors, st.Missed
	p := b.Profile()

	// A second Ctrl-C while writing abandons the output: the writer
	// checks before its final rename, so no file appears.
	written := make(chan error, 1)
	var abandoned atomic.Bool
	var path string
	go func() {
		if testHookWriting != nil {
			testHookWriting()
		}
		var err error
		path, err = writeOutput(p, o, &abandoned)
		written <- err
	}()
	select {
	case err := <-written:
		if err != nil {
			return 0, err
		}
	case sig := <-sigs:
		abandoned.Store(true)
		fmt.Fprintf(stderr, "pyprof: %v while writing: output abandoned\n", sig)
		select {
		case <-written:
		case <-time.After(2 * time.Second):
		}
		return 130, nil
	}
	if exited {
		fmt.Fprintln(stderr, "pyprof: the target exited")
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(st.Rounds) / elapsed.Seconds()
	}
	fmt.Fprintf(stderr, "pyprof: wrote %s: %d samples, %d errors (%d torn samples read again, %d paused, target stopped %.1f ms), %d processes, %.1f s, %.1f Hz achieved",
		path, p.Total(), st.Errors, st.Retries, st.Paused, float64(st.Stopped)/float64(time.Millisecond), len(st.Seen), elapsed.Seconds(), rate)
	if st.Missed > 0 {
		fmt.Fprintf(stderr, ", %d samples missed after stalls", st.Missed)
	}
	fmt.Fprintln(stderr)
	if rt.launched != nil {
		if !rt.launched.exited() && stopSig == nil {
			// The duration ended first: stop the program we started.
			rt.launched.cmd.Process.Signal(syscall.SIGTERM)
			if !rt.launched.waitExit(2 * time.Second) {
				rt.launched.cmd.Process.Kill()
			}
		}
		return rt.launched.exitCode(), nil
	}
	return 0, nil
}

// newSampler attaches to the target. A program pyprof just started needs
// a moment to initialise its interpreter, so attaching is retried for a
// while, as long as it runs and no signal arrives.
func newSampler(rt *resolved, opts sampler.Options, sigs chan os.Signal) (*sampler.Sampler, error) {
	// Sampling is one goroutine waking a hundred times a second; with
	// more than one P the runtime wakes further threads to look for work
	// at each tick, which cost more than the sample itself: measured with
	// the scheduler's own accounting (cpuacct), a record of a busy 3.11
	// target took 249 µs of CPU per sample with two Ps and 133 µs with
	// one. GOMAXPROCS in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	deadline := time.Now().Add(attachTimeout)
	for {
		s, err := sampler.New(rt.root, opts)
		if err == nil || rt.launched == nil || time.Now().After(deadline) {
			if err != nil && rt.launched != nil && errors.Is(err, target.ErrNotPython) && !opts.Subprocesses {
				return nil, fmt.Errorf("%w; if it starts Python as a subprocess, add -s", err)
			}
			return s, err
		}
		if rt.launched.exited() {
			return nil, fmt.Errorf("%q exited before its interpreter could be found: %w", rt.launched.cmd.Args, err)
		}
		select {
		case sig := <-sigs:
			return nil, fmt.Errorf("interrupted by %v", sig)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func commandTitle(rt *resolved, s *sampler.Sampler) string {
	d := s.Describe()
	if rt.launched != nil {
		d = strings.Join(rt.launched.cmd.Args, " ")
	}
	return d
}

// aggregator adds samples to a record profile. What recurs from sample
// to sample is kept, so that a stack seen before costs map lookups and no
// allocation: the frame of each process, thread and Python function (at a
// line) is looked up by what identifies it, and its label is built once.
type aggregator struct {
	b          *profile.Builder
	threads    bool // a frame for each thread
	nolineno   bool
	function   bool
	procFrames bool // a frame for each process

	procs    map[int]procFrame // by pid
	thrFrame map[threadKey]int // frame IDs
	hexNames map[uint64]string // names of threads without one, by ident
	funcs    map[funcLine]int  // frame IDs
	ids      []int             // scratch: one stack's frame IDs
}

type procFrame struct {
	cmdline string
	id      int
}

type threadKey struct {
	tid  int
	name string
}

// funcLine is a Python frame as the profile records it. pyspy shares one
// immutable Function among the frames of a code object, so its pointer
// stands for the function's name, file and first line.
type funcLine struct {
	fn   *pyspy.Function
	line int
}

// maxFuncs bounds the frames cached by Function pointer. A process that
// compiles code at run time (exec, templates) makes new Functions for the
// same frames, and the cache would otherwise grow with them and keep them
// alive; clearing it only costs the lookups by value again.
const maxFuncs = 1 << 16

func newAggregator(b *profile.Builder, o *recordOptions, procFrames bool) *aggregator {
	return &aggregator{
		b: b, threads: o.threads, nolineno: o.nolineno, function: o.function, procFrames: procFrames,
		procs: map[int]procFrame{}, thrFrame: map[threadKey]int{},
		hexNames: map[uint64]string{}, funcs: map[funcLine]int{},
	}
}

// addSample adds each thread's stack, root first, with the process and
// thread frames the options ask for.
func (a *aggregator) addSample(smp sampler.Sample) {
	for _, t := range smp.Threads {
		ids := a.ids[:0]
		if a.procFrames {
			ids = append(ids, a.processFrame(smp.Pid, smp.Cmdline))
		}
		name := t.Name
		if !t.HasName {
			name = a.hexName(t.ID)
		}
		if a.threads {
			ids = append(ids, a.threadFrame(t.NativeID, name))
		}
		for i := len(t.Frames) - 1; i >= 0; i-- {
			ids = append(ids, a.pythonFrame(&t.Frames[i]))
		}
		a.ids = ids
		a.b.AddStack(ids, 1, smp.Pid, t.NativeID, name)
	}
}

// forget drops what the caches hold of a process that is no longer
// sampled: its process frame, and the frames cached by Function pointer,
// which would keep its reader's Functions alive. Its samples stay in the
// profile.
func (a *aggregator) forget(pid int) {
	delete(a.procs, pid)
	clear(a.funcs)
}

func (a *aggregator) processFrame(pid int, cmdline string) int {
	if p, ok := a.procs[pid]; ok && p.cmdline == cmdline {
		return p.id
	}
	id := a.b.FrameID(profile.ProcessFrame(pid, cmdline))
	a.procs[pid] = procFrame{cmdline, id}
	return id
}

func (a *aggregator) threadFrame(tid int, name string) int {
	k := threadKey{tid, name}
	if id, ok := a.thrFrame[k]; ok {
		return id
	}
	id := a.b.FrameID(profile.ThreadFrame(tid, name))
	a.thrFrame[k] = id
	return id
}

// hexName names a thread that has no name by its ident, as "0x7f...".
func (a *aggregator) hexName(ident uint64) string {
	name, ok := a.hexNames[ident]
	if !ok {
		name = "0x" + strconv.FormatUint(ident, 16)
		a.hexNames[ident] = name
	}
	return name
}

func (a *aggregator) pythonFrame(f *pyspy.Frame) int {
	line := f.Line
	switch {
	case a.nolineno:
		line = 0
	case a.function:
		line = f.FirstLine
	}
	k := funcLine{f.Function, line}
	if id, ok := a.funcs[k]; ok {
		return id
	}
	if len(a.funcs) >= maxFuncs {
		clear(a.funcs)
	}
	id := a.b.FrameID(profile.Frame{Kind: profile.Python, Name: f.Name, File: f.Filename, Line: line, FirstLine: f.FirstLine})
	a.funcs[k] = id
	return id
}

// writeOutput writes the profile atomically next to o.output, falling back
// to a temporary file if that fails, and returns the path written.
func writeOutput(p *profile.Profile, o *recordOptions, abandoned *atomic.Bool) (string, error) {
	err := writeFile(o.output, p, o.format, abandoned)
	if err == nil || errors.Is(err, errAbandoned) {
		return o.output, err
	}
	f, terr := os.CreateTemp("", "pyprof-*."+formats[o.format])
	if terr != nil {
		return "", fmt.Errorf("write %s: %w (and no temporary file either: %v)", o.output, err, terr)
	}
	name := f.Name()
	f.Close()
	if terr := writeFile(name, p, o.format, abandoned); terr != nil {
		return "", fmt.Errorf("write %s: %w (and %s: %v)", o.output, err, name, terr)
	}
	return name, fmt.Errorf("write %s: %w; the profile was saved to %s instead", o.output, err, name)
}

// errAbandoned is returned by a write cancelled by a second interrupt.
var errAbandoned = errors.New("output abandoned")

func writeFile(path string, p *profile.Profile, format string, abandoned *atomic.Bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".pyprof-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	switch format {
	case "svg":
		err = flamegraph.Write(f, p, flamegraph.Options{})
	case "pprof":
		err = p.WritePprof(f)
	case "speedscope":
		err = p.WriteSpeedscope(f)
	default:
		err = p.WriteCollapsed(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if uid, gid, ok := sudoOwner(); ok {
		// Under sudo the file belongs to the user who asked for it.
		if err := os.Chown(tmp, uid, gid); err != nil {
			return err
		}
	}
	if abandoned.Load() {
		return errAbandoned
	}
	return os.Rename(tmp, path)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
