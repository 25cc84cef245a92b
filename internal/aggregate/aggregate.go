// Package aggregate adds the sampler's samples to the profile `pyprof
// record` writes, as package top keeps the statistics `pyprof top` shows.
// What recurs from sample to sample is cached, so that a stack seen before
// costs map lookups and no allocation.
package aggregate

import (
	"slices"
	"strconv"

	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/pyfile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

// Options say which frames a stack gets and what the output needs kept.
type Options struct {
	Processes     bool // a frame for each process
	Threads       bool // a frame for each thread (--threads)
	NoLineNumbers bool // aggregate by function, not by line (--nolineno)
	FirstLines    bool // each function at its first line (--function)
	FullFilenames bool // file names whole (--full-filenames)
	// KeepThreads keeps stacks apart by thread, with its id and name,
	// for the outputs that show threads apart (pprof's labels,
	// speedscope's profiles). For the others it would only cost memory
	// for each thread a program starts.
	KeepThreads bool
	// KeepOrder keeps the order of each thread's samples (see
	// profile.Builder.KeepOrder), for the outputs that show it.
	KeepOrder bool
}

// Aggregator adds samples to a profile. The frame of each process, thread
// and Python function (at a line) is looked up by what identifies it, and
// its label is built once.
type Aggregator struct {
	b *profile.Builder
	o Options

	procs    map[int]procFrame // by pid
	thrFrame map[threadKey]int // frame IDs
	hexNames map[uint64]string // names of threads without one, by ident
	funcs    map[funcLine]int  // frame IDs
	ids      []int             // scratch: one stack's frame IDs

	// stable holds the Python frame IDs of stable stacks.
	stable map[*pyspy.Frame]stableStack
	// glFrame holds the frame IDs of greenlet frames, by label.
	glFrame map[string]int
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

// maxThreads bounds the thread frames and names cached: a program that
// starts a thread per task has a new thread id every time, and the
// sampler does not say when one ends. Clearing them costs a lookup by
// value, and a string, for each thread sampled again.
const maxThreads = 1 << 12

// New returns an Aggregator adding to b.
func New(b *profile.Builder, o Options) *Aggregator {
	if o.KeepOrder {
		// The order costs a few bytes per change of a thread's stack.
		b.KeepOrder()
	}
	return &Aggregator{
		b: b, o: o,
		procs: map[int]procFrame{}, thrFrame: map[threadKey]int{},
		hexNames: map[uint64]string{}, funcs: map[funcLine]int{},
	}
}

// Add adds each thread's stack, root first, with the process and thread
// frames the options ask for.
func (a *Aggregator) Add(smp sampler.Sample) {
	for _, t := range smp.Threads {
		ids := a.ids[:0]
		if a.o.Processes {
			ids = append(ids, a.processFrame(smp.Pid, smp.Cmdline))
		}
		name := t.Name
		if !t.HasName {
			name = a.hexName(t.ID)
		}
		if a.o.Threads {
			ids = append(ids, a.threadFrame(t.NativeID, name))
		}
		if t.Greenlet != "" {
			ids = append(ids, a.greenletFrame(t.Greenlet))
		}
		ids = a.pythonFrames(ids, &t)
		a.ids = ids
		if a.o.KeepThreads {
			a.b.AddStack(ids, 1, smp.Pid, t.NativeID, name)
		} else {
			a.b.AddStack(ids, 1, smp.Pid, 0, "")
		}
	}
}

// Forget drops what the caches hold of a process that is no longer
// sampled: its process frame, and the frames cached by Function pointer
// or by stable stack, which would keep its reader's Functions alive. Its
// samples stay in the profile.
func (a *Aggregator) Forget(pid int) {
	delete(a.procs, pid)
	clear(a.funcs)
	clear(a.stable)
}

func (a *Aggregator) processFrame(pid int, cmdline string) int {
	if p, ok := a.procs[pid]; ok && p.cmdline == cmdline {
		return p.id
	}
	id := a.b.FrameID(profile.ProcessFrame(pid, cmdline))
	a.procs[pid] = procFrame{cmdline, id}
	return id
}

func (a *Aggregator) threadFrame(tid int, name string) int {
	k := threadKey{tid, name}
	if id, ok := a.thrFrame[k]; ok {
		return id
	}
	if len(a.thrFrame) >= maxThreads {
		clear(a.thrFrame)
	}
	id := a.b.FrameID(profile.ThreadFrame(tid, name))
	a.thrFrame[k] = id
	return id
}

// greenletFrame is the frame that roots a parked greenlet's stack.
func (a *Aggregator) greenletFrame(label string) int {
	if id, ok := a.glFrame[label]; ok {
		return id
	}
	if a.glFrame == nil || len(a.glFrame) >= maxThreads {
		a.glFrame = map[string]int{}
	}
	id := a.b.FrameID(profile.GreenletFrame(label))
	a.glFrame[label] = id
	return id
}

// hexName names a thread that has no name by its ident, as "0x7f...".
func (a *Aggregator) hexName(ident uint64) string {
	name, ok := a.hexNames[ident]
	if !ok {
		if len(a.hexNames) >= maxThreads {
			clear(a.hexNames)
		}
		name = "0x" + strconv.FormatUint(ident, 16)
		a.hexNames[ident] = name
	}
	return name
}

// stableStack is what is kept of a stable stack, by its first frame: its
// length and the IDs of its frames. The key keeps the slice's array
// alive, so no other stack can take its address while it is kept.
type stableStack struct {
	n   int
	ids []int
}

// maxStable bounds the stable stacks kept: each read of a process's
// pending tasks gives new ones, a thousand for a thousand tasks, and a
// small map stays in the CPU's caches.
const maxStable = 1 << 12

// pythonFrames appends the frame IDs of t's stack, root first. Those of
// a stable stack are kept: a loop with thousands of pending tasks hands
// the same stacks sample after sample.
func (a *Aggregator) pythonFrames(ids []int, t *sampler.Thread) []int {
	start := len(ids)
	var first *pyspy.Frame
	if t.Stable && len(t.Frames) > 0 {
		first = &t.Frames[0]
		if s, ok := a.stable[first]; ok && s.n == len(t.Frames) {
			return append(ids, s.ids...)
		}
	}
	for i := len(t.Frames) - 1; i >= 0; i-- {
		ids = append(ids, a.pythonFrame(&t.Frames[i]))
	}
	if first != nil {
		if a.stable == nil || len(a.stable) >= maxStable {
			a.stable = make(map[*pyspy.Frame]stableStack, maxStable)
		}
		a.stable[first] = stableStack{len(t.Frames), slices.Clone(ids[start:])}
	}
	return ids
}

func (a *Aggregator) pythonFrame(f *pyspy.Frame) int {
	line := f.Line
	switch {
	case a.o.NoLineNumbers:
		line = 0
	case a.o.FirstLines:
		line = f.FirstLine
	}
	k := funcLine{f.Function, line}
	if id, ok := a.funcs[k]; ok {
		return id
	}
	if len(a.funcs) >= maxFuncs {
		clear(a.funcs)
	}
	// Shortened as dump shows it, once per function and line: the
	// cache above spares the lookups.
	file := f.Filename
	if !a.o.FullFilenames {
		file = pyfile.Short(file)
	}
	id := a.b.FrameID(profile.Frame{Kind: profile.Python, Name: f.Name, File: file, Path: f.Filename, Line: line, FirstLine: f.FirstLine})
	a.funcs[k] = id
	return id
}
