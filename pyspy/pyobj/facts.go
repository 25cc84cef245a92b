package pyobj

import (
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyversions"
)

// Facts are what decoding the memory of one interpreter build needs: its
// struct layout and exact release, and what follows from them. They are
// worked out once per binary (a libpython, or a python executable) and
// shared by the readers of every process that maps it, a gunicorn master
// and its workers; nothing in them changes after NewFacts, so readers on
// different goroutines may share them.
type Facts struct {
	Layout  *pyversions.Layout
	Version pyversions.Version
	// Opcodes classifies the instructions of the version's bytecode
	// (3.11+), or is nil.
	Opcodes *pyversions.Opcodes
	// StackEffects are the version's opcodes' stack effects (3.8–3.10),
	// or nil.
	StackEffects *pyversions.StackEffects
	// CodeHeader and ThreadState are how much of a code object and of a
	// thread state is read: every member decoded.
	CodeHeader, ThreadState uint64
	// StacktopMarksRunning says a frame's stacktop is -1 exactly while it
	// runs (3.12, 3.13).
	StacktopMarksRunning bool
}

// NewFacts works out the facts of a build of release v with layout l.
func NewFacts(l *pyversions.Layout, v pyversions.Version) *Facts {
	f := &Facts{Layout: l, Version: v}
	if v.AtLeast(3, 11) {
		f.Opcodes = pyversions.OpcodesFor(v.MinorString())
	} else if v.AtLeast(3, 8) {
		f.StackEffects = pyversions.StackEffectsFor(v.MinorString())
	}
	c := &l.Code
	f.CodeHeader = mem.Extent(l.Object.Type, c.Argcount, c.Posonlyargcount, c.Kwonlyargcount, c.Nlocals, c.Nlocalsplus,
		c.Flags, c.Firstlineno, c.Varnames, c.Cellvars, c.Freevars, c.Localsplusnames, c.Localspluskinds,
		c.Filename, c.Name, c.Qualname, c.Linetable, c.FirstTraceable, c.Code)
	t := &l.Thread
	f.ThreadState = mem.Extent(t.Next, t.Interp, t.Frame, t.CFrame, t.CurrentFrame,
		t.ThreadID, t.NativeThreadID, t.DatastackChunk, t.DatastackTop, t.DatastackLimit)
	fr := &l.IFrame
	f.StacktopMarksRunning = v.AtLeast(3, 12) && !v.AtLeast(3, 14) && fr.Stacktop >= 0 && fr.Stacktop+4 <= fr.Localsplus
	return f
}
