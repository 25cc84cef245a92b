package asynctask

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// Bounds on what is read from the target. Real programs stay far below
// them; a corrupt list or chain is cut at them.
const (
	// MaxTasks bounds the tasks of one read.
	MaxTasks = 100_000
	// MaxChain bounds the coroutines and generators of one await chain.
	MaxChain = 1024
	// maxCallbacks bounds the done-callbacks read of one future.
	maxCallbacks = 256
	// maxChildren bounds the children of a gather, and maxCells the
	// cells of a callback's closure.
	maxChildren = 4096
	maxCells    = 64
	// maxNesting bounds gathers of gathers, and the base classes
	// followed to recognise a task.
	maxNesting = 64
)

// ErrCycle means an await chain or a task list loops, which only happens
// when memory changed under the reader or is corrupt.
var ErrCycle = errors.New("cycle")

// ErrTruncated marks a list or chain cut at its bound; what was read
// before is kept.
var ErrTruncated = errors.New("longer than the read limit")

// Thread is what the caller knows of one thread: its state, its ident and
// the stack it sampled, which gives the frames of the task it runs.
type Thread struct {
	// Addr is the PyThreadState, ID its thread_id (threading.get_ident).
	Addr, ID uint64
	// Frames is the thread's stack, innermost first.
	Frames []frames.Frame
}

// Task is one unfinished asyncio task.
type Task struct {
	// Addr is the task object's address: id(task).
	Addr uint64
	// Name is task.get_name(): "" on 3.7, which names no task.
	Name string
	// Running says the task is the current task of its loop: the
	// thread is inside one of its steps.
	Running bool
	// Loop is the address of the task's event loop, and Thread the
	// ident of the thread that runs it, 0 when no thread runs it.
	Loop, Thread uint64
	// Awaiting are the addresses of the tasks this one waits for.
	Awaiting []uint64
	// Frames are the frames of the task's await chain, innermost first;
	// for a running task, the thread's frames down to the task's
	// coroutine.
	Frames []frames.Frame
	// Err is what could not be read of the task (its chain is then
	// incomplete).
	Err error

	// nameObj is the name object, decoded only for the tasks wanted.
	nameObj uint64
}

// Config is what a Reader needs besides the memory.
type Config struct {
	Facts *pyobj.Facts
	// Interp is the PyInterpreterState.
	Interp uint64
	// Debug is the target's _Py_AsyncioModuleDebugOffsets (3.14+), or
	// nil to use the offsets of the released builds.
	Debug *DebugOffsets
	// NoReadahead reads exactly what is decoded rather than the pages
	// around it: for a snapshot, which holds only the bytes once read.
	NoReadahead bool
}

// Reader reads the tasks of one process. It is not safe for concurrent
// use.
type Reader struct {
	a      *layout
	l      *pyversions.Layout
	v      pyversions.Version
	interp uint64
	cache  *mem.Cache
	dec    *pyobj.Decoder
	codes  *pyobj.Codes
	walker *frames.Walker
	walk   frames.Walk

	// What one read learns: the task and future types, the module
	// dicts, the kinds of the objects met.
	cTask, cFuture, pyTask, pyFuture uint64
	kinds                            map[uint64]kind

	// memos are the chains of pending tasks as the last reads found
	// them, and gen counts the reads.
	memos map[uint64]*memo
	gen   int

	// mods, found at read modsGen, and lookups, the module attributes
	// looked up since, are kept for refreshEvery reads: finding them
	// compares the keys of sys.modules and of the module dicts, and
	// asyncio never replaces them.
	mods    modules
	modsGen int
	lookups map[lookupKey]uint64
}

// refreshEvery is how many reads go by between two lookups of asyncio's
// modules and their attributes.
const refreshEvery = 100

type lookupKey struct {
	dict uint64
	name string
}

// cachedModules returns the modules, found again every refreshEvery
// reads, or while asyncio is not imported.
func (r *Reader) cachedModules() (modules, error) {
	if r.mods.tasks != 0 && r.gen-r.modsGen < refreshEvery {
		return r.mods, nil
	}
	r.cTask, r.cFuture, r.pyTask, r.pyFuture = 0, 0, 0, 0
	r.lookups = map[lookupKey]uint64{}
	m, err := r.modules()
	r.mods, r.modsGen = m, r.gen
	if err != nil {
		r.mods = modules{}
	}
	return m, err
}

// New returns a reader of the tasks in memory m of an interpreter whose
// facts and state cfg gives.
func New(m mem.Memory, cfg Config) (*Reader, error) {
	if cfg.Facts == nil {
		return nil, errors.New("no facts")
	}
	f := cfg.Facts
	a, err := layoutFor(f.Version, f.Layout)
	if err != nil {
		return nil, err
	}
	if cfg.Debug != nil {
		a.apply(cfg.Debug)
	}
	c := mem.NewCache(m, !cfg.NoReadahead)
	dec := pyobj.NewDecoder(c, f)
	codes := pyobj.NewCodes(dec)
	return &Reader{
		a: a, l: f.Layout, v: f.Version, interp: cfg.Interp,
		cache: c, dec: dec, codes: codes, walker: frames.NewWalker(dec, codes),
	}, nil
}

// kind classifies an object met while reading tasks.
type kind uint8

const (
	kindOther kind = iota
	kindCTask
	kindPyTask
	kindCoroutine // a coroutine, generator or async generator
	kindAsend     // async_generator_asend or _athrow: awaits its generator
	kindFutureIter
)

// ReadOptions choose what Tasks decodes.
type ReadOptions struct {
	// Locals renders each frame's arguments and local variables.
	Locals bool
	// RunningOnly decodes the names and frames of running tasks and of
	// the tasks that (transitively) await them only: what a sample
	// without idle stacks needs. The other tasks come without either.
	RunningOnly bool
}

// Tasks reads every unfinished task and what o asks of it. Tasks come
// grouped by the thread that runs their loop, in the order of
// threads, then the tasks of loops no thread runs. A process without
// asyncio has none. The error says what could not be read; the tasks
// that could are returned with it.
func (r *Reader) Tasks(threads []Thread, o ReadOptions) ([]Task, error) {
	r.cache.Begin()
	if r.kinds == nil {
		r.kinds, r.memos = map[uint64]kind{}, map[uint64]*memo{}
	}
	clear(r.kinds)
	r.gen++
	defer r.forget()
	mods, err := r.cachedModules()
	if err != nil || (mods.tasks == 0 && mods.casyncio == 0) {
		return nil, err
	}
	var errs []error
	running, cur, err := r.current(mods, threads)
	if err != nil {
		errs = append(errs, err)
	}
	if o.RunningOnly {
		// The chains of the running tasks can mostly be found from
		// the running tasks up, without reading every task.
		if tasks, ok := r.runningChains(cur); ok {
			r.placeTasks(tasks, threads, mods, running)
			for i := range tasks {
				r.decode(&tasks[i], threads, o)
			}
			return order(tasks, threads), errors.Join(errs...)
		}
	}
	cands, err := r.candidates(mods, threads)
	if err != nil {
		errs = append(errs, err)
	}
	cands = append(cands, cur...)
	var tasks []Task
	index := make(map[uint64]int, len(cands))
	for _, addr := range cands {
		if _, dup := index[addr]; dup {
			continue
		}
		k := r.kindOf(addr)
		if k != kindCTask && k != kindPyTask {
			continue
		}
		t, pending, err := r.task(addr, k)
		if err != nil {
			errs = append(errs, fmt.Errorf("task at %#x: %w", addr, err))
			continue
		}
		if !pending {
			continue
		}
		if len(tasks) >= MaxTasks {
			errs = append(errs, fmt.Errorf("tasks: %w", ErrTruncated))
			break
		}
		index[addr] = len(tasks)
		tasks = append(tasks, t)
	}
	r.placeTasks(tasks, threads, mods, running)
	if err := r.edges(tasks, index); err != nil {
		errs = append(errs, err)
	}
	var want []bool
	if o.RunningOnly {
		want = chainsOfRunning(tasks, index)
	}
	for i := range tasks {
		if want == nil || want[i] {
			r.decode(&tasks[i], threads, o)
		}
	}
	return order(tasks, threads), errors.Join(errs...)
}

// decode fills in a task's name and frames.
func (r *Reader) decode(t *Task, threads []Thread, o ReadOptions) {
	if m := r.memos[t.Addr]; m != nil && m.nameObj == t.nameObj {
		t.Name = m.name
	} else if t.nameObj != 0 {
		var err error
		if t.Name, err = r.name(t.nameObj); err != nil {
			t.Err = fmt.Errorf("name: %w", err)
		}
	}
	r.frames(t, threads, o.Locals)
}

// order groups tasks by the thread that runs their loop, keeping the
// order in which they were found within a thread.
func order(tasks []Task, threads []Thread) []Task {
	out := make([]Task, 0, len(tasks))
	for _, th := range threads {
		for _, t := range tasks {
			if t.Thread == th.ID && th.ID != 0 {
				out = append(out, t)
			}
		}
	}
	for _, t := range tasks {
		if t.Thread == 0 {
			out = append(out, t)
		}
	}
	return out
}

// modules are the dicts of the modules where asyncio keeps its tasks.
type modules struct {
	tasks, casyncio, futures uint64
}

func (r *Reader) modules() (modules, error) {
	var m modules
	dict, err := r.dec.Pointer(r.interp + uint64(r.l.Interp.Modules))
	if err != nil {
		return m, fmt.Errorf("sys.modules: %w", err)
	}
	if dict == 0 {
		return m, errors.New("sys.modules not set")
	}
	for _, mod := range []struct {
		name string
		dst  *uint64
	}{{"asyncio.tasks", &m.tasks}, {"_asyncio", &m.casyncio}, {"asyncio.futures", &m.futures}} {
		obj, err := r.dec.DictLookup(dict, mod.name)
		if err != nil {
			return m, fmt.Errorf("sys.modules[%q]: %w", mod.name, err)
		}
		if obj == 0 {
			continue
		}
		if *mod.dst, err = r.dec.Pointer(obj + uint64(r.l.Module.Dict)); err != nil {
			return m, fmt.Errorf("module %s: %w", mod.name, err)
		}
	}
	if m.casyncio != 0 {
		r.cTask, _ = r.dec.DictLookup(m.casyncio, "Task")
		r.cFuture, _ = r.dec.DictLookup(m.casyncio, "Future")
	}
	if m.tasks != 0 {
		r.pyTask, _ = r.dec.DictLookup(m.tasks, "_PyTask")
		if r.cTask == 0 {
			// Without _asyncio, asyncio.Task is the pure-Python one.
			r.pyTask, _ = r.dec.DictLookup(m.tasks, "Task")
		}
	}
	if m.futures != 0 {
		r.pyFuture, _ = r.dec.DictLookup(m.futures, "_PyFuture")
	}
	return m, nil
}

// lookup returns the value of name in the module dict md, or 0.
func (r *Reader) lookup(md uint64, name string) uint64 {
	if md == 0 {
		return 0
	}
	k := lookupKey{md, name}
	if v, ok := r.lookups[k]; ok {
		return v
	}
	v, err := r.dec.DictLookup(md, name)
	if err != nil {
		return 0
	}
	if r.lookups != nil {
		r.lookups[k] = v
	}
	return v
}

// current returns the tasks each thread's loop runs now, by loop (or,
// from 3.14, by thread state), and as a list.
func (r *Reader) current(m modules, threads []Thread) (map[uint64]uint64, []uint64, error) {
	var out []uint64
	var errs []error
	running := map[uint64]uint64{}
	if r.a.tstateRunningTask >= 0 {
		for _, th := range threads {
			if t, err := r.dec.Pointer(th.Addr + uint64(r.a.tstateRunningTask)); err == nil && t != 0 {
				running[th.Addr] = t
				out = append(out, t)
			}
		}
	}
	for _, md := range []uint64{m.tasks, m.casyncio} {
		if cur := r.lookup(md, "_current_tasks"); cur != 0 {
			items, _, err := r.dec.DictItems(cur, MaxTasks)
			if err != nil {
				errs = append(errs, fmt.Errorf("_current_tasks: %w", err))
			}
			for _, kv := range items {
				running[kv.Key] = kv.Value
				out = append(out, kv.Value)
			}
		}
	}
	return running, out, errors.Join(errs...)
}

// candidates lists the objects that may be tasks, wherever this version
// registers them.
func (r *Reader) candidates(m modules, threads []Thread) ([]uint64, error) {
	var out []uint64
	var errs []error
	if r.a.tstateTasksHead >= 0 {
		for _, th := range threads {
			n, err := r.llist(th.Addr+uint64(r.a.tstateTasksHead), &out)
			if err != nil {
				errs = append(errs, fmt.Errorf("tasks of thread %#x: %w (%d read)", th.ID, err, n))
			}
		}
		if r.a.interpTasksHead >= 0 {
			if n, err := r.llist(r.interp+uint64(r.a.interpTasksHead), &out); err != nil {
				errs = append(errs, fmt.Errorf("tasks of exited threads: %w (%d read)", err, n))
			}
		}
	}
	// The registries that asyncio keeps in Python or in the _asyncio
	// module. Both modules are read: a program that imports _asyncio
	// before asyncio leaves asyncio.tasks with registries of its own.
	for _, md := range []uint64{m.tasks, m.casyncio} {
		for _, name := range []string{"_all_tasks", "_scheduled_tasks", "_eager_tasks"} {
			obj := r.lookup(md, name)
			if obj == 0 {
				continue
			}
			if err := r.setMembers(obj, &out); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	if len(out) > 4*MaxTasks {
		out = out[:4*MaxTasks]
		errs = append(errs, fmt.Errorf("task registries: %w", ErrTruncated))
	}
	return out, errors.Join(errs...)
}

// llist appends the tasks of the circular list whose head is at head
// (3.14+: struct llist_node, next then prev, in each task at taskNode).
func (r *Reader) llist(head uint64, out *[]uint64) (int, error) {
	n, err := r.dec.Pointer(head)
	if err != nil {
		return 0, err
	}
	var cyc frames.Brent
	count := 0
	for n != head {
		if n == 0 {
			return count, errors.New("null link")
		}
		if count >= MaxTasks {
			return count, ErrTruncated
		}
		if cyc.Step(n) {
			return count, ErrCycle
		}
		*out = append(*out, n-uint64(r.a.taskNode))
		count++
		if n, err = r.dec.Pointer(n); err != nil {
			return count, err
		}
	}
	return count, nil
}

// setMembers appends the members of a set, or the referents of a
// weakref.WeakSet's set of weak references.
func (r *Reader) setMembers(obj uint64, out *[]uint64) error {
	name, _, err := r.dec.BuiltinType(obj)
	if err != nil {
		return err
	}
	weak := name != "set"
	if weak {
		data, err := r.dec.Attribute(obj, "data")
		if err != nil {
			return fmt.Errorf("WeakSet data: %w", err)
		}
		if data == 0 {
			return nil
		}
		obj = data
	}
	items, n, err := r.dec.SetItems(obj, MaxTasks)
	if err != nil {
		return err
	}
	for _, it := range items {
		if weak {
			if it, err = r.dec.Pointer(it + weakrefObject); err != nil {
				continue
			}
		}
		*out = append(*out, it)
	}
	if n > len(items) && len(items) == MaxTasks {
		return ErrTruncated
	}
	return nil
}

// kindOf classifies the object at addr, by its type and its type's bases.
func (r *Reader) kindOf(addr uint64) kind {
	if addr == 0 {
		return kindOther
	}
	if k, ok := r.kinds[addr]; ok {
		return k
	}
	k := r.classify(addr)
	if len(r.kinds) < 4*MaxTasks {
		r.kinds[addr] = k
	}
	return k
}

func (r *Reader) classify(addr uint64) kind {
	typ, err := r.dec.TypeOf(addr)
	if err != nil || typ == 0 {
		return kindOther
	}
	name, heap, err := r.dec.TypeName(typ)
	if err != nil {
		return kindOther
	}
	if !heap {
		switch name {
		case "coroutine", "generator", "async_generator":
			return kindCoroutine
		case "async_generator_asend", "async_generator_athrow":
			return kindAsend
		}
	}
	if name == "_asyncio.FutureIter" {
		return kindFutureIter
	}
	for t, i := typ, 0; t != 0 && i < maxNesting; i++ {
		switch {
		case t == r.cTask && r.cTask != 0:
			return kindCTask
		case t == r.pyTask && r.pyTask != 0:
			return kindPyTask
		}
		if t, err = r.dec.Pointer(t + typeBase); err != nil {
			return kindOther
		}
	}
	return kindOther
}

// task decodes the task at addr and says whether it is pending.
func (r *Reader) task(addr uint64, k kind) (Task, bool, error) {
	t := Task{Addr: addr}
	if k == kindPyTask {
		return r.pyTaskFields(t)
	}
	a := r.a
	f, err := r.dec.Read(addr, uint64(a.taskSize), "task")
	if err != nil {
		return t, false, err
	}
	state := f.I32(a.futState)
	t.Loop = f.Ptr(a.futLoop)
	var name uint64
	if a.taskName >= 0 {
		name = f.Ptr(a.taskName)
	}
	if f.Err() != nil {
		return t, false, f.Err()
	}
	if state != futPending {
		return t, false, nil
	}
	t.nameObj = name
	return t, true, nil
}

// name renders a task's name: a str, or from 3.12 the int a task gets
// until its name is first asked for, which get_name makes "Task-N".
func (r *Reader) name(obj uint64) (string, error) {
	tn, _, err := r.dec.BuiltinType(obj)
	if err != nil {
		return "", err
	}
	switch tn {
	case "str":
		return r.dec.Str(obj)
	case "int":
		n, neg, err := r.dec.IntValue(obj)
		if err != nil {
			return "", err
		}
		if neg {
			return fmt.Sprintf("Task--%d", n), nil
		}
		return fmt.Sprintf("Task-%d", n), nil
	}
	return "", fmt.Errorf("name is a %q", tn)
}

// pyTaskFields decodes a pure-Python task from its instance attributes.
func (r *Reader) pyTaskFields(t Task) (Task, bool, error) {
	state, err := r.dec.Attribute(t.Addr, "_state")
	if err != nil {
		return t, false, err
	}
	// The class attribute, PENDING, holds until the instance sets its
	// own.
	if state != 0 && !r.dec.StrEquals(state, "PENDING") {
		return t, false, nil
	}
	if t.Loop, err = r.dec.Attribute(t.Addr, "_loop"); err != nil {
		return t, true, err
	}
	if name, err := r.dec.Attribute(t.Addr, "_name"); err == nil {
		t.nameObj = name
	}
	return t, true, nil
}

// coro returns the task's coroutine and the future it waits on.
func (r *Reader) coro(addr uint64) (coro, waiter uint64, err error) {
	if r.kindOf(addr) == kindPyTask {
		if coro, err = r.dec.Attribute(addr, "_coro"); err != nil {
			return 0, 0, err
		}
		waiter, err = r.dec.Attribute(addr, "_fut_waiter")
		return coro, waiter, err
	}
	f, err := r.dec.Read(addr, uint64(r.a.taskSize), "task")
	if err != nil {
		return 0, 0, err
	}
	coro, waiter = f.Ptr(r.a.taskCoro), f.Ptr(r.a.taskFutWaiter)
	return coro, waiter, f.Err()
}

// placeTasks says which thread runs each task's loop and which tasks run.
// From 3.13 a thread state holds its running loop (and from 3.14 its
// running task); before, the loop's _thread_id says which thread runs it
// and asyncio's _current_tasks which task it runs.
func (r *Reader) placeTasks(tasks []Task, threads []Thread, m modules, running map[uint64]uint64) {
	loops := map[uint64]uint64{}
	ids := map[uint64]bool{}
	for _, th := range threads {
		ids[th.ID] = true
		if r.a.tstateRunningLoop < 0 {
			continue
		}
		if loop, err := r.dec.Pointer(th.Addr + uint64(r.a.tstateRunningLoop)); err == nil && loop != 0 {
			loops[loop] = th.ID
		}
		if t, ok := running[th.Addr]; ok {
			if loop, err := r.dec.Pointer(th.Addr + uint64(r.a.tstateRunningLoop)); err == nil {
				running[loop] = t
			}
		}
	}
	for i := range tasks {
		t := &tasks[i]
		id, ok := loops[t.Loop]
		if !ok && t.Loop != 0 {
			id = r.loopThread(t.Loop)
			if !ids[id] {
				id = 0
			}
			loops[t.Loop] = id
		}
		t.Thread = id
		t.Running = t.Loop != 0 && running[t.Loop] == t.Addr
	}
}

// loopThread returns the ident of the thread that runs loop, as
// BaseEventLoop.run_forever records it in _thread_id, or 0.
func (r *Reader) loopThread(loop uint64) uint64 {
	v, err := r.dec.Attribute(loop, "_thread_id")
	if err != nil || v == 0 {
		return 0
	}
	if tn, _, err := r.dec.BuiltinType(v); err != nil || tn != "int" {
		return 0
	}
	id, neg, err := r.dec.IntValue(v)
	if err != nil || neg {
		return 0
	}
	return id
}

// chainsOfRunning marks the running tasks and the tasks that await them,
// transitively.
func chainsOfRunning(tasks []Task, index map[uint64]int) []bool {
	parents := make([][]int, len(tasks))
	for i := range tasks {
		for _, a := range tasks[i].Awaiting {
			if c, ok := index[a]; ok {
				parents[c] = append(parents[c], i)
			}
		}
	}
	want := make([]bool, len(tasks))
	var stack []int
	for i := range tasks {
		if tasks[i].Running {
			want[i] = true
			stack = append(stack, i)
		}
	}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range parents[c] {
			if !want[p] {
				want[p] = true
				stack = append(stack, p)
			}
		}
	}
	return want
}

// forget drops the memos of tasks the last read did not look at: they
// finished, or their chains were not needed.
func (r *Reader) forget() {
	for addr, m := range r.memos {
		if m.gen != r.gen {
			delete(r.memos, addr)
		}
	}
}
