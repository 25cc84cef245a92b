// Package top keeps the running statistics behind `pyprof top` and renders
// them as a table. It has no terminal handling: the CLI feeds it samples
// and decides where and how often the table is drawn.
package top

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pyprof/pyprof/internal/pyfile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

// Sort orders the rows; the values follow the columns, as keys 1–4 do.
type Sort int

const (
	ByOwn       Sort = iota // %Own in the last window
	ByTotal                 // %Total in the last window
	ByOwnTime               // cumulative own time
	ByTotalTime             // cumulative total time
)

// ParseSort reads the --sort names.
func ParseSort(s string) (Sort, bool) {
	switch s {
	case "own":
		return ByOwn, true
	case "total":
		return ByTotal, true
	case "owntime":
		return ByOwnTime, true
	case "totaltime":
		return ByTotalTime, true
	}
	return 0, false
}

var sortNames = [...]string{"%Own", "%Total", "OwnTime", "TotalTime"}

func (s Sort) String() string { return sortNames[s] }

// key identifies a row: a function, or with lines a function at a line.
type key struct {
	name, file string
	line       int
}

type counts struct {
	own, total       int64 // this window
	ownAll, totalAll int64 // since the start or the last reset
	// seen is the number of the last stack counted in total, so that a
	// row counts once per stack.
	seen uint64
}

// lineKey is a line row as a sample names it.
type lineKey struct {
	fn   *pyspy.Function
	line int
}

// maxCached bounds the rows cached by Function pointer. A process that
// compiles code at run time makes new Functions for the same rows, and
// each process has Functions of its own; clearing the caches only costs
// the lookups by name again.
const maxCached = 1 << 16

// proc is what the header shows for one process.
type proc struct {
	pid     int
	cmdline string
	samples int64
	cpu     float64 // percent of a core over the last window
	rss     int64   // bytes
	ticks   int64   // CPU ticks at the window start
	at      time.Time
}

// Stats aggregates samples by function and by line at once, so that
// switching between the two views loses nothing.
type Stats struct {
	Interval time.Duration // what one sample stands for
	Idle     bool          // count idle threads in the table
	GILOnly  bool          // count only the GIL holder

	byFunc, byLine map[key]*counts
	// The same rows by what a sample holds: pyspy shares one immutable
	// Function among the frames of a code object, so its pointer stands
	// for the function's name, file and first line. Entries point into
	// byFunc and byLine, and are dropped whenever rows are.
	funcRows map[*pyspy.Function]*counts
	lineRows map[lineKey]*counts
	stackNum uint64 // numbers the stacks for counts.seen

	// Window and cumulative sample counts (stacks shown in the table).
	window, all int64
	// Header counters over the whole run.
	rounds, gilRounds          int64
	threadsSeen, threadsActive int64
	errors                     int64
	threadsNow                 int
	procs                      map[int]*proc
}

// NewStats starts empty statistics.
func NewStats(interval time.Duration) *Stats {
	return &Stats{
		Interval: interval,
		byFunc:   map[key]*counts{},
		byLine:   map[key]*counts{},
		funcRows: map[*pyspy.Function]*counts{},
		lineRows: map[lineKey]*counts{},
		procs:    map[int]*proc{},
	}
}

// Add counts one process's sample. The sampler must report idle threads
// too (Options.Idle), so that the active share can be computed; Stats
// drops them from the table unless Idle is set.
func (s *Stats) Add(smp sampler.Sample) {
	p := s.procs[smp.Pid]
	if p == nil {
		p = &proc{pid: smp.Pid, cmdline: smp.Cmdline, ticks: -1}
		s.procs[smp.Pid] = p
	}
	s.rounds++
	s.errors += int64(smp.Errors)
	gil := false
	for _, t := range smp.Threads {
		s.threadsSeen++
		if t.Active {
			s.threadsActive++
		}
		if t.OwnsGIL {
			gil = true
		}
		if s.GILOnly && !t.OwnsGIL || !s.Idle && !t.Active || len(t.Frames) == 0 {
			continue
		}
		p.samples++
		s.window++
		s.all++
		s.addStack(t)
	}
	if gil {
		s.gilRounds++
	}
}

// addStack counts the innermost frame as own time and every distinct row
// in the stack once as total time, so recursion does not inflate it.
func (s *Stats) addStack(t sampler.Thread) {
	s.stackNum++
	for i := range t.Frames {
		f := &t.Frames[i]
		s.count(s.funcRow(f.Function), i == 0)
		s.count(s.lineRow(f), i == 0)
	}
}

func (s *Stats) count(c *counts, leaf bool) {
	if leaf {
		c.own++
		c.ownAll++
	}
	if c.seen != s.stackNum {
		c.seen = s.stackNum
		c.total++
		c.totalAll++
	}
}

// funcRow returns the row of fn. Functions are told apart by where they
// start, so that two functions of one name in one file stay two rows.
func (s *Stats) funcRow(fn *pyspy.Function) *counts {
	if c, ok := s.funcRows[fn]; ok {
		return c
	}
	c := row(s.byFunc, key{name: fn.Name, file: fn.Filename, line: fn.FirstLine})
	if len(s.funcRows) >= maxCached {
		clear(s.funcRows)
	}
	s.funcRows[fn] = c
	return c
}

// lineRow returns the row of f's line.
func (s *Stats) lineRow(f *pyspy.Frame) *counts {
	k := lineKey{f.Function, f.Line}
	if c, ok := s.lineRows[k]; ok {
		return c
	}
	c := row(s.byLine, key{name: f.Name, file: f.Filename, line: f.Line})
	if len(s.lineRows) >= maxCached {
		clear(s.lineRows)
	}
	s.lineRows[k] = c
	return c
}

func row(m map[key]*counts, k key) *counts {
	c := m[k]
	if c == nil {
		c = &counts{}
		m[k] = c
	}
	return c
}

// SetThreads records how many threads the processes have now.
func (s *Stats) SetThreads(n int) { s.threadsNow = n }

// SetProcess records a process's CPU use and memory for the header. ticks
// is its utime+stime in clock ticks, read at now; the CPU share is over the
// time since the previous call for the process, the first call setting the
// baseline.
func (s *Stats) SetProcess(pid int, cmdline string, ticks, rss int64, now time.Time) {
	p := s.procs[pid]
	if p == nil {
		p = &proc{pid: pid, cmdline: cmdline, ticks: -1}
		s.procs[pid] = p
	}
	if window := now.Sub(p.at); p.ticks >= 0 && window > 0 {
		// Linux reports CPU time in USER_HZ ticks, 100 per second.
		p.cpu = 100 * float64(ticks-p.ticks) / 100 / window.Seconds()
	}
	p.ticks, p.rss, p.at = ticks, rss, now
}

// DropProcess forgets a process that exited. The rows cached by Function
// pointer go too: they would keep the process's Functions alive, and
// finding the rows of the processes left by name again costs only lookups.
func (s *Stats) DropProcess(pid int) {
	delete(s.procs, pid)
	clear(s.funcRows)
	clear(s.lineRows)
}

// Reset clears every count, as the R key does.
func (s *Stats) Reset() {
	clear(s.byFunc)
	clear(s.byLine)
	clear(s.funcRows)
	clear(s.lineRows)
	s.window, s.all = 0, 0
	s.rounds, s.gilRounds, s.threadsSeen, s.threadsActive, s.errors = 0, 0, 0, 0, 0
	for _, p := range s.procs {
		p.samples = 0
	}
}

// WindowSamples is the number of stacks counted since the window began.
func (s *Stats) WindowSamples() int64 { return s.window }

// EndWindow starts a new refresh window: the percentages cover the
// samples since the previous call.
func (s *Stats) EndWindow() {
	dropped := false
	for _, m := range []map[key]*counts{s.byFunc, s.byLine} {
		for k, c := range m {
			c.own, c.total = 0, 0
			if c.ownAll == 0 && c.totalAll == 0 {
				delete(m, k)
				dropped = true
			}
		}
	}
	if dropped {
		clear(s.funcRows)
		clear(s.lineRows)
	}
	s.window = 0
}

// Row is one line of the table.
type Row struct {
	Function, File string
	Line           int
	OwnPct         float64
	TotalPct       float64
	OwnTime        time.Duration
	TotalTime      time.Duration
}

// Rows returns the table rows for the current window, sorted.
func (s *Stats) Rows(by Sort, lines bool) []Row {
	m := s.byFunc
	if lines {
		m = s.byLine
	}
	rows := make([]Row, 0, len(m))
	for k, c := range m {
		r := Row{Function: k.name, File: k.file, Line: k.line,
			OwnTime: time.Duration(c.ownAll) * s.Interval, TotalTime: time.Duration(c.totalAll) * s.Interval}
		if s.window > 0 {
			r.OwnPct = 100 * float64(c.own) / float64(s.window)
			r.TotalPct = 100 * float64(c.total) / float64(s.window)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b Row) int {
		var c int
		switch by {
		case ByOwn:
			c = cmp.Compare(b.OwnPct, a.OwnPct)
		case ByTotal:
			c = cmp.Compare(b.TotalPct, a.TotalPct)
		case ByOwnTime:
			c = cmp.Compare(b.OwnTime, a.OwnTime)
		case ByTotalTime:
			c = cmp.Compare(b.TotalTime, a.TotalTime)
		}
		if c == 0 {
			c = cmp.Or(cmp.Compare(b.TotalTime, a.TotalTime), cmp.Compare(a.Function, b.Function), cmp.Compare(a.Line, b.Line))
		}
		return c
	})
	return rows
}

// View is what a table shows and how it fits.
type View struct {
	Title  string // what is sampled, e.g. "gunicorn: master (pid 1234) and 3 subprocesses"
	Python string // version
	Sort   Sort
	Lines  bool
	Width  int // columns available; 0 for no limit
	Height int // rows available; 0 for no limit
	// Procs lists the processes in the header (with subprocesses).
	Procs bool
	// FullFilenames shows file names whole; otherwise library paths
	// are shortened as dump shows them (see internal/pyfile).
	FullFilenames bool
}

// Render draws the table as lines without line terminators.
func (s *Stats) Render(v View) []string {
	var out []string
	add := func(format string, args ...any) {
		out = append(out, fit(fmt.Sprintf(format, args...), v.Width))
	}
	add("pyprof top — %s — Python %s", v.Title, v.Python)
	header := fmt.Sprintf("Samples: %d", s.all)
	if s.errors > 0 && s.rounds > 0 {
		header += fmt.Sprintf("   Errors: %.1f%%", 100*float64(s.errors)/float64(s.rounds+s.errors))
	}
	gil, active := 0.0, 0.0
	if s.rounds > 0 {
		gil = 100 * float64(s.gilRounds) / float64(s.rounds)
	}
	if s.threadsSeen > 0 {
		active = 100 * float64(s.threadsActive) / float64(s.threadsSeen)
	}
	header += fmt.Sprintf("   GIL: %.1f%%   Active: %.1f%%   Threads: %d   Processes: %d", gil, active, s.threadsNow, len(s.procs))
	add("%s", header)
	if v.Procs {
		add("%7s %6s %9s %8s  %s", "PID", "CPU%", "RSS", "Samples", "Command")
		pids := make([]int, 0, len(s.procs))
		for pid := range s.procs {
			pids = append(pids, pid)
		}
		slices.Sort(pids)
		for _, pid := range pids {
			p := s.procs[pid]
			add("%7d %6.1f %9s %8d  %s", p.pid, p.cpu, bytesString(p.rss), p.samples, p.cmdline)
		}
	}
	sortHint := "sort: " + v.Sort.String()
	if v.Lines {
		sortHint += ", by line"
	}
	add("")
	cols := []string{"%Own", "%Total", "OwnTime", "TotalTime"}
	cols[v.Sort] = "▼" + cols[v.Sort]
	add("%8s %8s %9s %10s  %s   (%s)", cols[0], cols[1], cols[2], cols[3], "Function (file:line)", sortHint)
	rows := s.Rows(v.Sort, v.Lines)
	room := len(rows)
	if v.Height > 0 {
		room = max(0, v.Height-len(out))
	}
	for _, r := range rows[:min(room, len(rows))] {
		where := r.File
		if !v.FullFilenames {
			where = pyfile.Short(where)
		}
		if r.Line > 0 {
			where = fmt.Sprintf("%s:%d", where, r.Line)
		}
		add("%7.2f%% %7.2f%% %9s %10s  %s (%s)", r.OwnPct, r.TotalPct, seconds(r.OwnTime), seconds(r.TotalTime), r.Function, where)
	}
	return out
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0fK", float64(n)/(1<<10))
	}
}

// fit cuts a line to width runes.
func fit(s string, width int) string {
	if width <= 0 {
		return s
	}
	n := 0
	for i := range s {
		if n == width {
			return strings.TrimRight(s[:i], " ")
		}
		n++
	}
	return s
}
