package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is one workload's results over the versions.
type report struct {
	w        *workload
	versions []*version
	cells    [][]*cell // per version, none first
	errs     []error   // per version: the target did not start
}

const dash = "—"

// legend says what the columns mean, once, above the tables.
const legend = `Columns, per workload, version and profiler (medians over the rounds unless said otherwise):
  kept/due     stacks recorded of those due (rate × seconds × busy threads), idle threads' stacks not counted
  errors       stacks the profiler itself dropped as unreadable (pyprof's errors, py-spy's Errors, austin's INVALID samples)
  impossible   recorded stacks that the script's oracle (its "# ->" and "# STACKS:" annotations) rules out: torn
               while read; total over the rounds, of all stacks recorded; "no line": those with a frame of the
               script without a line number (a defect, though not necessarily a tear), counted in the total
  idle as active  stacks of idle threads (total over the rounds): callpaths' 40 threads parked in Event.wait(),
               gunicorn's master and workers waiting in select (webapp.py's "# IDLE:" leaves). pyprof (default mode)
               and py-spy (without --idle) record only threads they find active; austin runs with -s (sleepless),
               which drops idle samples (without it austin records every thread at every sample)
  re-reads, paused  pyprof only: torn samples read again, and samples taken with the target paused, per busy stack read
  stopped      pyprof only: the time its pauses kept the target stopped (its own sum, pause to resume, over all the
               target's processes: gunicorn's 4), as a share of the run: the slowdown they cause, measured without
               the noise of the target's work rate
  slowdown     the target's work rate (or wrk's requests/s) against the mean of the unprofiled windows just before
               and after the run; [range over the rounds] — this shared 2-core machine's noise shows there
  CPU/stack    the profiler's CPU time (its own cpuacct cgroup, else rusage; startup included) per stack kept
  CPU          the same time as a share of one core over the profiler's life
  —            the profiler cannot read this Python version (or was not found)
`

func (rep *report) print(out io.Writer) {
	w := rep.w
	fmt.Fprintf(out, "== %s (%s): %s\n", w.name, w.script, w.about)
	due := *rate * *seconds * w.busy
	fmt.Fprintf(out, "   due: %d Hz × %d s × %d busy thread(s) = %d stacks per run\n", *rate, *seconds, w.busy, due)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := []string{"version", "profiler", "kept/due", "errors", "impossible"}
	if w.idle {
		head = append(head, "idle as active")
	}
	head = append(head, "re-reads", "paused", "stopped", w.unit, "slowdown", "CPU/stack", "CPU")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	var notes []string
	for vi, v := range rep.versions {
		cells := rep.cells[vi]
		if rep.errs[vi] != nil {
			fmt.Fprintf(tw, "%s\ttarget failed\t\n", v.name)
			notes = append(notes, fmt.Sprintf("%s: %v", v.name, rep.errs[vi]))
			continue
		}
		for _, c := range cells {
			name := "none"
			if c.prof != nil {
				name = c.prof.name
			}
			row := []string{v.name, name}
			cols := len(head) - 2
			switch {
			case c.skipped != "":
				row = append(row, repeat(dash, cols)...)
				if !strings.HasPrefix(c.skipped, c.prof.tool+" does not read") {
					notes = append(notes, fmt.Sprintf("%s %s: %s", v.name, name, c.skipped))
				}
			case len(c.runs) == 0:
				row = append(row, "failed")
				row = append(row, repeat("", cols-1)...)
			default:
				row = append(row, rep.columns(c, due)...)
			}
			if len(c.failed) > 0 {
				row[1] += " *"
				for _, f := range c.failed {
					notes = append(notes, fmt.Sprintf("%s %s: %s", v.name, name, f))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()
	rep.ratios(out)
	for _, n := range dedupe(notes) {
		fmt.Fprintf(out, "   * %s\n", n)
	}
	fmt.Fprintln(out)
}

// columns are a measured row's figures after the version and name.
func (rep *report) columns(c *cell, due int) []string {
	var cols []string
	add := func(s ...string) { cols = append(cols, s...) }
	rate := median(rates(c.runs))
	if c.prof == nil {
		add("", "", "")
		if rep.w.idle {
			add("")
		}
		add("", "", "", fmt.Sprintf("%.0f", rate), "", "", "")
		return cols
	}
	if c.prof.noStacks {
		add(dash, dash, dash)
		if rep.w.idle {
			add(dash)
		}
		add(dash, dash, dash)
	} else {
		var kept, errs, reread, paused, stopped []float64
		recorded, impossible, lineless, idle := 0, 0, 0, 0
		stats := false
		for _, r := range c.runs {
			kept = append(kept, float64(r.kept))
			errs = append(errs, float64(r.errors))
			recorded += r.recorded
			impossible += r.impossible
			lineless += r.lineless
			idle += r.idle
			if r.pyprofStats && r.attempts > 0 {
				stats = true
				reread = append(reread, float64(r.retries)/float64(r.attempts))
				paused = append(paused, float64(r.paused)/float64(r.attempts))
				if r.wall > 0 {
					stopped = append(stopped, float64(r.stopped)/float64(r.wall))
				}
			}
		}
		k := median(kept)
		add(fmt.Sprintf("%.0f/%d %3.0f%%", k, due, 100*k/float64(due)), fmt.Sprintf("%.0f", median(errs)))
		imp := ofTotal(impossible, recorded)
		if lineless > 0 {
			imp += fmt.Sprintf(" (%d no line)", lineless)
		}
		add(imp)
		if rep.w.idle {
			add(ofTotal(idle, recorded))
		}
		if stats {
			add(fmt.Sprintf("%.1f%%", 100*median(reread)), fmt.Sprintf("%.1f%%", 100*median(paused)), fmt.Sprintf("%.3f%%", 100*median(stopped)))
		} else {
			add("", "", "")
		}
	}
	var slow []float64
	for _, r := range c.runs {
		if !math.IsNaN(r.slowdown) {
			slow = append(slow, r.slowdown)
		}
	}
	add(fmt.Sprintf("%.0f", rate), fmt.Sprintf("%.1f%% %s", 100*median(slow), spread(slow)))
	if c.prof.noStacks {
		add(dash)
	} else {
		add(micros(cpuPerStack(c)))
	}
	var cpu []float64
	for _, r := range c.runs {
		if r.wall > 0 {
			cpu = append(cpu, r.cpu.Seconds()/r.wall.Seconds())
		}
	}
	add(fmt.Sprintf("%.1f%%", 100*median(cpu)))
	return cols
}

// cpuPerStack is the median over runs of the profiler's CPU time per
// stack kept (busy threads' stacks: the samples due), in µs (+Inf when it
// kept none).
func cpuPerStack(c *cell) float64 {
	var xs []float64
	for _, r := range c.runs {
		xs = append(xs, float64(r.cpu.Microseconds())/float64(r.kept))
	}
	return median(xs)
}

// ratios prints pyprof's CPU per stack kept as a multiple of each peer's, per
// version, from the same run.
func (rep *report) ratios(out io.Writer) {
	var peers []string
	var rows []string
	var first []*cell
	for _, cells := range rep.cells {
		if len(cells) > 0 {
			first = cells
			break
		}
	}
	for _, c := range first {
		if c.prof == nil || c.prof.noStacks {
			continue
		}
		if c.prof.tool == "pyprof" {
			rows = append(rows, c.prof.name)
		} else {
			peers = append(peers, c.prof.name)
		}
	}
	if len(rows) == 0 || len(peers) == 0 {
		return
	}
	fmt.Fprintln(out, "   pyprof's CPU per stack kept as a multiple of each peer's, same run:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := []string{"   version", "pyprof mode"}
	for _, p := range peers {
		head = append(head, "÷ "+p)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for vi, v := range rep.versions {
		byName := map[string]*cell{}
		for _, c := range rep.cells[vi] {
			if c.prof != nil {
				byName[c.prof.name] = c
			}
		}
		for _, name := range rows {
			row := []string{"   " + v.name, name}
			for _, p := range peers {
				row = append(row, ratio(byName[name], byName[p]))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()
}

func ratio(a, b *cell) string {
	if a == nil || b == nil || len(a.runs) == 0 || len(b.runs) == 0 {
		return dash
	}
	x, y := cpuPerStack(a), cpuPerStack(b)
	if math.IsInf(x, 0) || math.IsInf(y, 0) || y == 0 {
		return dash
	}
	return fmt.Sprintf("%.2f×", x/y)
}

// spread is the range of the rounds' values, in percent.
func spread(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	lo, hi := slices.Min(xs), slices.Max(xs)
	return fmt.Sprintf("[%.0f..%.0f]", 100*lo, 100*hi)
}

func micros(us float64) string {
	switch {
	case math.IsInf(us, 0) || math.IsNaN(us):
		return "∞ (none kept)"
	case us >= 10000:
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func ofTotal(n, total int) string {
	if total == 0 {
		return fmt.Sprintf("%d/0", n)
	}
	return fmt.Sprintf("%d/%d %.1f%%", n, total, 100*float64(n)/float64(total))
}

func rates(runs []run) []float64 {
	var xs []float64
	for _, r := range runs {
		xs = append(xs, r.rate)
	}
	return xs
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func dedupe(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
