package flamegraph

import (
	"fmt"
	"time"
)

// Kind tells what a frame stands for.
type Kind uint8

const (
	Python   Kind = iota // a Python function
	Process              // the process a stack was sampled in
	Thread               // the thread a stack was sampled in
	Greenlet             // a parked greenlet, whose stack follows
)

// Frame is one frame of a stack. Frames equal in kind, name, file and
// line are one node of the graph wherever they appear.
type Frame struct {
	Kind Kind
	// Name is the function for Python frames, and the whole label for
	// process and thread frames.
	Name string
	// File and Line are shown for Python frames; Line 0 shows none.
	File string
	Line int
	// Path is the file as the interpreter holds it, for telling library
	// code from the application's (see Category); empty means File.
	Path string
}

// String is the frame's label: "function (file:line)" for Python frames.
func (f Frame) String() string {
	if f.Kind != Python {
		return f.Name
	}
	if f.Line == 0 {
		return fmt.Sprintf("%s (%s)", f.Name, f.File)
	}
	return fmt.Sprintf("%s (%s:%d)", f.Name, f.File, f.Line)
}

func (f Frame) fullPath() string {
	if f.Path != "" {
		return f.Path
	}
	return f.File
}

// Stack is a stack and the samples that found it.
type Stack struct {
	// Frames index Profile.Frames, root first.
	Frames []int
	Count  int64
}

// Profile is what a graph is drawn from: stacks of frames with their
// counts, and what the default title says of the recording (see Title).
type Profile struct {
	Frames []Frame
	Stacks []Stack

	// Command is what was recorded; Pids the processes sampled, the
	// first one the root.
	Command string
	Pids    []int
	// Duration and Rate are the recording's length and sampling rate.
	Duration time.Duration
	Rate     float64
	// Rounds counts the sampling rounds, Errors the stacks that could
	// not be read, Missed the rounds skipped after a stall.
	Rounds int64
	Errors int64
	Missed int64
}

// Total is the sum of the stacks' counts: the samples.
func (p *Profile) Total() int64 {
	var n int64
	for _, s := range p.Stacks {
		n += s.Count
	}
	return n
}
