package asynctask

import (
	"errors"
	"fmt"
	"slices"
)

// edges fills in what each task awaits. A task that waits has the future
// it waits on in fut_waiter: another task; a gather's future, whose
// _children are the tasks; or a future that the awaited tasks complete
// through a done-callback. So each task's done-callbacks are read too: the
// wakeup of the task that awaits it (a builtin method, or 3.7–3.9's
// TaskWakeupMethWrapper, or the pure-Python Task's bound __wakeup), a
// TaskGroup's _on_task_done (bound to the group, whose _parent_task
// waits), and the closures and partials of gather, wait, wait_for and
// shield, which hold the future their parent waits on.
func (r *Reader) edges(tasks []Task, index map[uint64]int) error {
	var errs []error
	waiters := map[uint64][]int{}
	ws := make([]uint64, len(tasks))
	for i := range tasks {
		if _, w, err := r.coro(tasks[i].Addr); err == nil && w != 0 {
			ws[i] = w
		}
	}
	for i, w := range ws {
		if w == 0 {
			continue
		}
		t := &tasks[i]
		waiters[w] = append(waiters[w], i)
		if _, ok := index[w]; ok {
			t.Awaiting = appendNew(t.Awaiting, w)
			continue
		}
		// Only a future of a Python class can be a gather's: a plain
		// future (what most tasks wait on) has no children to look up.
		if typ, err := r.dec.TypeOf(w); err == nil && (typ != r.cFuture || r.cFuture == 0) {
			r.gathered(t, w, index, 0)
		}
	}
	for c := range tasks {
		child := tasks[c].Addr
		cbs, err := r.callbacks(child)
		if err != nil {
			errs = append(errs, fmt.Errorf("callbacks of task %#x: %w", child, err))
		}
		for _, cb := range cbs {
			for _, p := range r.callbackParents(cb, waiters, index) {
				tasks[p].Awaiting = appendNew(tasks[p].Awaiting, child)
			}
		}
	}
	return errors.Join(errs...)
}

func appendNew(s []uint64, v uint64) []uint64 {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// gathered adds the tasks among the _children of a gather's future fut
// (and of gathers among them) to what t awaits.
func (r *Reader) gathered(t *Task, fut uint64, index map[uint64]int, depth int) {
	if depth >= maxNesting {
		return
	}
	kids, err := r.dec.Attribute(fut, "_children")
	if err != nil || kids == 0 {
		return
	}
	if tn, _, err := r.dec.BuiltinType(kids); err != nil || tn != "list" {
		return
	}
	items, _, err := r.dec.SeqItems(kids, true, maxChildren)
	if err != nil {
		return
	}
	for _, k := range items {
		if _, ok := index[k]; ok {
			t.Awaiting = appendNew(t.Awaiting, k)
		} else if k != 0 && k != fut {
			r.gathered(t, k, index, depth+1)
		}
	}
}

// callbacks returns the done-callbacks of the future (or task) at fut.
func (r *Reader) callbacks(fut uint64) ([]uint64, error) {
	var out []uint64
	var list uint64
	if r.kindOf(fut) == kindPyTask {
		l, err := r.dec.Attribute(fut, "_callbacks")
		if err != nil {
			return nil, err
		}
		list = l
	} else {
		f, err := r.dec.Read(fut, uint64(r.a.futCallbacks+8), "future")
		if err != nil {
			return nil, err
		}
		cb0, l := f.Ptr(r.a.futCallback0), f.Ptr(r.a.futCallbacks)
		if f.Err() != nil {
			return nil, f.Err()
		}
		if cb0 != 0 {
			out = append(out, cb0)
		}
		list = l
	}
	if list == 0 {
		return out, nil
	}
	if tn, _, err := r.dec.BuiltinType(list); err != nil || tn != "list" {
		return out, err
	}
	items, _, err := r.dec.SeqItems(list, true, maxCallbacks)
	if err != nil {
		return out, err
	}
	for _, it := range items {
		// (callback, context) pairs.
		pair, _, err := r.dec.SeqItems(it, false, 1)
		if err == nil && len(pair) == 1 {
			out = append(out, pair[0])
		}
	}
	return out, nil
}

// callbackParents returns the indexes of the tasks that the done-callback
// cb of a task shows to await it.
func (r *Reader) callbackParents(cb uint64, waiters map[uint64][]int, index map[uint64]int) []int {
	typ, err := r.dec.TypeOf(cb)
	if err != nil {
		return nil
	}
	name, _, err := r.dec.TypeName(typ)
	if err != nil {
		return nil
	}
	task := func(p uint64) []int {
		if i, ok := index[p]; ok {
			return []int{i}
		}
		return nil
	}
	switch name {
	case "builtin_function_or_method":
		// 3.10+: the task's wakeup is a method of the C task.
		self, err := r.dec.Pointer(cb + cmethodSelf)
		if err != nil {
			return nil
		}
		return task(self)
	case "TaskWakeupMethWrapper":
		self, err := r.dec.Pointer(cb + wakeupTask)
		if err != nil {
			return nil
		}
		return task(self)
	case "method":
		self, err := r.dec.Pointer(cb + methodSelf)
		if err != nil {
			return nil
		}
		if p := task(self); p != nil {
			return p
		}
		if p := waiters[self]; p != nil {
			return p
		}
		// A TaskGroup's _on_task_done.
		if parent, err := r.dec.Attribute(self, "_parent_task"); err == nil {
			return task(parent)
		}
	case "function":
		closure, err := r.dec.Pointer(cb + uint64(r.a.funcClosure))
		if err != nil || closure == 0 {
			return nil
		}
		if tn, _, err := r.dec.BuiltinType(closure); err != nil || tn != "tuple" {
			return nil
		}
		cells, _, err := r.dec.SeqItems(closure, false, maxCells)
		if err != nil {
			return nil
		}
		var out []int
		for _, c := range cells {
			v, err := r.dec.Pointer(c + uint64(r.l.Cell.Ref))
			if err == nil && v != 0 {
				out = append(out, waiters[v]...)
			}
		}
		return out
	case "functools.partial":
		args, err := r.dec.Pointer(cb + partialArgs)
		if err != nil || args == 0 {
			return nil
		}
		items, _, err := r.dec.SeqItems(args, false, maxCells)
		if err != nil {
			return nil
		}
		var out []int
		for _, v := range items {
			out = append(out, waiters[v]...)
		}
		return out
	}
	return nil
}

// runningChains finds the running tasks cur and the tasks that await
// them, transitively, from each task's done-callbacks up: the wakeup of
// the task that awaits it, or a TaskGroup's _on_task_done. It says false
// when a callback can only be placed among every task's futures (the
// closures of gather, wait and shield, wait_for's partial), which takes a
// read of every task. Awaiting then lists only the edges of these chains.
func (r *Reader) runningChains(cur []uint64) ([]Task, bool) {
	var tasks []Task
	index := map[uint64]int{}
	add := func(addr uint64) (int, bool) {
		if i, ok := index[addr]; ok {
			return i, true
		}
		k := r.kindOf(addr)
		if k != kindCTask && k != kindPyTask {
			return 0, false
		}
		t, pending, err := r.task(addr, k)
		if err != nil || !pending {
			return 0, false
		}
		index[addr] = len(tasks)
		tasks = append(tasks, t)
		return len(tasks) - 1, true
	}
	for _, addr := range cur {
		add(addr)
	}
	for i := 0; i < len(tasks); i++ {
		if len(tasks) > maxAncestors {
			return nil, false
		}
		cbs, err := r.callbacks(tasks[i].Addr)
		if err != nil {
			return nil, false
		}
		for _, cb := range cbs {
			parent, direct := r.directParent(cb)
			if !direct {
				return nil, false
			}
			if parent == 0 {
				continue
			}
			if j, ok := add(parent); ok && j != i {
				tasks[j].Awaiting = appendNew(tasks[j].Awaiting, tasks[i].Addr)
			}
		}
	}
	return tasks, true
}

// directParent returns the task that the done-callback cb shows to await
// the task it is on (0 for a callback that shows none), and false for a
// callback that can only be placed among the futures of every task.
func (r *Reader) directParent(cb uint64) (uint64, bool) {
	typ, err := r.dec.TypeOf(cb)
	if err != nil {
		return 0, false
	}
	name, _, err := r.dec.TypeName(typ)
	if err != nil {
		return 0, false
	}
	isTask := func(p uint64) bool {
		k := r.kindOf(p)
		return k == kindCTask || k == kindPyTask
	}
	switch name {
	case "builtin_function_or_method", "TaskWakeupMethWrapper":
		off := uint64(cmethodSelf)
		if name == "TaskWakeupMethWrapper" {
			off = wakeupTask
		}
		self, err := r.dec.Pointer(cb + off)
		if err != nil {
			return 0, false
		}
		if isTask(self) {
			return self, true
		}
		return 0, true
	case "method":
		self, err := r.dec.Pointer(cb + methodSelf)
		if err != nil {
			return 0, false
		}
		if isTask(self) {
			return self, true
		}
		if parent, err := r.dec.Attribute(self, "_parent_task"); err == nil && parent != 0 && isTask(parent) {
			return parent, true
		}
		return 0, false
	case "function":
		// A function without a closure (run_until_complete's) holds no
		// future.
		closure, err := r.dec.Pointer(cb + uint64(r.a.funcClosure))
		return 0, err == nil && closure == 0
	case "functools.partial":
		return 0, false
	}
	return 0, true
}
