package sampler

import (
	"sync"
	"time"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/asynctask"
)

// asyncState is what Async keeps of one process: its task reader, made
// on first use, and the Functions of its "task" frames.
type asyncState struct {
	r       *asynctask.Reader
	failed  bool
	stacker asynctask.Stacker
	threads []asynctask.Thread
	// pending reads the pending tasks off the sampling goroutine
	// (AsyncIdle only).
	pending *pendingTasks
}

// close stops what the process's async state runs, before its memory is
// closed.
func (a *asyncState) close() {
	if a != nil && a.pending != nil {
		a.pending.close()
	}
}

// asyncStacks replaces, in smp, the stack of each thread that runs an
// asyncio task with the task's logical stack (its frames, under a "task
// NAME" frame, under the chains of the tasks that await it, without the
// event loop's frames), and with AsyncIdle adds the logical stack of every
// pending task as a waiting stack of the thread that runs its loop.
// threads are the process's stacks as read. A process whose tasks cannot
// be read keeps its threads' stacks as they are.
func (s *Sampler) asyncStacks(p *proc, threads []pyspy.Thread, smp *Sample) {
	a := p.async
	if a == nil {
		a = &asyncState{}
		p.async = a
		r, _ := p.t.TaskReader()
		a.r, a.failed = r, r == nil
		if !a.failed && s.opts.AsyncIdle {
			a.pending = newPendingTasks(p.t)
		}
	}
	if a.failed {
		return
	}
	a.threads = a.threads[:0]
	for _, t := range threads {
		a.threads = append(a.threads, asynctask.Thread{Addr: t.Addr, ID: t.ID, Frames: t.Frames})
	}
	// Only the running tasks' chains are read here, every sample: the
	// pending tasks, which may be thousands, come from the last read of
	// pendingTasks.
	tasks, err := a.r.Tasks(a.threads, asynctask.ReadOptions{RunningOnly: true})
	if len(tasks) == 0 && err != nil {
		s.stats.Errors++
	}
	stacks := a.stacker.Stacks(tasks)
	n := len(smp.Threads)
	for i := 0; i < n; i++ {
		th := &smp.Threads[i]
		for j := range tasks {
			if tasks[j].Running && tasks[j].Thread == th.ID && len(tasks[j].Frames) > 0 {
				th.Frames = stacks[j]
				break
			}
		}
	}
	if a.pending == nil {
		return
	}
	for _, w := range a.pending.stacks(a.threads, &a.stacker) {
		if w.thread == 0 || isRunning(tasks, w.addr) {
			continue
		}
		for i := 0; i < n; i++ {
			if th := smp.Threads[i]; th.ID == w.thread {
				smp.Threads = append(smp.Threads, Thread{
					NativeID: th.NativeID, ID: th.ID, Name: th.Name, HasName: th.HasName,
					Frames: w.frames, Stable: true,
				})
				break
			}
		}
	}
}

// isRunning says whether the task at addr is among the running ones of
// tasks: a task that ran since the last read of the pending ones is
// sampled as running only.
func isRunning(tasks []asynctask.Task, addr uint64) bool {
	for i := range tasks {
		if tasks[i].Addr == addr && tasks[i].Running {
			return true
		}
	}
	return false
}

// rereadPending is how often the pending tasks of a process are read
// anew. A pending task's stack changes only when it steps, so a sample
// takes the stacks of a read at most this old (or ten times as long as a
// read takes, for a process with so many tasks that reading them all is
// slow): a task that started since is sampled from the next read on, and
// one that ended is sampled until then.
const rereadPending = 100 * time.Millisecond

// pendingTasks reads every pending task of a process on a goroutine of
// its own, with a reader of its own, so that a sample of a loop with
// thousands of tasks costs the sampling goroutine only their stacks,
// built once per read.
type pendingTasks struct {
	mu      sync.Mutex
	threads []asynctask.Thread // the sampler's latest, without frames
	tasks   []asynctask.Task
	reads   int

	// The sampling goroutine's: the stacks built from read built.
	built int
	idle  []pendingStack

	stop, done chan struct{}
}

// pendingStack is one pending task's logical stack, and the thread that
// runs its loop.
type pendingStack struct {
	addr, thread uint64
	frames       []pyspy.Frame
}

func newPendingTasks(t *target.Process) *pendingTasks {
	p := &pendingTasks{stop: make(chan struct{}), done: make(chan struct{})}
	r, _ := t.TaskReader()
	if r == nil {
		close(p.done)
		return p
	}
	go p.read(r)
	return p
}

// read reads the pending tasks until close, every rereadPending.
func (p *pendingTasks) read(r *asynctask.Reader) {
	defer close(p.done)
	var threads []asynctask.Thread
	for {
		wait := rereadPending
		p.mu.Lock()
		threads = append(threads[:0], p.threads...)
		p.mu.Unlock()
		if len(threads) > 0 {
			start := time.Now()
			tasks, err := r.Tasks(threads, asynctask.ReadOptions{})
			wait = max(wait, 10*time.Since(start))
			if err == nil || len(tasks) > 0 {
				p.mu.Lock()
				p.tasks = tasks
				p.reads++
				p.mu.Unlock()
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// stacks hands the reader the sampler's threads and returns the pending
// tasks' stacks of its last read, built with st.
func (p *pendingTasks) stacks(threads []asynctask.Thread, st *asynctask.Stacker) []pendingStack {
	p.mu.Lock()
	p.threads = p.threads[:0]
	for _, t := range threads {
		// The frames are the sampler's, reused by the next sample.
		p.threads = append(p.threads, asynctask.Thread{Addr: t.Addr, ID: t.ID})
	}
	tasks, reads := p.tasks, p.reads
	p.mu.Unlock()
	if reads == p.built {
		return p.idle
	}
	p.built = reads
	p.idle = p.idle[:0]
	stacks := st.Stacks(tasks)
	for i := range tasks {
		if t := &tasks[i]; !t.Running && len(t.Frames) > 0 {
			p.idle = append(p.idle, pendingStack{addr: t.Addr, thread: t.Thread, frames: stacks[i]})
		}
	}
	return p.idle
}

func (p *pendingTasks) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
