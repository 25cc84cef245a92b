// Package profile is pyprof's model of a recording: stacks aggregated with
// their sample counts, optionally the order in which each thread's samples
// were taken, plus what was recorded and how. Samplers add stacks through
// a Builder; the exporters (collapsed stacks, pprof, speedscope) and the
// flamegraph package read the finished Profile.
//
// A sample is one thread's stack as one sampling round found it: a round
// over a process of three active threads gives three samples. Profile.Total
// counts them; Profile.Rounds counts the rounds.
package profile

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind tells what a frame stands for.
type Kind uint8

const (
	Python  Kind = iota // a Python function
	Process             // the process a stack was sampled in
	Thread              // the thread a stack was sampled in
)

// Frame is one frame of a stack. Frames are compared by value, so equal
// frames aggregate.
type Frame struct {
	Kind Kind
	// Name is the function (co_qualname or co_name) for Python frames,
	// and the whole label for process and thread frames.
	Name string
	// File and Line are set for Python frames; Line is 0 when lines are
	// not recorded (--nolineno). File is the file as shown: shortened
	// (see internal/pyfile) unless the user asked for full names.
	File string
	Line int
	// Path is the file as the interpreter holds it (co_filename), for
	// the outputs that open sources (pprof) and for telling library code
	// from the application's; empty means File.
	Path string
	// FirstLine is the function's first line, for pprof's StartLine. It
	// is the same for every frame of a function, so it does not split
	// aggregation.
	FirstLine int
}

// ProcessFrame labels the stacks of one process.
func ProcessFrame(pid int, cmdline string) Frame {
	return Frame{Kind: Process, Name: "process " + strconv.Itoa(pid) + ": " + cmdline}
}

// ThreadFrame labels the stacks of one thread.
func ThreadFrame(tid int, name string) Frame {
	return Frame{Kind: Thread, Name: "thread " + strconv.Itoa(tid) + ": " + name}
}

// FullPath is the frame's file as the interpreter holds it.
func (f Frame) FullPath() string {
	if f.Path != "" {
		return f.Path
	}
	return f.File
}

// String renders the frame as collapsed stacks and flamegraphs show it:
// "function (file:line)" for Python frames.
func (f Frame) String() string {
	if f.Kind != Python {
		return f.Name
	}
	if f.Line == 0 {
		return fmt.Sprintf("%s (%s)", f.Name, f.File)
	}
	return fmt.Sprintf("%s (%s:%d)", f.Name, f.File, f.Line)
}

// Stack is one unique stack and how often it was seen.
type Stack struct {
	// Frames index Profile.Frames, root first.
	Frames []int
	Count  int64
	// Where the stack was sampled, for pprof labels and speedscope's
	// per-thread profiles.
	Pid        int
	Tid        int
	ThreadName string
}

// Profile is a finished recording.
type Profile struct {
	Frames []Frame
	Stacks []Stack
	// Timelines hold, per thread, the order of its samples, when the
	// builder was asked to keep it (Builder.KeepOrder); nil otherwise.
	Timelines []Timeline

	// Command is what was recorded, for titles: a command line, or a
	// description such as "gunicorn (pid 1234) and 3 subprocesses".
	Command string
	// Pids lists every process that contributed a sample.
	Pids []int
	// Start and Duration bound the recording.
	Start    time.Time
	Duration time.Duration
	// Rate is the requested sampling rate in Hz; Interval is its period,
	// the wall time one sample stands for.
	Rate     float64
	Interval time.Duration
	// Rounds counts the sampling rounds taken (each gives one sample per
	// thread recorded, so Total may be more or fewer), Errors the stacks
	// that could not be read, and Missed the rounds skipped after a stall.
	Rounds int64
	Errors int64
	Missed int64
}

// Total is the sum of all stack counts: the samples recorded.
func (p *Profile) Total() int64 {
	var n int64
	for _, s := range p.Stacks {
		n += s.Count
	}
	return n
}

// Builder aggregates stacks into a Profile. It is not safe for concurrent
// use.
//
// Adding a stack that was seen before allocates nothing: frames are
// interned by value, and a stack is found by a binary key built in a
// reused buffer.
type Builder struct {
	p      Profile
	frames map[Frame]int
	stacks map[string]int // stackKey → index in p.Stacks
	key    []byte
	ids    []int

	// threads, when order is kept, holds each thread's timeline, in
	// the order threads were first seen.
	threads  map[threadKey]int // index in timeline
	timeline []timeline
}

// threadKey names a thread for its timeline: by pid and OS thread id,
// which stay while its name may not (a thread is named after it starts),
// or, when the id is unknown (0), by the name the stacks carry.
type threadKey struct {
	pid, tid int
	name     string
}

// timeline is a Timeline being built: closed runs in runs, and the open
// run, which grows while the thread stays on one stack.
type timeline struct {
	Timeline
	last int   // stack index of the open run
	n    int64 // its samples; 0 before the first
}

// NewBuilder starts an empty profile.
func NewBuilder() *Builder {
	return &Builder{frames: map[Frame]int{}, stacks: map[string]int{}}
}

// Add counts one more occurrence (or count of them) of a stack, given root
// first.
func (b *Builder) Add(frames []Frame, count int64, pid, tid int, threadName string) {
	b.ids = b.ids[:0]
	for _, f := range frames {
		b.ids = append(b.ids, b.FrameID(f))
	}
	b.AddStack(b.ids, count, pid, tid, threadName)
}

// FrameID interns f and returns its index in Profile.Frames. Frames are
// numbered in the order they are first seen.
func (b *Builder) FrameID(f Frame) int {
	id, ok := b.frames[f]
	if !ok {
		id = len(b.p.Frames)
		b.p.Frames = append(b.p.Frames, f)
		b.frames[f] = id
	}
	return id
}

// AddStack is Add for a stack given as frame IDs from FrameID, root first.
// The builder does not keep ids.
func (b *Builder) AddStack(ids []int, count int64, pid, tid int, threadName string) {
	// The key includes where the stack was sampled, so that pprof labels
	// and speedscope's per-thread profiles stay exact. The name's length
	// comes first, so no name can run into the frame IDs.
	k := binary.AppendVarint(b.key[:0], int64(pid))
	k = binary.AppendVarint(k, int64(tid))
	k = binary.AppendUvarint(k, uint64(len(threadName)))
	k = append(k, threadName...)
	for _, id := range ids {
		k = binary.AppendUvarint(k, uint64(id))
	}
	b.key = k
	// Indexing with string(k) does not copy k; only a new stack's key
	// is stored as a string.
	i, ok := b.stacks[string(k)]
	if ok {
		b.p.Stacks[i].Count += count
	} else {
		i = len(b.p.Stacks)
		b.stacks[string(k)] = i
		b.p.Stacks = append(b.p.Stacks, Stack{
			Frames: append([]int(nil), ids...), Count: count,
			Pid: pid, Tid: tid, ThreadName: threadName,
		})
	}
	if b.threads != nil {
		b.order(i, count, pid, tid, threadName)
	}
}

// KeepOrder has the builder keep, from now on, the order of each thread's
// samples (Profile.Timelines), for outputs that show samples in time
// order. It costs 2–4 bytes each time a thread's stack differs from its
// previous sample's (3 with tens of thousands of distinct stacks), and
// nothing while a thread stays on one stack: an hour at 100 Hz of 10
// threads that change stack every sample takes about 12 MB
// (TestTimelineMemory).
func (b *Builder) KeepOrder() {
	if b.threads == nil {
		b.threads = map[threadKey]int{}
	}
}

// order appends count samples of stack i to the thread's timeline.
func (b *Builder) order(i int, count int64, pid, tid int, name string) {
	k := threadKey{pid: pid, tid: tid}
	if tid == 0 {
		k.name = name
	}
	ti, ok := b.threads[k]
	if !ok {
		ti = len(b.timeline)
		b.threads[k] = ti
		b.timeline = append(b.timeline, timeline{Timeline: Timeline{Pid: pid, Tid: tid}})
	}
	t := &b.timeline[ti]
	t.Name = name
	if t.n > 0 && t.last != i {
		t.close()
	}
	t.last = i
	t.n += count
}

// Runs are stored in chunks that double from minChunk to maxChunk bytes,
// so that a waiting thread's few runs take little room and a busy one's
// millions never wait on, or leave unused, half of one large array.
const (
	minChunk = 256
	maxChunk = 64 << 10
	maxRun   = 2 * binary.MaxVarintLen64
)

// close ends the open run.
func (t *timeline) close() {
	last := len(t.runs) - 1
	if last < 0 || cap(t.runs[last])-len(t.runs[last]) < maxRun {
		size := minChunk
		if last >= 0 {
			size = min(2*cap(t.runs[last]), maxChunk)
		}
		t.runs = append(t.runs, make([]byte, 0, size))
		last++
	}
	c := binary.AppendUvarint(t.runs[last], uint64(t.last))
	t.runs[last] = binary.AppendUvarint(c, uint64(t.n))
	t.n = 0
}

// Timeline is the order in which one thread's samples were taken, as runs
// of consecutive samples of one stack.
type Timeline struct {
	Pid, Tid int
	// Name is the thread's name at its last sample.
	Name string
	runs [][]byte // chunks of (stack index, samples) pairs as uvarints
}

// Runs calls f for each run of the thread's samples, in the order they
// were taken, with the run's stack (an index in Profile.Stacks) and its
// number of samples, until f returns false.
func (t *Timeline) Runs(f func(stack int, n int64) bool) {
	for _, b := range t.runs {
		for len(b) > 0 {
			s, k := binary.Uvarint(b)
			if k <= 0 {
				return
			}
			n, m := binary.Uvarint(b[k:])
			if m <= 0 {
				return
			}
			b = b[k+m:]
			if !f(int(s), int64(n)) {
				return
			}
		}
	}
}

// Bytes is the memory the timeline's runs take.
func (t *Timeline) Bytes() int {
	n := 0
	for _, c := range t.runs {
		n += cap(c)
	}
	return n
}

// Meta returns the profile's metadata for the caller to fill in.
func (b *Builder) Meta() *Profile { return &b.p }

// Profile returns the aggregated profile. The builder may keep adding to
// it afterwards.
func (b *Builder) Profile() *Profile {
	p := b.p
	p.Frames = append([]Frame(nil), b.p.Frames...)
	p.Stacks = append([]Stack(nil), b.p.Stacks...)
	p.Pids = append([]int(nil), b.p.Pids...)
	for i := range b.timeline {
		t := &b.timeline[i]
		// Closing the open run here only splits it in two if the
		// thread stays on its stack: the order is the same. The chunks
		// are shared, not copied: the builder only appends past the
		// end each one has here.
		if t.n > 0 {
			t.close()
		}
		tl := t.Timeline
		tl.runs = slices.Clone(tl.runs)
		p.Timelines = append(p.Timelines, tl)
	}
	return &p
}

// CollapsedLines returns the profile as collapsed stacks, one line per
// unique stack ("root;...;leaf COUNT"), merged across threads and sorted,
// as flamegraph.pl and speedscope read them.
func (p *Profile) CollapsedLines() []string {
	counts := map[string]int64{}
	var b strings.Builder
	for _, s := range p.Stacks {
		b.Reset()
		for i, id := range s.Frames {
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteString(collapsedName(p.Frames[id]))
		}
		counts[b.String()] += s.Count
	}
	lines := make([]string, 0, len(counts))
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(lines)
	return lines
}

// collapsedName keeps a frame on its line and between separators: the
// format has no escapes, so semicolons and newlines become look-alikes.
func collapsedName(f Frame) string {
	return strings.NewReplacer(";", ":", "\n", " ", "\r", " ").Replace(f.String())
}
