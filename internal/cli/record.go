package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/pyprof/pyprof/internal/aggregate"
	"github.com/pyprof/pyprof/internal/outfile"
	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/push"
	"github.com/pyprof/pyprof/internal/sampler"
)

type recordOptions struct {
	targetOptions
	samplingOptions
	output   string
	format   string
	threads  bool
	nolineno bool
	function bool
	// hideProgress hides the status line, as py-spy's --hideprogress.
	hideProgress bool
	// fullFilenames keeps file names whole; pprof has them whole anyway.
	fullFilenames bool
	push          pushOptions
	// pushOnly: --push without -o or -f writes no file.
	pushOnly bool
	pushTags []push.Label
	pusher   *push.Client
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
	async       bool
}

func (o *samplingOptions) register(fs *pflag.FlagSet, durationHelp string) {
	floatVar(fs, &floatFlag{p: &o.rate, min: minRate, max: maxRate, unit: "samples per second", arg: "RATE"},
		"rate", "r", 100, "samples per second, 0.1 to 10000")
	floatVar(fs, &floatFlag{p: &o.duration, min: minDuration, max: maxDuration, unit: "seconds", maxNote: "a year", arg: "SECONDS", unlimited: true},
		"duration", "d", 0, durationHelp)
	fs.BoolVar(&o.nonblocking, "nonblocking", false, "never pause the target; drop stacks that change while being read")
	fs.BoolVar(&o.blocking, "blocking", false, "pause the thread holding the GIL (every thread if need be) for every sample")
	fs.BoolVarP(&o.idle, "idle", "i", false, "include idle threads")
	fs.BoolVarP(&o.gil, "gil", "g", false, "only sample the thread holding the GIL")
	fs.BoolVar(&o.async, "async", false, "show a thread that runs an asyncio task as the task's stack under the tasks that await it; with --idle, every pending task's stack too")
}

func (o *samplingOptions) check() error {
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

// outputFormat is the format -f, or else -o's extension, chose.
func (o *recordOptions) outputFormat() *profile.Format {
	f, _ := profile.FormatNamed(o.format)
	return f
}

func runRecord(args []string, stdout, stderr io.Writer) (code int, err error) {
	var o recordOptions
	fs := newFlagSet("record", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: pyprof record [-p PID | --pgrep PATTERN | -- COMMAND...] [-o FILE] [-f FORMAT] [options]")
		fmt.Fprint(stdout, "\nSample a process until Ctrl-C, the duration, or its exit, and write a profile.\n\n")
		printFlags(stdout, fs)
	}
	o.targetOptions.register(fs, true)
	fs.StringVarP(&o.output, "output", "o", "", "output file, or - for stdout (default profile-PID.EXT)")
	fs.StringVarP(&o.format, "format", "f", "", profile.FormatNames()+"; py-spy's flamegraph and raw are svg and collapsed (default: from -o's extension, else "+profile.Formats[0].Name+")")
	o.samplingOptions.register(fs, "stop after this many seconds, 0.001 to 31536000 (a year), or unlimited (the default: until Ctrl-C or the target exits)")
	fs.BoolVarP(&o.threads, "threads", "t", false, "add a frame for each thread")
	fs.BoolVar(&o.nolineno, "nolineno", false, "aggregate by function, not by line")
	fs.BoolVarP(&o.function, "function", "F", false, "show each function at its first line")
	fs.BoolVar(&o.fullFilenames, "full-filenames", false, "show full file paths instead of shortened ones (pprof always has them)")
	fs.BoolVar(&o.hideProgress, "hideprogress", false, "no status line")
	fs.MarkHidden("hideprogress")
	o.push.register(fs)
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if o.pushTags, err = o.push.check(fs); err != nil {
		return 0, err
	}
	o.pushOnly = o.push.url != "" && !fs.Changed("output") && !fs.Changed("format")
	if err := o.samplingOptions.check(); err != nil {
		return 0, err
	}
	if o.nolineno && o.function {
		return 0, usagef("--nolineno and --function exclude each other")
	}
	if o.format != "" {
		if o.format, err = pyspyFormat(o.format); err != nil {
			return 0, err
		}
		if _, ok := profile.FormatNamed(o.format); !ok {
			return 0, usagef("unknown format %q (%s)", o.format, profile.FormatNames())
		}
	} else if f, ok := profile.FormatOf(o.output); ok {
		o.format = f.Name
	} else {
		o.format = profile.Formats[0].Name
	}
	// Fail before sampling, not after, when the result cannot be written.
	oo := outputOptions(stdout)
	switch {
	case o.pushOnly:
	case o.output != "":
		if err := outfile.Check(o.output, oo); err != nil {
			return 0, err
		}
	default:
		dir, err := os.Getwd()
		if err != nil {
			dir = "."
		}
		if err := outfile.CheckDir(dir); err != nil {
			return 0, fmt.Errorf("%w (choose another file with -o)", err)
		}
	}
	if testHookValidated != nil {
		if err := testHookValidated(&o); err != nil {
			return 0, err
		}
	}
	if o.push.url != "" {
		if o.pusher, err = o.push.connect(stderr); err != nil {
			return 0, err
		}
		defer o.pusher.Close()
	}
	rt, err := o.targetOptions.resolve(fs)
	if err != nil {
		return 0, err
	}
	if rt.launched != nil {
		// Whatever ends the run, the program is not left behind.
		defer rt.launched.stop()
	}
	if o.pushOnly {
		return record(rt, &o, nil, stderr)
	}
	if o.output == "" {
		o.output = fmt.Sprintf("profile-%d.%s", rt.root, o.outputFormat().Extension())
	}
	// Checked again, now that the default name is known, and with the
	// descriptors writing needs held from now on.
	out, err := outfile.New(o.output, oo)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	return record(rt, &o, out, stderr)
}

// outputOptions are how record writes its output: "-" is stdout, and
// under sudo a new file belongs to the user who ran sudo.
func outputOptions(stdout io.Writer) outfile.Options {
	oo := outfile.Options{Stdout: stdout}
	if uid, gid, ok := sudoOwner(); ok {
		oo.Owner = &outfile.Owner{UID: uid, GID: gid}
	}
	return oo
}

// testHookWriting, set by tests, runs before the output is written.
var testHookWriting func()

// attachTimeout bounds how long a just-started program may take to
// initialise its interpreter.
const attachTimeout = 10 * time.Second

// record samples into out, and pushes with --push; out is nil when only
// pushing.
func record(rt *resolved, o *recordOptions, out *outfile.Output, stderr io.Writer) (int, error) {
	opts := sampler.Options{
		Rate: o.rate, Mode: o.mode(), Subprocesses: rt.follow,
		Idle: o.idle, GIL: o.gil, Greenlets: o.idle, Async: o.async, AsyncIdle: o.async && o.idle,
	}
	// Without a terminal there is no status line, and no Tick: the
	// sampler would build its Stats, which allocate, for every round.
	var status *statusLine
	if isTerminal(stderr) && !o.hideProgress {
		status = &statusLine{w: stderr, start: time.Now()}
		opts.Tick = status.show
	}
	b := profile.NewBuilder()
	agg := aggregate.New(b, aggregate.Options{
		Processes: rt.follow, Threads: o.threads, NoLineNumbers: o.nolineno, FirstLines: o.function, FullFilenames: o.fullFilenames,
		KeepThreads: o.outputFormat().KeepsThreads,
		KeepOrder:   o.outputFormat().KeepsOrder,
	})
	emit := agg.Add
	if out == nil {
		// Only pushing: nothing adds up over the whole run.
		emit, agg = func(sampler.Sample) {}, nil
	}
	var pushed *pushing
	opts.Exited = func(pid int) {
		if agg != nil {
			agg.Forget(pid)
		}
		if pushed != nil {
			pushed.rec.Forget(pid)
		}
	}
	opts.GreenletsUnread = func(pid int, err error) {
		status.clear()
		fmt.Fprintf(stderr, "pyprof: process %d: %v\n", pid, err)
	}
	opts.PauseDenied = func(pid int, err error) {
		status.clear()
		fmt.Fprintln(stderr, unpausedNote(pid, err))
	}
	ss, code, err := openSession(rt, opts, o.duration, stderr, "; no profile written")
	if ss == nil {
		return code, err
	}
	defer ss.close()

	if o.pusher != nil {
		log := func(msg string) {
			status.clear()
			fmt.Fprintln(stderr, "pyprof: "+msg)
		}
		pushed = startPushing(o.pusher, &o.push, o.pushTags, rt.root, o.rate, o.idle, log, ss.cancel)
		emit = pushed.addToo(emit)
		fmt.Fprintf(stderr, "pyprof: sampling %s at %g Hz (%s); pushing every %gs to %s as %s; press Ctrl-C to stop",
			ss.s.Describe(), o.rate, opts.Mode, o.push.interval, o.pusher.URL(), pushed.enc.App)
		if out != nil {
			fmt.Fprintf(stderr, " and write %s", out.Name())
		}
		fmt.Fprintln(stderr)
	} else {
		fmt.Fprintf(stderr, "pyprof: sampling %s at %g Hz (%s); press Ctrl-C to stop and write %s\n",
			ss.s.Describe(), o.rate, opts.Mode, out.Name())
	}
	ss.stopOnSignal()
	start := time.Now()
	if status != nil {
		status.start = start
	}
	runErr := ss.run(emit)
	elapsed := time.Since(start)
	status.clear()
	if pushed != nil {
		if code, done, err := pushed.end(ss, stderr, runErr, elapsed, out == nil); done {
			return code, err
		}
	}
	st := ss.s.Stats()
	exited := ss.targetExited()
	if runErr != nil && !errors.Is(runErr, sampler.ErrTargetExited) {
		return 0, samplingError(runErr)
	}

	meta := b.Meta()
	meta.Command = commandTitle(rt, ss.s)
	meta.Pids = st.Seen
	meta.Start, meta.Duration = start, elapsed
	meta.Rate, meta.Interval = o.rate, time.Duration(float64(time.Second)/o.rate)
	meta.Rounds, meta.Errors, meta.Missed = st.Rounds, st.Errors, st.Missed
	meta.Idle = o.idle
	p := b.Profile()
	path, abandoned, err := writeProfile(p, o, out, ss.sigs, stderr)
	if err != nil {
		return 0, err
	}
	if abandoned {
		return 130, nil
	}
	if exited {
		fmt.Fprintln(stderr, "pyprof: the target exited")
	}
	printSummary(stderr, path, p, st, elapsed)
	code = ss.end(stderr, ss.reason(), ss.stopSig)
	if pushed != nil && pushed.p.Err() != nil && rt.launched == nil {
		// The pushes failed for good (said above); the profile is
		// written, but the run did not do what it was asked. A
		// launched program's status stays the status.
		code = 1
	}
	return code, nil
}

// writeProfile writes p as record's output. A second Ctrl-C while writing
// abandons it: no file appears, and no temporary file is left.
func writeProfile(p *profile.Profile, o *recordOptions, out *outfile.Output, sigs <-chan os.Signal, stderr io.Writer) (path string, abandoned bool, err error) {
	written := make(chan error, 1)
	go func() {
		if testHookWriting != nil {
			testHookWriting()
		}
		var err error
		path, err = writeOutput(p, o, out)
		written <- err
	}()
	select {
	case err := <-written:
		return path, false, err
	case sig := <-sigs:
		out.Abandon()
		fmt.Fprintf(stderr, "pyprof: %v while writing: output abandoned\n", sig)
		select {
		case <-written:
		case <-time.After(2 * time.Second):
		}
		return "", true, nil
	}
}

// printSummary says what was written and how the sampling went.
func printSummary(stderr io.Writer, path string, p *profile.Profile, st sampler.Stats, elapsed time.Duration) {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(st.Rounds) / elapsed.Seconds()
	}
	// Samples are the thread stacks recorded, as the flame graph's title
	// and root count them; a round samples every thread once, and the
	// rate is of rounds.
	fmt.Fprintf(stderr, "pyprof: wrote %s: %d samples in %d rounds, %d errors (%d torn samples read again, %d paused, target stopped %.1f ms), %d processes, %.1f s, %.1f Hz achieved",
		path, p.Total(), st.Rounds, st.Errors, st.Retries, st.Paused, float64(st.Stopped)/float64(time.Millisecond), len(st.Seen), elapsed.Seconds(), rate)
	if st.Missed > 0 {
		fmt.Fprintf(stderr, ", %d rounds missed after stalls", st.Missed)
	}
	fmt.Fprintln(stderr)
}

// newSampler attaches to the target. A program pyprof just started needs
// a moment to initialise its interpreter, and may exec a few times first:
// it is watched until then (see launched.attach), as long as no signal
// arrives.
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
	if rt.launched != nil {
		return rt.launched.attach(opts, sigs)
	}
	return sampler.New(rt.root, opts)
}

func commandTitle(rt *resolved, s *sampler.Sampler) string {
	d := s.Describe()
	if rt.launched != nil {
		d = strings.Join(rt.launched.cmd.Args, " ")
	}
	return d
}

// writeOutput writes the profile to out, or else to a temporary file,
// and returns the path written.
func writeOutput(p *profile.Profile, o *recordOptions, out *outfile.Output) (string, error) {
	f := o.outputFormat()
	render := func(w io.Writer) error { return f.Write(p, w) }
	err := out.Write(render)
	if err == nil || errors.Is(err, outfile.ErrAbandoned) {
		return out.Name(), err
	}
	name, terr := out.SaveTemp("pyprof-*."+f.Extension(), render)
	if errors.Is(terr, outfile.ErrAbandoned) {
		return "", terr
	}
	if terr != nil {
		return "", fmt.Errorf("%w (and no temporary file either: %v)", err, terr)
	}
	return name, fmt.Errorf("%w; the profile was saved to %s instead", err, name)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
