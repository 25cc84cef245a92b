// Command recordbench measures, side by side in one run, what recording
// costs a Python program and how exact the recorded stacks are, for
// pyprof's three modes (default, --nonblocking, --blocking), py-spy
// (blocking by default, and --nonblocking) and austin, on these workloads
// (testdata/targets):
//
//   - hotleaf: a recursion 41 frames deep over fib(14), whose innermost
//     frame changes every microsecond;
//   - callpaths: a main thread switching between a recursion, a generator
//     driven from C by sum(gen()) and method calls, beside 40 threads
//     parked in Event.wait();
//   - gunicorn: webapp.py under gunicorn with 3 sync workers and load from
//     wrk on loopback, where pyprof top is measured too;
//   - churn: a recursion to a random depth over a short leaf.
//
// on each Python version asked for (pyenv's builds; gunicorn and Flask are
// Debian's pure-Python packages, imported there through PYTHONPATH).
//
// Each round starts the target anew; a script target reports its own
// progress (work done at a CLOCK_MONOTONIC time), and for gunicorn the
// progress is wrk's request rate. In each round every profiler samples the
// target for -seconds at -rate with the tool's own duration option, in an
// order that rotates over the rounds, and every run sits between two
// unprofiled windows of -baseline seconds, against whose mean its slowdown
// is taken. Per workload, version and profiler it prints, as medians over
// the rounds unless said otherwise:
//
//   - samples kept of those due (rate × seconds × busy threads);
//   - errors: stacks the profiler itself dropped as unreadable;
//   - impossible stacks, judged by the oracle in the script's annotations
//     (see oracle.go), as a total over the rounds;
//   - for callpaths and gunicorn, stacks of idle threads recorded as
//     active (total);
//   - for pyprof, torn samples read again and samples paused for, per
//     busy stack read, and the share of the run its pauses kept the
//     target stopped;
//   - the target's slowdown;
//   - the profiler's CPU (from a cpuacct cgroup of its own where the
//     kernel has one, else user+system from its rusage) per stack kept
//     and as a share of one core over its life;
//
// and a table of pyprof's CPU per stack kept as a multiple of py-spy's and
// austin's in the same run. A profiler that cannot read a version shows
// "—". Every child is killed when recordbench ends (see internal/benchproc).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/pyprof/pyprof/internal/benchproc"
)

// procs holds every child, so that none outlives recordbench.
var procs = benchproc.New("recordbench")

var (
	rounds        = flag.Int("rounds", 3, "interleaved rounds")
	seconds       = flag.Int("seconds", 5, "sampling duration per measurement")
	baselineSecs  = flag.Int("baseline", 2, "duration of the unprofiled windows between measurements")
	rate          = flag.Int("rate", 100, "sampling rate, Hz")
	workloadsFlag = flag.String("workloads", "hotleaf,callpaths,gunicorn,churn", "workloads to run")
	versionsFlag  = flag.String("versions", "3.9,3.11,3.13", "Python versions: pyenv minors, or debian3.11 for Debian's python3.11 and gunicorn")
	profilersFlag = flag.String("profilers", "", "only these rows (tools such as py-spy, or rows such as 'pyprof --blocking'), comma-separated; none always runs")
	pyprofBin     = flag.String("pyprof", "bin/pyprof", "pyprof binary")
	pyspyBin      = flag.String("py-spy", "/work/shared/peers/py-spy", "py-spy binary")
	austinBin     = flag.String("austin", "/work/shared/peers/austin", "austin binary")
	examples      = flag.Int("examples", 0, "print up to this many impossible stacks of each run on stderr")
)

// run is one measurement: one profiler (or none) on one target.
type run struct {
	rate        float64 // target's progress per second
	slowdown    float64 // against the unprofiled windows around the run
	stacks      []stack
	recorded    int // stacks recorded
	kept        int // recorded, not idle threads'
	idle        int // recorded in an idle thread
	impossible  int
	lineless    int // impossible stacks with a frame of the script without a line
	errors      int
	retries     int
	paused      int
	stopped     time.Duration // pyprof's own sum of its pauses
	attempts    int           // pyprof's stack reads: samples + errors
	pyprofStats bool
	cpu, wall   time.Duration
	examples    []string // impossible stacks, up to -examples
}

// cell gathers one row's measurements of one version.
type cell struct {
	prof    *profiler // nil: no profiler
	skipped string    // why the row was not measured ("—")
	failed  []string
	runs    []run
}

func main() {
	flag.Parse()
	procs.HandleSignals()
	defer func() {
		// No child outlives a bug here either.
		if e := recover(); e != nil {
			procs.Fatalf("panic: %v\n%s", e, debug.Stack())
		}
	}()
	root, err := os.Getwd()
	if err != nil {
		procs.Fatalf("%v", err)
	}
	dir := filepath.Join(root, "testdata", "targets")
	if _, err := os.Stat(dir); err != nil {
		procs.Fatalf("run from the module root: %v", err)
	}
	var ws []*workload
	for _, name := range strings.Split(*workloadsFlag, ",") {
		i := slices.IndexFunc(workloads, func(w *workload) bool { return w.name == strings.TrimSpace(name) })
		if i < 0 {
			procs.Fatalf("no workload %q (hotleaf, callpaths, gunicorn, churn)", name)
		}
		ws = append(ws, workloads[i])
	}
	var vs []*version
	for _, name := range strings.Split(*versionsFlag, ",") {
		v, err := findVersion(strings.TrimSpace(name))
		if err != nil {
			procs.Fatalf("%v", err)
		}
		vs = append(vs, v)
	}
	profs := allProfilers(*pyprofBin, *pyspyBin, *austinBin)
	if *profilersFlag != "" {
		want := strings.Split(*profilersFlag, ",")
		profs = slices.DeleteFunc(profs, func(p *profiler) bool {
			return !slices.ContainsFunc(want, func(w string) bool {
				w = strings.TrimSpace(w)
				return w == p.name || w == p.tool
			})
		})
	}
	if *rounds < 1 || *seconds < 2 || *baselineSecs < 1 || *rate < 1 || *rate > 10000 {
		procs.Fatalf("want -rounds ≥ 1, -seconds ≥ 2, -baseline ≥ 1 and -rate in 1..10000")
	}
	tmp, err := os.MkdirTemp("", "recordbench")
	if err != nil {
		procs.Fatalf("%v", err)
	}
	procs.AtExit(func() { os.RemoveAll(tmp) })

	fmt.Printf("recordbench: %d rounds × %d s at %d Hz, profilers in a rotating order, %d s unprofiled between runs\n\n%s\n", *rounds, *seconds, *rate, *baselineSecs, legend)
	for _, w := range ws {
		o, err := loadOracle(filepath.Join(dir, w.script))
		if err != nil {
			procs.Fatalf("%v", err)
		}
		rep := &report{w: w}
		for _, v := range vs {
			cells, err := measureAll(w, v, o, dir, tmp, profs)
			rep.versions = append(rep.versions, v)
			rep.cells = append(rep.cells, cells)
			rep.errs = append(rep.errs, err)
		}
		rep.print(os.Stdout)
	}
	procs.Exit(0)
}

// measureAll runs one workload on one version with every profiler.
func measureAll(w *workload, v *version, o *oracle, dir, tmp string, profs []*profiler) ([]*cell, error) {
	cells := []*cell{{}}
	for _, p := range profs {
		c := &cell{prof: p}
		switch {
		case p.serviceOnly && !w.service:
			continue
		case !executable(p.bin):
			c.skipped = "not found: " + p.bin
		case !p.reads(v.major, v.minor):
			c.skipped = fmt.Sprintf("%s does not read %d.%d", p.tool, v.major, v.minor)
		}
		cells = append(cells, c)
	}
	var todo []*cell
	for _, c := range cells[1:] {
		if c.skipped == "" {
			todo = append(todo, c)
		}
	}
	out := filepath.Join(tmp, "out.txt")
	none := cells[0]
	for round := 0; round < *rounds; round++ {
		// A new target each round: the figures differ between target
		// processes more than between runs on one (3.9's hotleaf kept
		// 15% of its samples under --nonblocking in one process, all
		// of them in another), so one process would weigh one case.
		var t *target
		var err error
		if w.service {
			t, err = startGunicorn(v, dir)
		} else {
			t, err = startScript(v, filepath.Join(dir, w.script))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s %s: %v\n", w.name, v.name, err)
			return nil, err
		}
		// Every profiled run sits between two unprofiled windows of
		// -baseline seconds, and its slowdown is against their mean,
		// so that the load other jobs put on the machine, which drifts
		// over minutes, cancels out.
		baseline := func() (float64, bool) {
			r, err := measure(w, t, nil, o, out, *baselineSecs)
			if err != nil {
				none.failed = append(none.failed, err.Error())
				fmt.Fprintf(os.Stderr, "%s %s round %d/%d none: %v\n", w.name, v.name, round+1, *rounds, err)
				return 0, false
			}
			none.runs = append(none.runs, r)
			return r.rate, true
		}
		before, haveBefore := baseline()
		for i := range todo {
			c := todo[(i+round)%len(todo)]
			r, err := measure(w, t, c.prof, o, out, *seconds)
			after, haveAfter := baseline()
			if err != nil {
				c.failed = append(c.failed, err.Error())
				fmt.Fprintf(os.Stderr, "%s %s round %d/%d %s: %v\n", w.name, v.name, round+1, *rounds, c.prof.name, err)
			} else {
				if haveBefore && haveAfter {
					r.slowdown = 1 - r.rate/((before+after)/2)
				} else {
					r.slowdown = math.NaN()
				}
				c.runs = append(c.runs, r)
				fmt.Fprintf(os.Stderr, "%s %s round %d/%d %-21s %8.1f %s (%+.1f%%)  kept %d  idle %d  impossible %d  errors %d  cpu %v\n",
					w.name, v.name, round+1, *rounds, c.prof.name, r.rate, w.unit, -100*r.slowdown, r.kept, r.idle, r.impossible, r.errors, r.cpu.Round(time.Millisecond))
				for _, e := range r.examples {
					fmt.Fprintf(os.Stderr, "    impossible: %s\n", e)
				}
			}
			before, haveBefore = after, haveAfter
		}
		t.stop()
	}
	return cells, nil
}

// measure runs one profiler (nil: none) on the target for loadSecs.
func measure(w *workload, t *target, p *profiler, o *oracle, out string, loadSecs int) (run, error) {
	var r run
	os.Remove(out)
	secs := loadSecs
	if w.service {
		// The profiler starts half a second before the load and ends
		// after it.
		secs++
	}
	var c *benchproc.Child
	var stdout, stderr bytes.Buffer
	t0 := monotonic()
	start := time.Now()
	var cg *cpuGroup
	if p != nil {
		cmd := exec.Command(p.bin, p.args(t.c.Pid(), *rate, secs, out, w.service)...)
		cg = newCPUGroup(cmd)
		defer cg.remove()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if p.noStacks {
			cmd.Stdout = io.Discard
		}
		var err error
		if c, err = procs.Spawn(cmd); err != nil {
			return r, fmt.Errorf("%s: %v", p.name, err)
		}
	}
	if w.service {
		if c != nil {
			time.Sleep(500 * time.Millisecond)
		}
		rps, err := load(t.url, loadSecs)
		if err != nil {
			if c != nil {
				c.Kill()
			}
			return r, err
		}
		r.rate = rps
	} else if c == nil {
		time.Sleep(time.Duration(loadSecs) * time.Second)
	}
	if c != nil {
		if !c.Exited(time.Duration(secs+60) * time.Second) {
			c.Kill()
			return r, fmt.Errorf("%s did not stop after %d s", p.name, secs+60)
		}
		r.wall = time.Since(start)
		if d, ok := cg.usage(); ok {
			r.cpu = d
		} else if ps := c.ProcessState(); ps != nil {
			r.cpu = ps.UserTime() + ps.SystemTime()
		}
		if c.Err() != nil {
			return r, fmt.Errorf("%s: %v: %s", p.name, c.Err(), tail(append(stdout.Bytes(), stderr.Bytes()...)))
		}
	}
	if !w.service {
		// Let the reports written before t1 arrive.
		t1 := monotonic()
		time.Sleep(100 * time.Millisecond)
		r.rate = t.progress.rate(t0, t1)
		if math.IsNaN(r.rate) {
			return r, fmt.Errorf("the target reported no progress: %s", tail(t.log.Bytes()))
		}
	}
	if p == nil || p.noStacks {
		return r, nil
	}
	if err := p.parse(out, stdout.Bytes(), stderr.Bytes(), &r); err != nil {
		return r, fmt.Errorf("%s: %v", p.name, err)
	}
	for _, st := range r.stacks {
		possible, idle := o.check(st.frames)
		r.recorded += st.count
		if idle {
			r.idle += st.count
		} else {
			r.kept += st.count
		}
		if !possible {
			r.impossible += st.count
			if o.lineless(st.frames) {
				r.lineless += st.count
			}
			if len(r.examples) < *examples {
				r.examples = append(r.examples, formatStack(st))
			}
		}
	}
	r.stacks = nil
	// Re-reads and pauses are per process sample: with one busy thread
	// per process, per busy thread's stack read.
	r.attempts = r.kept + r.errors
	return r, nil
}

func formatStack(st stack) string {
	if len(st.frames) == 0 {
		return fmt.Sprintf("(no frames) ×%d", st.count)
	}
	parts := make([]string, len(st.frames))
	for i, f := range st.frames {
		parts[i] = fmt.Sprintf("%s (%s:%d)", f.fn, filepath.Base(f.file), f.line)
	}
	return fmt.Sprintf("%s ×%d", strings.Join(parts, ";"), st.count)
}
