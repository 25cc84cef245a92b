package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/top"
	"github.com/pyprof/pyprof/procmem"
)

type topOptions struct {
	targetOptions
	samplingOptions
	delay float64
	sort  string
	lines bool
	once  bool
	// fullFilenames keeps file names whole in the table.
	fullFilenames bool
}

// Terminal control sequences, used only when stdout is a terminal.
const (
	altScreenOn  = "\x1b[?1049h\x1b[?25l" // alternate screen, hide cursor
	altScreenOff = "\x1b[?25h\x1b[?1049l"
	home         = "\x1b[H"
	clearToEOL   = "\x1b[K"
	clearBelow   = "\x1b[J"
)

func runTop(args []string, stdout, stderr io.Writer) (int, error) {
	var o topOptions
	fs := newFlagSet("top", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: pyprof top [-p PID | --pgrep PATTERN | -- COMMAND...] [-r RATE] [-s] [--idle] [--gil] [--delay SECONDS] [--sort own|total|owntime|totaltime] [--lines]")
		fmt.Fprint(stdout, "\nShow a live table of the functions a process spends its time in.\nKeys on a terminal: 1-4 sort, L lines, R reset, q quit.\n\n")
		printFlags(stdout, fs)
	}
	o.targetOptions.register(fs, true)
	o.samplingOptions.register(fs, "stop after this many seconds, 0.001 to 31536000 (a year), or unlimited (the default)")
	floatVar(fs, &floatFlag{p: &o.delay, min: minDelay, max: maxDelay, unit: "seconds", maxNote: "a day", arg: "SECONDS"},
		"delay", "", 1, "seconds between refreshes, 0.1 to 86400 (a day)")
	fs.StringVar(&o.sort, "sort", "own", "sort by own, total, owntime or totaltime")
	fs.BoolVar(&o.lines, "lines", false, "one row per line instead of per function")
	fs.BoolVar(&o.once, "once", false, "print one table after --delay and exit")
	fs.BoolVar(&o.fullFilenames, "full-filenames", false, "show full file paths instead of shortened ones")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	by, ok := top.ParseSort(o.sort)
	if !ok {
		return 0, usagef("--sort must be own, total, owntime or totaltime")
	}
	if err := o.samplingOptions.check(); err != nil {
		return 0, err
	}
	if testHookValidated != nil {
		if err := testHookValidated(&o); err != nil {
			return 0, err
		}
	}
	rt, err := o.targetOptions.resolve(fs)
	if err != nil {
		return 0, err
	}
	if rt.launched != nil {
		// Whatever ends the run, the program is not left behind.
		defer rt.launched.stop()
	}
	return topLoop(rt, &o, by, stdout, stderr)
}

// topState is shared between the sampling goroutine and the display.
type topState struct {
	mu      sync.Mutex
	stats   *top.Stats
	current map[int]string
	threads map[int]int
	done    error
}

func topLoop(rt *resolved, o *topOptions, by top.Sort, stdout, stderr io.Writer) (int, error) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGWINCH)
	defer signal.Stop(sigs)

	interval := time.Duration(float64(time.Second) / o.rate)
	st := &topState{stats: top.NewStats(interval), threads: map[int]int{}}
	st.stats.Idle, st.stats.GILOnly = o.idle, o.gil
	opts := sampler.Options{Rate: o.rate, Mode: o.mode(), Subprocesses: rt.follow, Idle: true, Greenlets: o.idle}
	var s *sampler.Sampler
	opts.Tick = func(sampler.Stats) {
		cur := s.Current()
		st.mu.Lock()
		st.current = cur
		st.mu.Unlock()
	}
	// A table redrawn in place would overwrite the note: it waits for the
	// terminal to be restored.
	var note string
	defer func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if note != "" {
			fmt.Fprintln(stderr, note)
		}
	}()
	opts.PauseDenied = func(pid int, err error) {
		if !isTerminal(stdout) {
			fmt.Fprintln(stderr, unpausedNote(pid, err))
			return
		}
		st.mu.Lock()
		note = unpausedNote(pid, err)
		st.mu.Unlock()
	}
	s, err := newSampler(rt, opts, sigs)
	var early *exitedEarlyError
	if errors.As(err, &early) {
		fmt.Fprintf(stderr, "pyprof: %v\n", early)
		return early.l.exitCode(), nil
	}
	if err != nil {
		return 0, &targetError{pid: rt.root, err: err}
	}
	defer s.Close()
	// What ending a launched program says goes out once the terminal is
	// restored: registered before the alternate screen's restore, it
	// runs after it.
	var ending bytes.Buffer
	defer func() { stderr.Write(ending.Bytes()) }()
	version := s.Version()
	title := describeTop(rt, s)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, seconds(o.duration))
		defer cancel()
	}
	if rt.launched != nil {
		go func() {
			<-rt.launched.done
			cancel()
		}()
	}
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		err := s.Run(ctx, func(smp sampler.Sample) {
			st.mu.Lock()
			_, known := st.threads[smp.Pid]
			st.mu.Unlock()
			var ticks, rss int64
			if !known {
				// The baseline of the process's CPU share, so that the
				// first table already shows it.
				ticks, rss = procUsage(smp.Pid)
			}
			st.mu.Lock()
			if !known {
				st.stats.SetProcess(smp.Pid, smp.Cmdline, ticks, rss, time.Now())
			}
			st.stats.Add(smp)
			st.threads[smp.Pid] = len(smp.Threads)
			st.mu.Unlock()
		})
		st.mu.Lock()
		st.done = err
		st.mu.Unlock()
		cancel()
	}()

	// What to say on stderr when top ends, after the terminal is back
	// and the last table is on it (this defer runs last).
	var exitMsg string
	defer func() {
		if exitMsg != "" {
			fmt.Fprintln(stderr, exitMsg)
		}
	}()
	f, isFile := stdout.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	keys := make(chan byte, 16)
	var last []string // the table last drawn
	if tty {
		restore := func() {}
		if in := os.Stdin; term.IsTerminal(int(in.Fd())) {
			old, err := term.MakeRaw(int(in.Fd()))
			if err == nil {
				restore = func() { term.Restore(int(in.Fd()), old) }
				go readKeys(in, keys)
			}
		}
		fmt.Fprint(stdout, altScreenOn)
		// However top ends, the terminal is restored, and the last
		// table, which leaving the alternate screen takes away, is
		// printed again on the normal screen, as the final state.
		defer func() {
			fmt.Fprint(stdout, altScreenOff)
			restore()
			var b bytes.Buffer
			for _, l := range last {
				b.WriteString(l)
				b.WriteByte('\n')
			}
			stdout.Write(b.Bytes())
		}()
	}

	view := top.View{Title: title, Python: version, Sort: by, Lines: o.lines, Procs: rt.follow, FullFilenames: o.fullFilenames}
	procTicks := func() {
		now := time.Now()
		st.mu.Lock()
		cur := st.current
		n := 0
		for _, c := range st.threads {
			n += c
		}
		st.stats.SetThreads(n)
		st.mu.Unlock()
		for pid, cmd := range cur {
			ticks, rss := procUsage(pid)
			st.mu.Lock()
			st.stats.SetProcess(pid, cmd, ticks, rss, now)
			st.mu.Unlock()
		}
		st.mu.Lock()
		for pid := range st.threads {
			if _, ok := cur[pid]; !ok && cur != nil {
				delete(st.threads, pid)
				st.stats.DropProcess(pid)
			}
		}
		st.mu.Unlock()
	}
	draw := func(endWindow bool) {
		if tty {
			w, h, err := term.GetSize(int(f.Fd()))
			if err == nil {
				view.Width, view.Height = w, h
			}
		}
		st.mu.Lock()
		lines := st.stats.Render(view)
		if endWindow {
			st.stats.EndWindow()
		}
		st.mu.Unlock()
		last = lines
		var b bytes.Buffer
		if tty {
			b.WriteString(home)
			for i, l := range lines {
				b.WriteString(l)
				b.WriteString(clearToEOL)
				if i < len(lines)-1 {
					b.WriteString("\r\n")
				}
			}
			b.WriteString(clearBelow)
		} else {
			fmt.Fprintf(&b, "--- %s ---\n", time.Now().Format("2006-01-02 15:04:05"))
			for _, l := range lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
			b.WriteByte('\n')
		}
		stdout.Write(b.Bytes())
	}

	ticker := time.NewTicker(seconds(o.delay))
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			procTicks()
			draw(true)
			if o.once {
				return topExit(rt, cancel, sampled, &ending, "--once", nil), nil
			}
		case k := <-keys:
			switch k {
			case '1', '2', '3', '4':
				view.Sort = top.Sort(k - '1')
			case 'l', 'L':
				view.Lines = !view.Lines
			case 'r', 'R':
				st.mu.Lock()
				st.stats.Reset()
				st.mu.Unlock()
			case 'q', 'Q':
				return topExit(rt, cancel, sampled, &ending, "quit", nil), nil
			case 3: // Ctrl-C in raw mode: a key, not a signal to the program
				return topExit(rt, cancel, sampled, &ending, "interrupted", nil), nil
			default:
				continue
			}
			draw(false)
		case sig := <-sigs:
			if sig == syscall.SIGWINCH {
				draw(false)
				continue
			}
			return topExit(rt, cancel, sampled, &ending, "stopped by "+signalName(sig), sig), nil
		case <-ctx.Done():
			<-sampled
			st.mu.Lock()
			done, pending := st.done, st.stats.WindowSamples() > 0
			st.mu.Unlock()
			// The samples since the last table, if any: a run that
			// ends right after a refresh would otherwise end on a
			// table of 0% rows.
			if pending {
				procTicks()
				draw(false)
			}
			why := "sampling ended"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = fmt.Sprintf("-d %g elapsed", o.duration)
			}
			if errors.Is(done, sampler.ErrTargetExited) && rt.launched != nil {
				// Gone, or a zombie about to be reaped.
				rt.launched.waitExit(stopGrace)
			}
			code := topExit(rt, cancel, sampled, &ending, why, nil)
			if errors.Is(done, sampler.ErrTargetExited) {
				exitMsg = "pyprof: the target exited"
			} else if done != nil {
				return 0, samplingError(done)
			}
			return code, nil
		}
	}
}

// topExit stops sampling and, for a program top launched, ends it if it
// still runs, saying why on ending, and returns its status.
func topExit(rt *resolved, cancel context.CancelFunc, sampled <-chan struct{}, ending io.Writer, why string, sig os.Signal) int {
	cancel()
	<-sampled
	if rt.launched == nil {
		return 0
	}
	return rt.launched.finish(ending, why, sig)
}

func readKeys(in *os.File, keys chan<- byte) {
	buf := make([]byte, 16)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return
		}
		for _, c := range buf[:n] {
			keys <- c
		}
	}
}

func describeTop(rt *resolved, s *sampler.Sampler) string {
	if rt.launched != nil {
		return strings.Join(rt.launched.cmd.Args, " ")
	}
	return s.Describe()
}

// procUsage reads a process's CPU ticks (utime+stime) and resident memory.
func procUsage(pid int) (ticks, rss int64) {
	u, err := procmem.DefaultFS.Usage(pid)
	if err != nil {
		return 0, 0
	}
	// USER_HZ is 100; the CPU time is a whole number of ticks.
	const tick = 10 * time.Millisecond
	return int64((u.CPU + tick/2) / tick), u.RSS
}
