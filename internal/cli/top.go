package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
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
	// note waits for the terminal to be restored: a table redrawn in
	// place would overwrite it.
	note string
}

func topLoop(rt *resolved, o *topOptions, by top.Sort, stdout, stderr io.Writer) (int, error) {
	interval := time.Duration(float64(time.Second) / o.rate)
	st := &topState{stats: top.NewStats(interval), threads: map[int]int{}}
	st.stats.Idle, st.stats.GILOnly = o.idle, o.gil
	opts := sampler.Options{Rate: o.rate, Mode: o.mode(), Subprocesses: rt.follow, Idle: true, Greenlets: o.idle, Async: o.async, AsyncIdle: o.async && o.idle}
	var ss *session
	opts.Tick = func(sampler.Stats) { st.setCurrent(ss.s.Current()) }
	defer st.printNote(stderr)
	opts.GreenletsUnread = func(pid int, err error) {
		note := fmt.Sprintf("pyprof: process %d: %v", pid, err)
		if !isTerminal(stdout) {
			fmt.Fprintln(stderr, note)
			return
		}
		st.setNote(note)
	}
	opts.PauseDenied = func(pid int, err error) {
		if !isTerminal(stdout) {
			fmt.Fprintln(stderr, unpausedNote(pid, err))
			return
		}
		st.setNote(unpausedNote(pid, err))
	}
	ss, code, err := openSession(rt, opts, o.duration, stderr, "", syscall.SIGWINCH)
	if ss == nil {
		return code, err
	}
	defer ss.close()
	// What ending a launched program says goes out once the terminal is
	// restored: registered before the alternate screen's restore, it
	// runs after it.
	var ending bytes.Buffer
	defer func() { stderr.Write(ending.Bytes()) }()
	view := top.View{Title: describeTop(rt, ss.s), Python: ss.s.Version(), Sort: by, Lines: o.lines, Procs: rt.follow, FullFilenames: o.fullFilenames}
	ss.start(st.add)

	// What to say on stderr when top ends, after the terminal is back
	// and the last table is on it (this defer runs last).
	var exitMsg string
	defer func() {
		if exitMsg != "" {
			fmt.Fprintln(stderr, exitMsg)
		}
	}()
	scr := openTopScreen(stdout, view)
	defer scr.close()
	ticker := time.NewTicker(seconds(o.delay))
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			st.refresh()
			scr.draw(st, true)
			if o.once {
				return ss.end(&ending, "--once", nil), nil
			}
		case k := <-scr.keys:
			if why, redraw := scr.key(k, st); why != "" {
				return ss.end(&ending, why, nil), nil
			} else if redraw {
				scr.draw(st, false)
			}
		case sig := <-ss.sigs:
			if sig == syscall.SIGWINCH {
				scr.draw(st, false)
				continue
			}
			return ss.end(&ending, "stopped by "+signalName(sig), sig), nil
		case <-ss.ctx.Done():
			done := ss.wait()
			// The samples since the last table, if any: a run that
			// ends right after a refresh would otherwise end on a
			// table of 0% rows.
			if st.pending() {
				st.refresh()
				scr.draw(st, false)
			}
			code := ss.end(&ending, ss.reason(), nil)
			if errors.Is(done, sampler.ErrTargetExited) {
				exitMsg = "pyprof: the target exited"
			} else if done != nil {
				return 0, samplingError(done)
			}
			return code, nil
		}
	}
}

// add counts a sample; a process seen for the first time gets the
// baseline of its CPU share, so that the first table already shows it.
func (st *topState) add(smp sampler.Sample) {
	st.mu.Lock()
	_, known := st.threads[smp.Pid]
	st.mu.Unlock()
	var ticks, rss int64
	if !known {
		ticks, rss = procUsage(smp.Pid)
	}
	st.mu.Lock()
	if !known {
		st.stats.SetProcess(smp.Pid, smp.Cmdline, ticks, rss, time.Now())
	}
	st.stats.Add(smp)
	st.threads[smp.Pid] = len(smp.Threads)
	st.mu.Unlock()
}

// setCurrent keeps the processes the sampler follows, after each round.
func (st *topState) setCurrent(cur map[int]string) {
	st.mu.Lock()
	st.current = cur
	st.mu.Unlock()
}

// refresh updates the thread count and each process's CPU and memory, and
// drops the processes no longer sampled.
func (st *topState) refresh() {
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

// render renders the table, and starts a new window if endWindow is set.
func (st *topState) render(v top.View, endWindow bool) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	lines := st.stats.Render(v)
	if endWindow {
		st.stats.EndWindow()
	}
	return lines
}

// pending says whether samples came since the last table.
func (st *topState) pending() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stats.WindowSamples() > 0
}

func (st *topState) reset() {
	st.mu.Lock()
	st.stats.Reset()
	st.mu.Unlock()
}

func (st *topState) setNote(note string) {
	st.mu.Lock()
	st.note = note
	st.mu.Unlock()
}

func (st *topState) printNote(w io.Writer) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.note != "" {
		fmt.Fprintln(w, st.note)
	}
}

// topScreen is where top's tables go: on a terminal, the alternate
// screen, redrawn in place, with keys read from stdin if it is a terminal
// too; otherwise one table after another.
type topScreen struct {
	out     io.Writer
	tty     bool
	fd      int // stdout's, on a terminal
	view    top.View
	keys    chan byte
	restore func() // stdin's mode
	last    []string
}

func openTopScreen(stdout io.Writer, view top.View) *topScreen {
	sc := &topScreen{out: stdout, view: view, keys: make(chan byte, 16), restore: func() {}}
	f, isFile := stdout.(*os.File)
	sc.tty = isFile && term.IsTerminal(int(f.Fd()))
	if !sc.tty {
		return sc
	}
	sc.fd = int(f.Fd())
	if in := os.Stdin; term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			sc.restore = func() { term.Restore(int(in.Fd()), old) }
			go readKeys(in, sc.keys)
		}
	}
	fmt.Fprint(stdout, altScreenOn)
	return sc
}

// close restores the terminal, however top ends, and prints the last
// table again on the normal screen, as the final state: leaving the
// alternate screen takes it away.
func (sc *topScreen) close() {
	if !sc.tty {
		return
	}
	fmt.Fprint(sc.out, altScreenOff)
	sc.restore()
	var b bytes.Buffer
	for _, l := range sc.last {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	sc.out.Write(b.Bytes())
}

// key acts on a key: it changes the view, or resets the counts, and says
// whether to draw again, or it ends top, saying why.
func (sc *topScreen) key(k byte, st *topState) (why string, redraw bool) {
	switch k {
	case '1', '2', '3', '4':
		sc.view.Sort = top.Sort(k - '1')
	case 'l', 'L':
		sc.view.Lines = !sc.view.Lines
	case 'r', 'R':
		st.reset()
	case 'q', 'Q':
		return "quit", false
	case 3: // Ctrl-C in raw mode: a key, not a signal to the program
		return "interrupted", false
	default:
		return "", false
	}
	return "", true
}

func (sc *topScreen) draw(st *topState, endWindow bool) {
	if sc.tty {
		w, h, err := term.GetSize(sc.fd)
		if err == nil {
			sc.view.Width, sc.view.Height = w, h
		}
	}
	lines := st.render(sc.view, endWindow)
	sc.last = lines
	var b bytes.Buffer
	if sc.tty {
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
	sc.out.Write(b.Bytes())
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
