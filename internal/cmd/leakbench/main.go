// Command leakbench measures what pyprof holds over a long recording and
// what sampling many threads costs it:
//
//   - churn: pyprof's open fds (/proc/PID/fd) and resident memory (VmRSS,
//     and VmHWM, its peak) every -every over a -churn long `pyprof record`
//     of testdata/targets/threadchurn.py, which starts a thread every 50
//     ms and lets it end a few milliseconds later;
//   - gunicorn: the same over a -gunicorn long `pyprof record --pgrep` of
//     Debian's gunicorn (-w 4 --max-requests 50, sync workers, webapp.py)
//     under wrk load on loopback, where a worker is replaced every second
//     or so; it counts the worker pids gunicorn booted too;
//   - threads: achieved rate and CPU at -rate on manythreads.py with 500
//     threads (4 busy, 496 parked in Event.wait), pyprof's default mode beside
//     py-spy's default and --nonblocking in the same round, over -rounds
//     rounds of -seconds each, in an order that rotates; medians;
//   - greenlets: the same on greenlets.py under gevent with -greenlets
//     parked greenlets: pyprof record --idle (every parked greenlet's stack
//     every round) beside plain record and py-spy --idle;
//   - tasks: achieved rate and CPU at -rate on manytasks.py with -tasks
//     pending asyncio tasks, on each of -tasks-pythons: pyprof record
//     --async --idle beside plain record and py-spy record --idle, as
//     threads does (tasks.go).
//
// Each recording is ended as a user would, with SIGINT, and must write its
// output. Every child is killed when leakbench ends (see
// internal/benchproc). Run it from the module root after `make build` (make
// bench-leaks does both).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pyprof/pyprof/internal/benchproc"
)

// procs holds every child, so that none outlives leakbench.
var procs = benchproc.New("leakbench")

var (
	benchFlag    = flag.String("bench", "churn,gunicorn,threads", "benchmarks to run, comma-separated")
	pyprofBin    = flag.String("pyprof", "bin/pyprof", "pyprof binary")
	pyspyBin     = flag.String("py-spy", "/work/shared/peers/py-spy", "py-spy binary (threads benchmark)")
	python       = flag.String("python", "/usr/bin/python3.11", "interpreter for the churn and threads targets")
	gunicornBin  = flag.String("gunicorn", "/usr/bin/gunicorn", "gunicorn")
	churnFor     = flag.Duration("churn", 20*time.Minute, "length of the thread-churn recording")
	gunicornFor  = flag.Duration("gunicorn-for", 15*time.Minute, "length of the gunicorn recording")
	every        = flag.Duration("every", time.Minute, "how often pyprof's fds and memory are read")
	churnEvery   = flag.Duration("thread-every", 50*time.Millisecond, "churn target: time between thread starts")
	maxRequests  = flag.Int("max-requests", 50, "gunicorn: requests a worker serves before it is replaced")
	rounds       = flag.Int("rounds", 5, "threads and greenlets benchmarks: rounds")
	seconds      = flag.Int("seconds", 20, "threads and greenlets benchmarks: seconds each profiler samples per round")
	rate         = flag.Int("rate", 100, "threads benchmark: sampling rate, Hz")
	threadsTotal = flag.Int("threads", 500, "threads benchmark: threads in the target, 4 of them busy")
)

func main() {
	flag.Parse()
	procs.HandleSignals()
	root, err := os.Getwd()
	if err != nil {
		procs.Fatalf("%v", err)
	}
	targets := filepath.Join(root, "testdata", "targets")
	if _, err := os.Stat(targets); err != nil {
		procs.Fatalf("run from the module root: %v", err)
	}
	if _, err := os.Stat(*pyprofBin); err != nil {
		procs.Fatalf("%v (make build)", err)
	}
	tmp, err := os.MkdirTemp("", "leakbench-")
	if err != nil {
		procs.Fatalf("%v", err)
	}
	procs.AtExit(func() { os.RemoveAll(tmp) })
	fmt.Printf("leakbench: pyprof %s, %s, %d cores\n", *pyprofBin, time.Now().Format(time.RFC3339), numCPU())
	for _, name := range strings.Split(*benchFlag, ",") {
		switch strings.TrimSpace(name) {
		case "churn":
			benchChurn(targets, tmp)
		case "gunicorn":
			benchGunicorn(targets, tmp)
		case "threads":
			benchThreads(targets, tmp)
		case "greenlets":
			benchGreenlets(targets, tmp)
		case "tasks":
			benchTasks(targets, tmp)
		case "push":
			benchPush(targets, tmp)
		default:
			procs.Fatalf("no benchmark %q (churn, gunicorn, threads, greenlets, tasks, push)", name)
		}
	}
	procs.Exit(0)
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

// target is a Python script started by leakbench.
type target struct {
	c   *benchproc.Child
	log *lineLog
}

// startScript runs script on the interpreter and waits for its report
// line.
func startScript(argv []string, onLine func(string)) (*target, error) {
	ready := make(chan struct{})
	var once atomic.Bool
	log := &lineLog{onLine: func(line string) {
		if strings.HasPrefix(line, "PYPROF-READY ") && once.CompareAndSwap(false, true) {
			close(ready)
		}
		if onLine != nil {
			onLine(line)
		}
	}}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	c, err := procs.Spawn(cmd)
	if err != nil {
		return nil, err
	}
	select {
	case <-ready:
		return &target{c: c, log: log}, nil
	case <-c.Done():
		return nil, fmt.Errorf("%s exited: %v: %s", filepath.Base(argv[1]), c.Err(), tail(log.String()))
	case <-time.After(60 * time.Second):
		c.Kill()
		return nil, fmt.Errorf("%s did not report in 60 s: %s", filepath.Base(argv[1]), tail(log.String()))
	}
}

// recording is a pyprof record run in the background.
type recording struct {
	c      *benchproc.Child
	stderr *lineLog
	out    string
}

func startRecord(out string, args ...string) (*recording, error) {
	cmd := exec.Command(*pyprofBin, append(append([]string{"record"}, args...), "-o", out)...)
	r := &recording{stderr: &lineLog{}, out: out}
	cmd.Stdout, cmd.Stderr = r.stderr, r.stderr
	var err error
	r.c, err = procs.Spawn(cmd)
	return r, err
}

// stop ends the recording with SIGINT, as Ctrl-C would, and returns
// pyprof's closing line.
func (r *recording) stop() (string, error) {
	syscall.Kill(r.c.Pid(), syscall.SIGINT)
	if !r.c.Exited(2 * time.Minute) {
		r.c.Kill()
		return "", fmt.Errorf("pyprof did not exit 2 minutes after SIGINT")
	}
	last := lastLine(r.stderr.String())
	if r.c.Err() != nil {
		return last, fmt.Errorf("pyprof: %v: %s", r.c.Err(), tail(r.stderr.String()))
	}
	if fi, err := os.Stat(r.out); err != nil || fi.Size() == 0 {
		return last, fmt.Errorf("pyprof wrote no output: %v: %s", err, tail(r.stderr.String()))
	}
	return last, nil
}

// lastLine returns the last line of pyprof's stderr, after any status
// line it rewrote with \r.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimPrefix(s, "\x1b[K")
}

// row is one reading of pyprof's resources.
type row struct {
	at    time.Duration
	u     usage
	extra int // threads started (churn) or worker pids booted (gunicorn)
}

// watch reads pid's resources every -every until d has passed, and once
// 10 s in (the baseline), calling extra for the last column.
func watch(pid int, d time.Duration, extra func() int, done <-chan struct{}) ([]row, error) {
	start := time.Now()
	var rows []row
	read := func() error {
		u, err := readUsage(pid)
		if err != nil {
			return fmt.Errorf("pyprof exited early: %v", err)
		}
		r := row{at: time.Since(start).Round(time.Second), u: u, extra: extra()}
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "leakbench: %v: %d fds, RSS %d kB (peak %d kB), %d\n", r.at, u.fds, u.rss, u.hwm, r.extra)
		return nil
	}
	next := 10 * time.Second
	for next <= d {
		select {
		case <-done:
			return rows, fmt.Errorf("pyprof exited early")
		case <-time.After(time.Until(start.Add(next))):
		}
		if err := read(); err != nil {
			return rows, err
		}
		if next < *every {
			next = *every
		} else {
			next += *every
		}
	}
	return rows, nil
}

func printRows(title, extra string, rows []row, closing string) {
	fmt.Printf("\n%s\n", title)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "time\tfds\tVmRSS MB\tVmHWM MB\t%s\t\n", extra)
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%d\t\n", fmtDur(r.at), r.u.fds, float64(r.u.rss)/1024, float64(r.u.hwm)/1024, r.extra)
	}
	w.Flush()
	fmt.Printf("pyprof at the end: %s\n", closing)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

var startedRE = regexp.MustCompile(`^STARTED (\d+)$`)

func benchChurn(targets, tmp string) {
	var started atomic.Int64
	tg, err := startScript([]string{*python, filepath.Join(targets, "threadchurn.py"), "--every", strconv.FormatFloat(churnEvery.Seconds(), 'f', -1, 64)},
		func(line string) {
			if m := startedRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				started.Store(n)
			}
		})
	if err != nil {
		procs.Fatalf("churn target: %v", err)
	}
	defer tg.c.Kill()
	rec, err := startRecord(filepath.Join(tmp, "churn.svg"), "-p", strconv.Itoa(tg.c.Pid()))
	if err != nil {
		procs.Fatalf("pyprof: %v", err)
	}
	rows, werr := watch(rec.c.Pid(), *churnFor, func() int { return int(started.Load()) }, rec.c.Done())
	closing, err := rec.stop()
	if werr != nil || err != nil {
		closing = fmt.Sprintf("%s (FAILED: %v %v)", closing, werr, err)
	}
	printRows(fmt.Sprintf("churn: pyprof record -p PID of threadchurn.py on %s (a thread started every %v), %v",
		*python, *churnEvery, *churnFor), "threads started", rows, closing)
}

var bootedRE = regexp.MustCompile(`Booting worker with pid: (\d+)`)

// startLoadedGunicorn starts Debian's gunicorn with args on a free
// loopback port, serving webapp.py, its output to log, and wrk on
// webapp.py's /work for a minute longer than d. It returns the address
// gunicorn listens on, and stop, which kills both (as leakbench's end
// does).
func startLoadedGunicorn(targets string, log *lineLog, d time.Duration, args ...string) (addr string, stop func()) {
	addr = "127.0.0.1:" + strconv.Itoa(procs.FreePort())
	cmd := exec.Command(*gunicornBin, append(args, "-b", addr, "--chdir", targets, "webapp:app")...)
	cmd.Stdout, cmd.Stderr = log, log
	g, err := procs.Spawn(cmd)
	if err != nil {
		procs.Fatalf("gunicorn: %v", err)
	}
	url := "http://" + addr + "/work"
	if err := benchproc.WaitUp(url, g); err != nil {
		procs.Fatalf("gunicorn: %v: %s", err, tail(log.String()))
	}
	// wrk stops by itself a minute after the recording should have.
	wrk := exec.Command("wrk", "-t2", "-c6", "-d"+strconv.Itoa(int(d.Seconds())+60)+"s", url)
	wlog := &lineLog{}
	wrk.Stdout, wrk.Stderr = wlog, wlog
	w, err := procs.Spawn(wrk)
	if err != nil {
		procs.Fatalf("wrk: %v (apt-get install wrk)", err)
	}
	return addr, func() { w.Kill(); g.Kill() }
}

func benchGunicorn(targets, tmp string) {
	var booted atomic.Int64
	log := &lineLog{onLine: func(line string) {
		if bootedRE.MatchString(line) {
			booted.Add(1)
		}
	}}
	addr, stop := startLoadedGunicorn(targets, log, *gunicornFor, "-w", "4", "-k", "sync", "--max-requests", strconv.Itoa(*maxRequests))
	defer stop()
	// The pattern matches this gunicorn's command line only (the machine
	// may run others), and the master is the match pyprof picks.
	pattern := `gunicorn .*` + regexp.QuoteMeta(addr)
	rec, err := startRecord(filepath.Join(tmp, "gunicorn.svg"), "--pgrep", pattern)
	if err != nil {
		procs.Fatalf("pyprof: %v", err)
	}
	before := booted.Load()
	rows, werr := watch(rec.c.Pid(), *gunicornFor, func() int { return int(booted.Load() - before) }, rec.c.Done())
	closing, err := rec.stop()
	if werr != nil || err != nil {
		closing = fmt.Sprintf("%s (FAILED: %v %v)", closing, werr, err)
	}
	printRows(fmt.Sprintf("gunicorn: pyprof record --pgrep of %s -w 4 --max-requests %d under wrk -t2 -c6, %v",
		*gunicornBin, *maxRequests, *gunicornFor), "workers booted", rows, closing)
}

// profiler is one row of the threads benchmark.
type profiler struct {
	name string
	argv func(pid int, out string) []string
}

// measurement is one profiler's run in one round.
type measurement struct {
	cpu    time.Duration
	wall   time.Duration
	stacks int     // stacks in the output
	rounds float64 // pyprof's own count of the rounds it took, as a rate; 0 if unknown
	behind int     // py-spy's "behind in sampling" warnings
	// unfinished says the profiler was stopped with SIGINT after
	// -patience times its duration, before it had taken every sample.
	unfinished bool
	failure    string
}

var patience = flag.Int("patience", 10, "threads benchmark: a profiler still running after this many times -seconds is stopped with SIGINT")

var achievedRE = regexp.MustCompile(`([\d.]+) Hz achieved`)

func benchThreads(targets, tmp string) {
	idle := *threadsTotal - 4
	secs := strconv.Itoa(*seconds)
	r := strconv.Itoa(*rate)
	profs := []profiler{
		{"pyprof", func(pid int, out string) []string {
			return []string{*pyprofBin, "record", "-p", strconv.Itoa(pid), "-r", r, "-d", secs, "-f", "collapsed", "-o", out}
		}},
		{"py-spy", func(pid int, out string) []string {
			return []string{*pyspyBin, "record", "--pid", strconv.Itoa(pid), "--rate", r, "-d", secs, "--format", "raw", "-o", out}
		}},
		{"py-spy --nonblocking", func(pid int, out string) []string {
			return []string{*pyspyBin, "record", "--pid", strconv.Itoa(pid), "--rate", r, "-d", secs, "--nonblocking", "--format", "raw", "-o", out}
		}},
	}
	argv := []string{*python, filepath.Join(targets, "manythreads.py"), "--idle", strconv.Itoa(idle)}
	compare("threads", argv, profs, tmp, fmt.Sprintf("threads: manythreads.py, %d threads (4 busy, %d in Event.wait) on %s, %d Hz for %d s, %d rounds, medians",
		*threadsTotal, idle, *python, *rate, *seconds, *rounds))
}

// compare runs each of profs on a target started anew by argv for each
// of -rounds rounds, in an order that rotates, and prints their medians
// under title.
func compare(name string, argv []string, profs []profiler, tmp, title string) {
	results := make([][]measurement, len(profs))
	for round := 0; round < *rounds; round++ {
		tg, err := startScript(argv, nil)
		if err != nil {
			procs.Fatalf("%s target: %v", name, err)
		}
		time.Sleep(2 * time.Second)
		for k := range profs {
			i := (k + round) % len(profs)
			out := filepath.Join(tmp, fmt.Sprintf("%s-%d-%d.txt", name, round, i))
			m := measure(profs[i].argv(tg.c.Pid(), out), out)
			fmt.Fprintf(os.Stderr, "leakbench: round %d %s: cpu %v, %d stacks, %.1f Hz %s\n", round+1, profs[i].name, m.cpu, m.stacks, m.rounds, m.failure)
			results[i] = append(results[i], m)
		}
		tg.c.Kill()
	}
	fmt.Printf("\n%s\n", title)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "profiler\trounds kept\twall s\tstacks/s\tCPU s\tCPU %% of a core\tCPU ms per round\tbehind warnings\tfailed\t\n")
	due := float64(*rate * *seconds)
	for i, p := range profs {
		ms := results[i]
		var cpu, stacks, kept, wall, perRound []float64
		failed, behind, unfinished := 0, 0, 0
		for _, m := range ms {
			if m.failure != "" {
				failed++
				continue
			}
			if m.unfinished {
				unfinished++
			}
			cpu = append(cpu, m.cpu.Seconds())
			wall = append(wall, m.wall.Seconds())
			stacks = append(stacks, float64(m.stacks)/m.wall.Seconds())
			taken := due // py-spy's, unless stopped: then fewer
			if m.rounds > 0 {
				taken = m.rounds * m.wall.Seconds()
			}
			perRound = append(perRound, 1000*m.cpu.Seconds()/taken)
			if m.rounds > 0 {
				kept = append(kept, m.rounds/float64(*rate))
			} else {
				// A fixed number of samples, over the wall time.
				kept = append(kept, float64(*seconds)/m.wall.Seconds())
			}
			behind += m.behind
		}
		keptS := "—"
		if len(kept) > 0 {
			keptS = fmt.Sprintf("%.1f%%", 100*median(kept))
		}
		if unfinished > 0 {
			// Stopped before the end: fewer rounds than seconds over
			// its wall time.
			keptS = fmt.Sprintf("<%s (%d stopped)", keptS, unfinished)
		}
		c := median(cpu)
		perRoundS := fmt.Sprintf("%.2f", median(perRound))
		if unfinished > 0 {
			perRoundS = ">" + perRoundS
		}
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.0f\t%.2f\t%.1f%%\t%s\t%d\t%d\t\n", p.name, keptS, median(wall), median(stacks), c,
			100*c/median(wall), perRoundS, behind, failed)
	}
	w.Flush()
	fmt.Println("rounds kept: pyprof's own count of the rounds it took (\"Hz achieved\") over those due; py-spy takes every due")
	fmt.Println("sample however long it takes, so its share is the duration asked over its wall time (start-up included).")
	fmt.Printf("A profiler still running after %d times its duration is stopped with SIGINT (\"stopped\"): it took fewer rounds still.\n", *patience)
	fmt.Println("CPU: utime+stime from /proc/PID/stat of the profiler at its exit; per round: over the rounds it took (\">\": of")
	fmt.Println("a profiler stopped early, over the rounds due).")
}

// measure runs one profiler to its end and reads its CPU time and output.
func measure(argv []string, out string) measurement {
	cmd := exec.Command(argv[0], argv[1:]...)
	log := &lineLog{}
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	var cpu time.Duration
	c, err := procs.SpawnThen(cmd, func(pid int) {
		if st, err := readStat(pid); err == nil {
			cpu = st.cpu
		}
	})
	if err != nil {
		return measurement{failure: err.Error()}
	}
	// py-spy takes rate × seconds samples however long that takes: a
	// profiler that falls behind runs longer, and its achieved rate is
	// read from its wall time; one far behind is stopped as Ctrl-C would.
	m := measurement{}
	if !c.Exited(time.Duration(*patience**seconds) * time.Second) {
		m.unfinished = true
		syscall.Kill(c.Pid(), syscall.SIGINT)
		if !c.Exited(30 * time.Second) {
			c.Kill()
		}
	}
	m.cpu, m.wall = cpu, time.Since(start)
	if c.Err() != nil && !m.unfinished {
		m.failure = fmt.Sprintf("%v: %s", c.Err(), tail(log.String()))
		return m
	}
	b, err := os.ReadFile(out)
	if err != nil && !m.unfinished {
		m.failure = err.Error()
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.LastIndexByte(line, ' '); i >= 0 {
			n, _ := strconv.Atoi(line[i+1:])
			m.stacks += n
		}
	}
	if sm := achievedRE.FindStringSubmatch(log.String()); sm != nil {
		m.rounds, _ = strconv.ParseFloat(sm[1], 64)
	}
	m.behind = strings.Count(log.String(), "behind in sampling")
	return m
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
