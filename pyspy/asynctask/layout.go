package asynctask

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyversions"
)

// layout holds the offsets of what asyncio keeps in C that pyversions'
// Layout does not describe: the _asyncio module's FutureObj and TaskObj
// (Modules/_asynciomodule.c, in no header), the generator object's frame
// members and the thread state's asyncio members. Absent (-1) marks a
// member the version does not have. The rows are generated from
// layouts.txt, whose values are those of docs/asyncio-layouts.md: DWARF
// of the pyenv builds for 3.7–3.13, the -dev headers and the
// .AsyncioDebug section for 3.14 and 3.15, each checked live on every
// interpreter; from 3.14 the target's own _Py_AsyncioModuleDebugOffsets
// override the task and thread members.
type layout struct {
	// minor is the CPython 3 minor of the row.
	minor int

	// FutureObj (and TaskObj's copy of its head).
	futLoop, futCallback0, futCallbacks, futState int64
	// TaskObj.
	taskFutWaiter, taskCoro, taskName, taskNode int64
	// taskSize is sizeof(TaskObj), which bounds one read of a task.
	taskSize int64
	// PyFunctionObject.func_closure.
	funcClosure int64

	// Generators, coroutines and async generators share a head: up to
	// 3.10 gi_frame points to a frame object, from 3.11 the frame is
	// embedded at genIFrame and its state is the byte at genFrameState.
	genFrame, genIFrame, genFrameState int64
	// PyFrameObject (up to 3.10): the value stack, its top (3.7–3.9, a
	// pointer) or depth (3.10, a count) and f_lasti.
	frameValuestack, frameStacktop, frameStackdepth, frameLasti int64
	// _PyInterpreterFrame: stacktop, a count of slots from localsplus
	// (3.11–3.13), or stackpointer (3.14+).
	iframeStacktop, iframeStackpointer int64

	// The thread state's running loop (3.13+), running task and task
	// list (3.14+), and the interpreter's list of the tasks of threads
	// that exited (3.14+).
	tstateRunningLoop, tstateRunningTask, tstateTasksHead, interpTasksHead int64
}

// Members at the same offset in every version read (3.7–3.15): the
// future a FutureIter iterates, the async generator of an asend or athrow
// object, the self of a bound method (PyMethodObject.im_self) and of a
// builtin one (PyCFunctionObject.m_self), the task of 3.7–3.9's
// TaskWakeupMethWrapper, functools.partial's args, a weak reference's
// referent and a type's tp_base.
const (
	futureIterFuture = 16
	asendGen         = 16
	methodSelf       = 24
	cmethodSelf      = 24
	wakeupTask       = 16
	partialArgs      = 24
	weakrefObject    = 16
	typeBase         = 256
)

// Frame states of 3.11+ (gi_frame_state) that a suspended generator has.
// 3.11 and 3.12 have one; 3.13 and 3.14 tell a suspension in an await or
// yield from (-1) from a plain yield (-2); 3.15 renumbers them from 0.
const (
	suspended311         = -1
	suspended313         = -2
	suspendedYieldFrom   = -1
	suspended315         = 1
	suspendedYieldFrom15 = 2
	suspendedLocked315   = 3
)

// Opcodes of the RESUME that follows a yield in 3.11 and 3.12, whose
// oparg says an await or yield from suspended the frame.
const (
	resume311, resumeQuick311        = 151, 150
	resume312, instrumentedResume312 = 151, 240
)

// yieldFrom is the opcode of 3.7–3.10's YIELD_FROM.
const yieldFrom = 72

// futPending is fut_state's PENDING.
const futPending = 0

const absent = pyversions.Absent

// afterThreadState marks, in the table, a member that follows the
// PyThreadState a _PyThreadStateImpl embeds (3.13's running loop): its
// offset is that struct's size, which differs between patch releases.
const afterThreadState = -2

// layoutFor returns the asyncio layout of minor v, or an error for a
// version with no asyncio tasks pyprof reads (before 3.7). A minor later
// than the table's last takes that last row.
func layoutFor(v pyversions.Version, l *pyversions.Layout) (*layout, error) {
	if v.Major != 3 || v.Minor < 7 {
		return nil, fmt.Errorf("asyncio tasks of python %s: %w", v, ErrUnsupported)
	}
	a := layouts[len(layouts)-1]
	for _, row := range layouts {
		if row.minor == v.Minor {
			a = row
		}
	}
	if a.tstateRunningLoop == afterThreadState {
		a.tstateRunningLoop = absent
		if l.Thread.Size > 0 {
			a.tstateRunningLoop = l.Thread.Size
		}
	}
	return &a, nil
}

// ErrUnsupported means the version keeps its tasks where pyprof does not
// read them.
var ErrUnsupported = errors.New("not supported")

// DebugOffsets is the _asyncio module's _Py_AsyncioModuleDebugOffsets
// (3.14+), 13 words in the image's .AsyncioDebug section: where a task's
// members are, and the asyncio members of the interpreter and thread
// states.
type DebugOffsets struct {
	TaskSize, TaskName, TaskAwaitedBy, TaskIsTask, TaskAwaitedByIsSet, TaskCoro, TaskNode uint64
	InterpSize, InterpTasksHead                                                           uint64
	ThreadSize, ThreadRunningLoop, ThreadRunningTask, ThreadTasksHead                     uint64
}

// DebugOffsetsSize is the size of the struct in the section.
const DebugOffsetsSize = 13 * 8

// Bounds a descriptor's sizes must respect: far above the real ones
// (TaskObj is 168 bytes, _PyThreadStateImpl about 1 KB, the interpreter
// state 226 KB in 3.14 and 3.15).
const (
	maxTaskSize   = 4096
	maxThreadSize = 1 << 16
	maxInterpSize = 1 << 22
)

// DecodeDebugOffsets decodes and checks the section's bytes: every offset
// must lie inside the struct it is an offset of.
func DecodeDebugOffsets(b []byte) (*DebugOffsets, error) {
	if len(b) < DebugOffsetsSize {
		return nil, fmt.Errorf("asyncio debug offsets: %d bytes, want %d", len(b), DebugOffsetsSize)
	}
	w := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	d := &DebugOffsets{
		TaskSize: w(0), TaskName: w(1), TaskAwaitedBy: w(2), TaskIsTask: w(3), TaskAwaitedByIsSet: w(4), TaskCoro: w(5), TaskNode: w(6),
		InterpSize: w(7), InterpTasksHead: w(8),
		ThreadSize: w(9), ThreadRunningLoop: w(10), ThreadRunningTask: w(11), ThreadTasksHead: w(12),
	}
	switch {
	case d.TaskSize < 32 || d.TaskSize > maxTaskSize:
		return nil, fmt.Errorf("asyncio debug offsets: task size %d", d.TaskSize)
	case d.ThreadSize < 64 || d.ThreadSize > maxThreadSize:
		return nil, fmt.Errorf("asyncio debug offsets: thread state size %d", d.ThreadSize)
	case d.InterpSize < 64 || d.InterpSize > maxInterpSize:
		return nil, fmt.Errorf("asyncio debug offsets: interpreter state size %d", d.InterpSize)
	}
	for _, m := range []struct {
		what      string
		off, size uint64
	}{
		{"task name", d.TaskName + 8, d.TaskSize}, {"task coro", d.TaskCoro + 8, d.TaskSize},
		{"task node", d.TaskNode + 16, d.TaskSize}, {"task awaited_by", d.TaskAwaitedBy + 8, d.TaskSize},
		{"interpreter task list", d.InterpTasksHead + 16, d.InterpSize},
		{"running loop", d.ThreadRunningLoop + 8, d.ThreadSize}, {"running task", d.ThreadRunningTask + 8, d.ThreadSize},
		{"thread task list", d.ThreadTasksHead + 16, d.ThreadSize},
	} {
		if m.off > m.size {
			return nil, fmt.Errorf("asyncio debug offsets: %s outside its struct of %d bytes", m.what, m.size)
		}
	}
	return d, nil
}

// apply takes the members a descriptor gives over the table's.
func (a *layout) apply(d *DebugOffsets) {
	a.taskName, a.taskCoro, a.taskNode = int64(d.TaskName), int64(d.TaskCoro), int64(d.TaskNode)
	a.taskSize = max(a.taskSize, int64(d.TaskSize))
	a.tstateRunningLoop, a.tstateRunningTask, a.tstateTasksHead = int64(d.ThreadRunningLoop), int64(d.ThreadRunningTask), int64(d.ThreadTasksHead)
	a.interpTasksHead = int64(d.InterpTasksHead)
}

// genHead is how much of a generator object is read to follow it: up to
// its frame pointer (3.7–3.10), or its embedded frame's locals (3.11+).
func (a *layout) genHead(l *pyversions.Layout) int64 {
	if a.genFrame >= 0 {
		return a.genFrame + 8
	}
	return a.genIFrame + l.IFrame.Localsplus
}
