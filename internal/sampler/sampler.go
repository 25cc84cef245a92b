// Package sampler drives pyprof's sampling loop: it keeps the set of
// processes being profiled (a root and, optionally, its Python
// descendants as they come and go), takes one sample of every process per
// tick at a randomised interval, and hands each process's threads to a
// callback. record and top are built on it.
package sampler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pyprof/pyprof/internal/errs"
	"github.com/pyprof/pyprof/internal/proctree"
	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/procmem"
	"github.com/pyprof/pyprof/pyspy"
)

// Options configure a Sampler.
type Options struct {
	// Rate is the mean number of samples per second.
	Rate float64
	// Mode says when a process is paused while its stacks are read.
	Mode Mode
	// Subprocesses follows the root's Python descendants.
	Subprocesses bool
	// Idle keeps threads that are not running; by default only active
	// threads (running, or holding the GIL) are reported.
	Idle bool
	// GIL keeps only the thread holding the GIL.
	GIL bool
	// Greenlets adds each parked greenlet's stack as an idle stack of
	// its thread (see greenlets.go).
	Greenlets bool
	// GreenletsUnread, if set, is called once per process, from the
	// sampling goroutine, when its greenlets cannot be read: a greenlet
	// release or a Python whose layout pyprof does not know.
	GreenletsUnread func(pid int, err error)
	// Async reports the stacks of threads that run an asyncio task as
	// the task's logical stack, and with AsyncIdle every pending task's
	// too (see async.go).
	Async, AsyncIdle bool
	// Tick, if set, is called after every round from the sampling
	// goroutine, for status lines.
	Tick func(Stats)
	// PauseDenied, if set, is called once, from the sampling goroutine,
	// when Auto finds ptrace denied (see Sampler.denied), with the
	// process it could not pause and the error, which matches
	// procmem.ErrPtraceDenied. From then on Auto samples as Nonblocking
	// does.
	PauseDenied func(pid int, err error)
	// Exited, if set, is called from the sampling goroutine when a
	// process is no longer sampled (it exited, or its pid now names
	// another process), so that whatever the caller keeps for it (caches
	// that hold its Functions) can be freed.
	Exited func(pid int)
}

// Mode chooses between consistency and the target's speed.
type Mode int

const (
	// Auto reads without pausing and keeps the stacks that existed (see
	// pyspy.SampleOptions.Verify), reads again once or twice if one is
	// torn, and only then stops the thread holding the GIL for that
	// sample (every thread if the stacks still move).
	Auto Mode = iota
	// Nonblocking never pauses; a stack that stays torn is dropped and
	// counted as an error.
	Nonblocking
	// Blocking stops the thread holding the GIL (every thread if the
	// stacks still move) for every sample.
	Blocking
)

func (m Mode) String() string {
	return [...]string{"auto", "nonblocking", "blocking"}[m]
}

// Thread is one thread's stack in a sample.
type Thread struct {
	NativeID int
	ID       uint64
	Name     string
	HasName  bool
	Active   bool
	OwnsGIL  bool
	Frames   []pyspy.Frame // innermost first
	// Greenlet labels the stack of a parked greenlet of the thread: its
	// name, or its address.
	Greenlet string
	// Stable says Frames is never written again: a later sample that
	// holds the same slice holds the same stack (a parked greenlet's
	// that has not moved, a pending asyncio task's), so what a consumer
	// derived from it holds too.
	Stable bool
}

// Sample is what one tick read from one process. Its Threads, and their
// Frames, are valid until the next round: emit must copy what it keeps.
type Sample struct {
	Time    time.Time
	Pid     int
	Cmdline string
	Threads []Thread
	// Errors counts threads whose stack could not be read in full;
	// their partial stacks are not in Threads.
	Errors int
}

// Stats summarise a run so far.
type Stats struct {
	Rounds  int64 // ticks taken
	Stacks  int64 // thread stacks reported
	Errors  int64 // stacks that could not be read
	Retries int64 // samples read again because a stack was torn
	Paused  int64 // samples taken with the process paused after retries (Auto)
	// PausedThreads counts the paused samples (Auto and Blocking) for
	// which stopping the GIL holder alone was enough.
	PausedThreads int64
	// Stopped sums, over the pauses of every process sampled, the time
	// from just before the first thread was stopped to just after the
	// last was resumed: an upper bound on how long the target stood
	// still for pyprof.
	Stopped   time.Duration
	Missed    int64         // ticks skipped after stalls
	MaxLag    time.Duration // worst lateness of a tick
	Processes int           // processes being sampled now
	Seen      []int         // every pid sampled at least once
}

// ErrTargetExited is returned by Run when every process has exited.
var ErrTargetExited = errors.New("target exited")

// rescanEvery is how often the process tree is searched for new
// subprocesses: gunicorn replaces workers at any time, and they must be
// sampled within a second.
const rescanEvery = 500 * time.Millisecond

// retryNotPython is how long a descendant that is not (yet) Python is left
// alone before it is tried again: a fork may exec python later.
const retryNotPython = 2 * time.Second

type proc struct {
	t       *target.Process
	states  *procmem.ThreadStater
	cmdline string
	start   uint64
	// holder is the thread last seen holding the GIL (a native id as
	// /proc numbers it), the one to stop when a pause is needed.
	holder int
	// threads is reused for every Sample of the process.
	threads []Thread
	// idle holds the threads last found waiting, by native id.
	idle map[int]idleThread
	// samples counts the samples read, for forgetExited's schedule, and
	// live is its scratch.
	samples int
	live    []int
	// gl follows its greenlets, with Options.Greenlets.
	gl *greenlets
	// async is what Async keeps of the process.
	async *asyncState
}

// Sampler samples a root process and, optionally, its descendants.
type Sampler struct {
	opts     Options
	root     int
	procs    map[int]*proc
	skipped  map[int]time.Time // descendants that were not Python, and when
	lastScan time.Time
	stats    Stats
	seen     map[int]bool
	rng      *rand.Rand
	// paused is set once a pause succeeded: ptrace works, and a pause
	// refused later is only that sample's failure.
	paused bool
	// denied is the error of the run's first pause if ptrace refused it
	// (procmem.ErrPtraceDenied): a seccomp filter or a security policy
	// denies ptrace to pyprof, as in a locked-down pod, while it may
	// still read memory. That is taken as final, for every process: the
	// policy is pyprof's, and each attempt would cost system calls for a
	// sample lost anyway. Blocking's Run returns it; Auto stops pausing.
	denied error
	// deniedPid is the process that could not be paused.
	deniedPid int
}

// New attaches to root. It fails if root cannot be attached, except that
// with Subprocesses a root that is not Python is allowed: a shell or a
// launcher whose children are Python.
func New(root int, opts Options) (*Sampler, error) {
	if opts.Rate <= 0 {
		return nil, fmt.Errorf("rate must be positive, got %v", opts.Rate)
	}
	s := &Sampler{
		opts:    opts,
		root:    root,
		procs:   map[int]*proc{},
		skipped: map[int]time.Time{},
		seen:    map[int]bool{},
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(root))),
	}
	if err := s.attach(root); err != nil {
		if !opts.Subprocesses || !errors.Is(err, target.ErrNotPython) {
			return nil, err
		}
		s.skipped[root] = time.Now()
	}
	if opts.Subprocesses {
		s.rescan(time.Now())
	}
	return s, nil
}

func (s *Sampler) attach(pid int) error {
	t, err := target.Attach(pid, target.Options{})
	if err != nil {
		return err
	}
	p := &proc{t: t, states: t.Proc.ThreadStates(), cmdline: t.CommandLine()}
	if st, err := procmem.DefaultFS.Stat(pid); err == nil {
		p.start = st.StartTime
	}
	s.procs[pid] = p
	return nil
}

// rescan attaches to new Python descendants of the root.
func (s *Sampler) rescan(now time.Time) {
	s.lastScan = now
	kids, err := proctree.Descendants(procmem.DefaultFS, s.root)
	if err != nil {
		return
	}
	for _, k := range kids {
		if p, ok := s.procs[k.Pid]; ok {
			// A pid reused by a new process is a new target.
			if p.start == 0 || p.start == k.StartTime {
				continue
			}
			s.drop(k.Pid)
		}
		if t, ok := s.skipped[k.Pid]; ok && now.Sub(t) < retryNotPython {
			continue
		}
		if err := s.attach(k.Pid); err != nil {
			s.skipped[k.Pid] = now
			continue
		}
		delete(s.skipped, k.Pid)
	}
	s.forgetSkipped(kids)
	if s.root != 0 {
		if _, ok := s.procs[s.root]; !ok {
			if t, ok := s.skipped[s.root]; ok && now.Sub(t) >= retryNotPython {
				if err := s.attach(s.root); err != nil {
					s.skipped[s.root] = now
				} else {
					delete(s.skipped, s.root)
				}
			}
		}
	}
}

// forgetSkipped forgets the descendants that were not Python and have
// exited since: a shell that runs short commands would otherwise leave
// one entry per command.
func (s *Sampler) forgetSkipped(kids []proctree.Proc) {
	if len(s.skipped) == 0 {
		return
	}
	alive := make(map[int]bool, len(kids))
	for _, k := range kids {
		alive[k.Pid] = true
	}
	for pid := range s.skipped {
		if pid != s.root && !alive[pid] {
			delete(s.skipped, pid)
		}
	}
}

func (s *Sampler) drop(pid int) {
	if p, ok := s.procs[pid]; ok {
		if p.gl != nil {
			p.gl.close()
		}
		p.async.close()
		// This closes its threads' run-state files too.
		p.t.Close()
		delete(s.procs, pid)
		if s.opts.Exited != nil {
			s.opts.Exited(pid)
		}
	}
}

// Close detaches from every process.
func (s *Sampler) Close() {
	for pid := range s.procs {
		s.drop(pid)
	}
}

// Stats returns the counters so far.
func (s *Sampler) Stats() Stats {
	st := s.stats
	st.Processes = len(s.procs)
	for pid := range s.seen {
		st.Seen = append(st.Seen, pid)
	}
	sort.Ints(st.Seen)
	return st
}

// Processes describes the processes being sampled, for status lines.
func (s *Sampler) Processes() []string {
	var out []string
	pids := make([]int, 0, len(s.procs))
	for pid := range s.procs {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		out = append(out, fmt.Sprintf("%d: %s", pid, s.procs[pid].cmdline))
	}
	return out
}

// Current returns the command line of each process being sampled, by pid.
// Call it from the sampling goroutine (a Tick) while Run is running.
func (s *Sampler) Current() map[int]string {
	out := make(map[int]string, len(s.procs))
	for pid, p := range s.procs {
		out[pid] = p.cmdline
	}
	return out
}

// Version returns the Python version of the root, or of any process.
func (s *Sampler) Version() string {
	if p, ok := s.procs[s.root]; ok {
		return p.t.Version.String()
	}
	for _, p := range s.procs {
		return p.t.Version.String()
	}
	return ""
}

// interval draws the time to the next tick uniformly from half to one and
// a half periods: the mean rate is kept, but a workload whose period
// divides the sampling period cannot alias with it.
func (s *Sampler) interval() time.Duration {
	period := float64(time.Second) / s.opts.Rate
	return time.Duration(period * (0.5 + s.rng.Float64()))
}

// Run samples until ctx is done or every process has exited, calling emit
// with each process's sample. It returns nil when ctx ends it and
// ErrTargetExited when the targets are gone. In Blocking mode, it returns
// at once an error matching procmem.ErrPtraceDenied if ptrace refuses the
// run's first pause.
func (s *Sampler) Run(ctx context.Context, emit func(Sample)) error {
	period := time.Duration(float64(time.Second) / s.opts.Rate)
	next := time.Now()
	for {
		next = next.Add(s.interval())
		now := time.Now()
		if late := now.Sub(next); late > 0 {
			s.stats.MaxLag = max(s.stats.MaxLag, late)
			// After a stall (a suspended laptop, an overloaded host)
			// do not burst to catch up: count what was missed and
			// carry on from now.
			if late > period {
				s.stats.Missed += int64(late / period)
				next = now
			}
		}
		if !sleepUntil(ctx, next) {
			return nil
		}
		now = time.Now()
		if s.opts.Subprocesses && now.Sub(s.lastScan) >= rescanEvery {
			s.rescan(now)
		}
		s.stats.Rounds++
		s.round(now, emit)
		if s.denied != nil && s.opts.Mode == Blocking {
			return fmt.Errorf("pause process %d: %w", s.deniedPid, s.denied)
		}
		if s.opts.Tick != nil {
			s.opts.Tick(s.Stats())
		}
		if len(s.procs) == 0 && (!s.opts.Subprocesses || s.rootGone()) {
			return ErrTargetExited
		}
	}
}

func (s *Sampler) rootGone() bool { return !s.alive(s.root) }

// alive reports whether pid still runs. A zombie does not: it has exited,
// though its parent has not reaped it yet (a shell or a supervisor busy
// elsewhere), and kill(pid, 0) still finds it.
func (s *Sampler) alive(pid int) bool {
	st, err := procmem.DefaultFS.Stat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// Round samples every process once, now, as Run does on its schedule.
func (s *Sampler) Round(emit func(Sample)) { s.round(time.Now(), emit) }

// round samples every process once.
func (s *Sampler) round(now time.Time, emit func(Sample)) {
	pids := make([]int, 0, len(s.procs))
	for pid := range s.procs {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		p := s.procs[pid]
		smp, err := s.sampleProcess(p)
		if err != nil {
			if isGone(err) || !s.alive(pid) {
				s.drop(pid)
				continue
			}
			s.stats.Errors++
			continue
		}
		smp.Time, smp.Pid, smp.Cmdline = now, pid, p.cmdline
		s.seen[pid] = true
		s.stats.Errors += int64(smp.Errors)
		s.stats.Stacks += int64(len(smp.Threads))
		emit(smp)
	}
}

func (s *Sampler) sampleProcess(p *proc) (Sample, error) {
	var smp Sample
	var threads []pyspy.Thread
	var err error
	// states holds run states read before a pause: a thread read after
	// being resumed may show as running while it only wakes up to go back
	// to waiting.
	var states map[int]byte
	mode := s.opts.Mode
	if mode == Auto && s.denied != nil {
		mode = Nonblocking
	}
	if mode == Blocking {
		threads, states, err = s.pausedSample(p, p.holder)
	} else {
		// A running target can change between the reads of one sample;
		// the reader keeps only stacks that existed, and sampling again
		// at once usually succeeds.
		opts := pyspy.SampleOptions{Verify: true, Reuse: true, Plausible: mode == Nonblocking}
		threads, err = p.t.Sample(opts)
		retries := maxRetries
		if mode == Nonblocking {
			retries = maxRetriesNonblocking
		}
		for retry := 0; retry < retries && hasThreadErrors(err); retry++ {
			s.stats.Retries++
			threads, err = p.t.Sample(opts)
		}
		if mode == Auto && hasThreadErrors(err) {
			pthreads, pstates, perr := s.pausedSample(p, gilHolder(threads, p.holder))
			if s.denied == nil {
				s.stats.Paused++
				threads, states, err = pthreads, pstates, perr
			} else if s.opts.PauseDenied != nil {
				// The torn stacks of this sample are dropped.
				s.opts.PauseDenied(s.deniedPid, s.denied)
			}
		}
	}
	if threads == nil && err != nil {
		return smp, err
	}
	p.holder = gilHolder(threads, p.holder)
	if p.samples++; p.samples%forgetEvery == 0 {
		p.forgetExited(threads)
	}
	smp.Threads = p.threads[:0]
	defer func() { p.threads = smp.Threads }()
	failed := map[uint64]bool{}
	for _, e := range unwrapAll(err) {
		if te, ok := errs.As[*pyspy.ThreadError](e); ok {
			failed[te.Thread] = true
			smp.Errors++
		}
	}
	for _, t := range threads {
		if failed[t.Addr] {
			continue
		}
		if t.NativeID == 0 && p.samples <= unknownIDsGrace && !p.t.Reader.KnowsOSThreads() {
			// Before 3.11 the OS thread ids come from where the C
			// library keeps them, which the reader learns from the
			// process's threads as they come (target.Process.calibrate).
			// The first samples of a process that starts and ends
			// threads quickly can come before that: they are left out
			// rather than recorded as a thread 0 that does not exist.
			continue
		}
		active := t.OwnsGIL
		if !active && t.NativeID != 0 {
			active = p.running(t, states)
		}
		if s.opts.GIL && !t.OwnsGIL || !s.opts.Idle && !active {
			continue
		}
		if len(t.Frames) == 0 && !s.opts.Idle {
			// No Python frame to charge the time to: the thread starts
			// or ends, or its frame pointer was read while a nested
			// evaluation set up its own (the reader cannot tell).
			continue
		}
		smp.Threads = append(smp.Threads, Thread{
			NativeID: t.NativeID, ID: t.ID, Name: t.Name, HasName: t.HasName,
			Active: active, OwnsGIL: t.OwnsGIL, Frames: t.Frames,
		})
	}
	if s.opts.Async {
		s.asyncStacks(p, threads, &smp)
	}
	if s.opts.Greenlets && !s.opts.GIL {
		if p.gl == nil {
			p.gl = newGreenlets(p.t)
		}
		smp.Threads = p.gl.sample(p, threads, smp.Threads)
		if err := p.gl.unread(); err != nil && s.opts.GreenletsUnread != nil {
			s.opts.GreenletsUnread(p.t.Pid, err)
		}
	}
	return smp, nil
}

// unknownIDsGrace is how many of a process's first samples leave out the
// threads whose OS thread id is not known yet; after it, a reader that
// never learns them records them with id 0 rather than nothing.
const unknownIDsGrace = 100

// recheckIdle is how many samples a thread found waiting keeps that state
// unread while its Python stack stays as it was.
const recheckIdle = 10

// idleThread is what the sampler remembers of a thread found waiting.
type idleThread struct {
	sig     stackSig
	checked int // samples since its run state was read
}

// stackSig identifies where a thread's Python stack stood.
type stackSig struct {
	depth int
	frame uint64
	code  uint64
	line  int
}

func sigOf(t *pyspy.Thread) stackSig {
	sig := stackSig{depth: len(t.Frames)}
	if len(t.Frames) > 0 {
		f := t.Frames[0]
		sig.frame, sig.line = f.Addr, f.Line
		if f.Function != nil {
			sig.code = f.Code
		}
	}
	return sig
}

// running reports whether a thread that does not hold the GIL is running,
// from its run state in /proc: states read before a pause if given, else
// now. Reading it costs a syscall per thread per sample, which dominates a
// sample of a process with many parked threads; but a thread that waits
// and whose Python stack has not moved (it would have needed the GIL to
// move it) almost always waits still, so its state is read again only
// every recheckIdle samples.
func (p *proc) running(t pyspy.Thread, states map[int]byte) bool {
	if st, ok := states[t.NativeID]; ok {
		return st == 'R'
	}
	sig := sigOf(&t)
	if it, ok := p.idle[t.NativeID]; ok && it.sig == sig && it.checked < recheckIdle {
		it.checked++
		p.idle[t.NativeID] = it
		return false
	}
	st, err := p.states.State(t.NativeID)
	if err != nil {
		return false
	}
	if st == 'R' {
		delete(p.idle, t.NativeID)
		return true
	}
	if p.idle == nil {
		p.idle = map[int]idleThread{}
	}
	if len(p.idle) > maxIdleThreads {
		clear(p.idle)
	}
	p.idle[t.NativeID] = idleThread{sig: sig}
	return false
}

// maxIdleThreads bounds the waiting threads remembered per process.
const maxIdleThreads = 1 << 14

// forgetEvery is how many samples of a process pass between two sweeps of
// what is kept per thread. A thread that ends is not asked about again, so
// only a sweep closes its /proc stat file: a process that starts a thread
// every few milliseconds leaves this many samples' worth open at most. A
// sweep costs about what reading a sample's thread list does.
const forgetEvery = 32

// forgetExited closes the run-state files, and forgets the waiting state,
// of the threads not in threads, the process's Python threads now.
func (p *proc) forgetExited(threads []pyspy.Thread) {
	live := p.live[:0]
	for i := range threads {
		if id := threads[i].NativeID; id != 0 {
			live = append(live, id)
		}
	}
	p.live = live
	p.states.Prune(live)
	if len(p.idle) > 0 {
		slices.Sort(live)
		for tid := range p.idle {
			if _, ok := slices.BinarySearch(live, tid); !ok {
				delete(p.idle, tid)
			}
		}
	}
}

// maxRetries bounds the immediate re-reads of a torn sample, in a mode
// that pauses the target when they fail; one that never pauses has only
// re-reads to get a sample, each a few tens of microseconds, and tries
// more of them.
const (
	maxRetries            = 2
	maxRetriesNonblocking = 5
)

// hasThreadErrors reports whether err holds a *pyspy.ThreadError: a
// thread whose stack could not be read, which a second read may fix. It
// runs on every sample, so it allocates nothing (see errs.As).
func hasThreadErrors(err error) bool {
	_, ok := errs.As[*pyspy.ThreadError](err)
	return ok
}

// gilHolder returns the native id of the thread holding the GIL in
// threads, or last if none does.
func gilHolder(threads []pyspy.Thread, last int) int {
	for _, t := range threads {
		if t.OwnsGIL && t.NativeID != 0 {
			return t.NativeID
		}
	}
	return last
}

// pausedSample reads the stacks with the thread that can change them
// stopped. Only the thread holding the GIL runs Python code, so stopping
// it alone freezes every Python stack, at a fraction of the cost of
// stopping a process of many threads. holder is that thread as last seen
// (0 if unknown). The stacks are verified all the same, since the GIL may
// have passed to another thread just before the stop; if they still move,
// every thread is stopped instead, and whether each was running is read
// while they are stopped (see procmem.StoppedInSyscall). A refusal of the
// run's first pause may be a denial of ptrace (see Sampler.denied).
func (s *Sampler) pausedSample(p *proc, holder int) ([]pyspy.Thread, map[int]byte, error) {
	// Our own thread pauses and resumes: the shared tracer thread would
	// cost two thread switches each way, with the target stopped.
	defer procmem.LockTracer()()
	start := time.Now()
	threads, states, err := s.pauseAndSample(p, holder)
	if !s.paused && errors.Is(err, procmem.ErrPtraceDenied) {
		// Nothing was stopped.
		if s.denied == nil {
			s.denied, s.deniedPid = err, p.t.Pid
		}
		return threads, states, err
	}
	s.stats.Stopped += time.Since(start)
	return threads, states, err
}

// pauseAndSample is pausedSample's work, without its bookkeeping.
func (s *Sampler) pauseAndSample(p *proc, holder int) ([]pyspy.Thread, map[int]byte, error) {
	if holder != 0 {
		// The stopped thread's run state, read after the resume, would
		// be that of a thread the stop woke up: it is read just before.
		var states map[int]byte
		if st, err := p.states.State(holder); err == nil {
			states = map[int]byte{holder: st}
		}
		pp, err := p.t.Proc.PauseThreads([]int{holder})
		if errors.Is(err, procmem.ErrPtraceDenied) {
			return nil, nil, err
		}
		if err == nil {
			s.paused = true
			threads, err := p.t.Sample(pyspy.SampleOptions{Verify: true})
			if rerr := pp.Resume(); rerr != nil && err == nil {
				err = rerr
			}
			if !hasThreadErrors(err) {
				s.stats.PausedThreads++
				return threads, states, err
			}
		}
	}
	pp, err := p.t.Proc.Pause()
	if err != nil {
		return nil, nil, err
	}
	s.paused = true
	// Whether each thread was running when it stopped: its run state now
	// reads 't', and read before the pause or after the resume it may be
	// that of a thread the previous pause woke up.
	states := map[int]byte{}
	for _, tid := range pp.Threads() {
		if waiting, err := p.t.Proc.StoppedInSyscall(tid); err == nil {
			states[tid] = 'S'
			if !waiting {
				states[tid] = 'R'
			}
		}
	}
	threads, err := p.t.Sample(pyspy.SampleOptions{})
	if rerr := pp.Resume(); rerr != nil && err == nil {
		err = rerr
	}
	return threads, states, err
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func isGone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, ErrTargetExited)
}

// Describe says what is being sampled, for start lines and titles.
func (s *Sampler) Describe() string {
	var b strings.Builder
	if p, ok := s.procs[s.root]; ok {
		fmt.Fprintf(&b, "process %d (%s)", s.root, p.cmdline)
	} else {
		fmt.Fprintf(&b, "process %d", s.root)
	}
	if s.opts.Subprocesses {
		n := len(s.procs)
		if _, ok := s.procs[s.root]; ok {
			n--
		}
		fmt.Fprintf(&b, " and its subprocesses (%d now)", n)
	}
	return b.String()
}
