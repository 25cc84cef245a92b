package sampler

import (
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
	}
	if a.failed {
		return
	}
	a.threads = a.threads[:0]
	for _, t := range threads {
		a.threads = append(a.threads, asynctask.Thread{Addr: t.Addr, ID: t.ID, Frames: t.Frames})
	}
	tasks, err := a.r.Tasks(a.threads, asynctask.ReadOptions{RunningOnly: !s.opts.AsyncIdle})
	if len(tasks) == 0 {
		if err != nil {
			s.stats.Errors++
		}
		return
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
	if !s.opts.AsyncIdle {
		return
	}
	for j := range tasks {
		t := &tasks[j]
		if t.Running || t.Thread == 0 || len(t.Frames) == 0 {
			continue
		}
		for i := 0; i < n; i++ {
			if th := smp.Threads[i]; th.ID == t.Thread {
				smp.Threads = append(smp.Threads, Thread{
					NativeID: th.NativeID, ID: th.ID, Name: th.Name, HasName: th.HasName,
					Frames: stacks[j],
				})
				break
			}
		}
	}
}
