// Package profile is pyprof's model of a recording: stacks aggregated with
// their sample counts, optionally the order in which each thread's samples
// were taken, plus what was recorded and how. Samplers add stacks through
// a Builder; the exporters (collapsed stacks, pprof, speedscope, and the
// flamegraph package's SVG through FlameGraph) read the finished Profile.
//
// A sample is one thread's stack as one sampling round found it: a round
// over a process of three active threads gives three samples. Profile.Total
// counts them; Profile.Rounds counts the rounds.
package profile

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind tells what a frame stands for.
type Kind uint8

const (
	Python   Kind = iota // a Python function
	Process              // the process a stack was sampled in
	Thread               // the thread a stack was sampled in
	Greenlet             // the parked greenlet whose stack it is
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

// GreenletFrame labels the stacks of one parked greenlet, by its name or
// address.
func GreenletFrame(label string) Frame {
	return Frame{Kind: Greenlet, Name: "greenlet " + label}
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
	// Idle says the samples include idle threads (--idle): then count ×
	// interval is wall time, and without them it is CPU time.
	Idle bool
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
// A stack is kept in three parts, each stored once, so that a new process
// or thread costs a few tens of bytes for each distinct stack it adds
// rather than a copy of the stack (TestBuilderChurn): its Python part,
// the frames after the leading process and thread frames, as frame IDs in
// one arena that every process and thread share; its label, which says
// where it was sampled (pid, thread id and name, the process and thread
// frames); and an entry that counts the pair. Profile builds the stacks
// the exporters read from them when the recording is finished.
//
// Adding a stack that was seen before allocates nothing: frames are
// interned by value, and the parts are found through tables of indexes
// (see table) by hashes of what they hold.
type Builder struct {
	p       Profile // metadata and Frames; Profile builds the Stacks
	frIndex table   // p.Frames by value
	ids     []int   // scratch for Add

	arena   []int32 // the Python parts' frame IDs, one after another
	pys     []span  // the Python parts, by stack ID
	pyIndex table
	labels  []label
	lbIndex table
	entries []entry // in the order first seen: the indexes of Profile.Stacks
	enIndex table
	seed    maphash.Seed

	// threads, when order is kept, holds each thread's timeline, in
	// the order threads were first seen.
	threads  map[threadKey]int // index in timeline
	timeline []timeline
}

// span is where a stack's Python part lies in Builder.arena.
type span struct{ off, n uint32 }

// maxPrefix is the number of leading process and thread frames a label
// holds; any further ones are kept with the Python part, which is only
// a little less compact.
const maxPrefix = 2

// label is where stacks were sampled: what Stack has besides its Python
// frames and count.
type label struct {
	pid, tid int
	name     string
	prefix   [maxPrefix]int32 // the leading process and thread frames
	nprefix  uint8
	timeline int32 // index in Builder.timeline; -1 until order is kept
}

// entry counts the samples of one Python part under one label.
type entry struct {
	label, stack uint32
	count        int64
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
	return &Builder{seed: maphash.MakeSeed()}
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
	h := b.frameHash(&f)
	id, ok := b.frIndex.find(h, func(i uint32) bool { return b.p.Frames[i] == f })
	if !ok {
		id = uint32(len(b.p.Frames))
		b.p.Frames = append(b.p.Frames, f)
		b.frIndex.insert(h, id, func(i uint32) uint64 { return b.frameHash(&b.p.Frames[i]) })
	}
	return int(id)
}

func (b *Builder) frameHash(f *Frame) uint64 {
	h := maphash.String(b.seed, f.Name)
	h = mix(h ^ maphash.String(b.seed, f.File))
	h = mix(h ^ maphash.String(b.seed, f.Path))
	h = mix(h ^ uint64(f.Kind) ^ uint64(f.Line)<<8)
	return mix(h ^ uint64(f.FirstLine))
}

// AddStack is Add for a stack given as frame IDs from FrameID, root first.
// The builder does not keep ids.
func (b *Builder) AddStack(ids []int, count int64, pid, tid int, threadName string) {
	// Where the stack was sampled is part of what tells stacks apart, so
	// that pprof labels and speedscope's per-thread profiles stay exact.
	l := label{pid: pid, tid: tid, name: threadName, timeline: -1}
	for len(ids) > 0 && int(l.nprefix) < maxPrefix && b.isLabel(ids[0]) {
		l.prefix[l.nprefix] = int32(ids[0])
		l.nprefix++
		ids = ids[1:]
	}
	li := b.label(&l)
	si := b.python(ids)
	h := mix(uint64(li)<<32 | uint64(si))
	i, ok := b.enIndex.find(h, func(i uint32) bool {
		e := &b.entries[i]
		return e.label == li && e.stack == si
	})
	if ok {
		b.entries[i].count += count
	} else {
		i = uint32(len(b.entries))
		b.entries = append(b.entries, entry{label: li, stack: si, count: count})
		b.enIndex.insert(h, i, func(i uint32) uint64 {
			return mix(uint64(b.entries[i].label)<<32 | uint64(b.entries[i].stack))
		})
	}
	if b.threads != nil {
		b.order(int(i), count, &b.labels[li])
	}
}

// isLabel tells whether the frame id stands for a process or a thread.
func (b *Builder) isLabel(id int) bool {
	return id >= 0 && id < len(b.p.Frames) && b.p.Frames[id].Kind != Python
}

// frameID32 is an ID as the arena and labels keep it. IDs come from
// FrameID, far below 2³¹; any other is kept as -1, which the exporters
// report as out of range, as they do the others.
func frameID32(id int) int32 {
	if id < 0 || id > math.MaxInt32 {
		return -1
	}
	return int32(id)
}

// label returns the index of l in b.labels, adding it if it is new.
func (b *Builder) label(l *label) uint32 {
	h := b.labelHash(l)
	i, ok := b.lbIndex.find(h, func(i uint32) bool {
		o := &b.labels[i]
		return o.pid == l.pid && o.tid == l.tid && o.name == l.name && o.prefix == l.prefix && o.nprefix == l.nprefix
	})
	if !ok {
		i = uint32(len(b.labels))
		b.labels = append(b.labels, *l)
		b.lbIndex.insert(h, i, func(i uint32) uint64 { return b.labelHash(&b.labels[i]) })
	}
	return i
}

func (b *Builder) labelHash(l *label) uint64 {
	h := maphash.String(b.seed, l.name)
	h = mix(h ^ uint64(l.pid))
	h = mix(h ^ uint64(l.tid))
	for _, id := range l.prefix[:l.nprefix] {
		h = mix(h ^ uint64(uint32(id)))
	}
	return h
}

// python returns the stack ID of the Python part ids, adding it to the
// arena if it is new.
func (b *Builder) python(ids []int) uint32 {
	h := hashIDs(ids)
	i, ok := b.pyIndex.find(h, func(i uint32) bool {
		s := b.pys[i]
		if int(s.n) != len(ids) {
			return false
		}
		for j, id := range b.arena[s.off : s.off+s.n] {
			if id != frameID32(ids[j]) {
				return false
			}
		}
		return true
	})
	if !ok {
		i = uint32(len(b.pys))
		b.pys = append(b.pys, span{off: uint32(len(b.arena)), n: uint32(len(ids))})
		for _, id := range ids {
			b.arena = append(b.arena, frameID32(id))
		}
		b.pyIndex.insert(h, i, func(i uint32) uint64 { return hashIDs(b.pyFrames(i)) })
	}
	return i
}

// pyFrames returns the Python part of stack ID i.
func (b *Builder) pyFrames(i uint32) []int32 {
	s := b.pys[i]
	return b.arena[s.off : s.off+s.n]
}

// hashIDs hashes frame IDs as the arena holds them, whether from the
// caller's []int or the arena's []int32: one multiplication a frame, and
// mix once at the end.
func hashIDs[T int | int32](ids []T) uint64 {
	h := uint64(len(ids))
	for _, id := range ids {
		h = (h ^ uint64(uint32(frameID32(int(id))))) * 0x9e3779b97f4a7c15
	}
	return mix(h)
}

// KeepOrder has the builder keep, from now on, the order of each thread's
// samples (Profile.Timelines), for outputs that show samples in time
// order. It costs 2–4 bytes each time a thread's stack differs from its
// previous sample's (3 with tens of thousands of distinct stacks), and
// nothing while a thread stays on one stack: an hour at 100 Hz of 10
// threads that change stack every sample takes about 12 MB
// (TestTimelineMemory). Each thread's timeline costs about 220 bytes
// besides (TestBuilderChurn).
func (b *Builder) KeepOrder() {
	if b.threads == nil {
		b.threads = map[threadKey]int{}
	}
}

// order appends count samples of stack i to the timeline of l's thread.
func (b *Builder) order(i int, count int64, l *label) {
	if l.timeline < 0 {
		k := threadKey{pid: l.pid, tid: l.tid}
		if l.tid == 0 {
			k.name = l.name
		}
		ti, ok := b.threads[k]
		if !ok {
			ti = len(b.timeline)
			b.threads[k] = ti
			b.timeline = append(b.timeline, timeline{Timeline: Timeline{Pid: l.pid, Tid: l.tid}})
		}
		l.timeline = int32(ti)
	}
	t := &b.timeline[l.timeline]
	t.Name = l.name
	if t.n > 0 && t.last != i {
		t.close()
	}
	t.last = i
	t.n += count
}

// Runs are stored in chunks that double from minChunk to maxChunk bytes,
// so that a waiting thread's few runs take little room and a busy one's
// millions never wait on, or leave unused, half of one large array. The
// first chunk holds a few runs, as many a short-lived thread has: a
// program that starts a thread per task has thousands.
const (
	minChunk = 32 // at least maxRun
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
//
// Its Stacks are built here, one per entry in the order first seen, and
// not kept while stacks are added: each stack's frames in full are needed
// only to write the profile, by exporters that build about as much again
// of their own (the flame graph's sorted stacks, pprof's samples), and
// for the one write at the end they cost less than the builder once held
// for the whole recording.
func (b *Builder) Profile() *Profile {
	p := b.p
	p.Frames = append([]Frame(nil), b.p.Frames...)
	p.Pids = append([]int(nil), b.p.Pids...)
	p.Stacks = b.stacks()
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

// stacks builds the Stacks of the entries. A stack without process or
// thread frames shares its Frames with the others of the same Python
// part; the rest have theirs in one array.
func (b *Builder) stacks() []Stack {
	if len(b.entries) == 0 {
		return nil
	}
	py := make([]int, len(b.arena))
	for i, id := range b.arena {
		py[i] = int(id)
	}
	n := 0
	for _, e := range b.entries {
		if l := &b.labels[e.label]; l.nprefix > 0 {
			n += int(l.nprefix) + int(b.pys[e.stack].n)
		}
	}
	prefixed := make([]int, 0, n)
	out := make([]Stack, len(b.entries))
	for i, e := range b.entries {
		l := &b.labels[e.label]
		sp := b.pys[e.stack]
		// Capped, so that appending to one stack's frames cannot
		// change another's.
		frames := py[sp.off : sp.off+sp.n : sp.off+sp.n]
		if l.nprefix > 0 {
			start := len(prefixed)
			for _, id := range l.prefix[:l.nprefix] {
				prefixed = append(prefixed, int(id))
			}
			prefixed = append(prefixed, frames...)
			frames = prefixed[start:len(prefixed):len(prefixed)]
		}
		out[i] = Stack{Frames: frames, Count: e.count, Pid: l.pid, Tid: l.tid, ThreadName: l.name}
	}
	return out
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
