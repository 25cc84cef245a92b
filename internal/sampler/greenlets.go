package sampler

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/greenlet"
)

// rescanGreenlets is how often a process's greenlets are looked for
// anew: the walk of its GC lists is O(heap), so it runs on a goroutine of
// its own, and a greenlet spawned meanwhile is sampled from the next walk
// on.
const rescanGreenlets = 2 * time.Second

// redecodeGreenlets is how often the greenlets found are decoded again,
// on the same goroutine: a worker's thousand greenlets take about a
// millisecond, which at every sample would be a tenth of a core and, on a
// loaded host, rounds missed. A greenlet's parked stack is at most this
// old; one that runs now is left out at once (see sample).
const redecodeGreenlets = 50 * time.Millisecond

// greenlets follows the greenlets of one process (Options.Greenlets): a
// goroutine walks the GC lists every rescanGreenlets and decodes the
// greenlets found every redecodeGreenlets, with a reader of its own; each
// sample takes the last decode's parked greenlets, less those that run
// now.
type greenlets struct {
	// cur reads, on the sampling goroutine, which greenlet each thread
	// runs now.
	cur *greenlet.Reader

	mu sync.Mutex
	// gs is the last decode, gen counts the decodes and walks the
	// walks of the GC lists.
	gs         []greenlet.Greenlet
	gen, walks int
	// failed is why the walks ended for good, once; said is set once
	// unread has returned it.
	failed error
	said   bool

	// What sample derived from a decode: the owners of gs, for the
	// threads at tids, whose stacks are read from the maps again when
	// the threads change or after a walk; the ThreadStates of gs and
	// what each runs now.
	gen1       int
	owners     []int
	stacks     []greenlet.Stack
	stacksWalk int
	tids       []int
	states     []uint64
	running    []uint64

	stop, done chan struct{}
	// labels name greenlets without a name by address, made once.
	labels map[uint64]string
}

// hexLabel is addr as "0x7f...", made once per greenlet.
func (g *greenlets) hexLabel(addr uint64) string {
	if l, ok := g.labels[addr]; ok {
		return l
	}
	if g.labels == nil || len(g.labels) >= 1<<16 {
		g.labels = map[uint64]string{}
	}
	l := fmt.Sprintf("%#x", addr)
	g.labels[addr] = l
	return l
}

func newGreenlets(t *target.Process) *greenlets {
	g := &greenlets{
		cur:  greenlet.New(t.Proc, t.Config.Facts, t.Reader.Interpreter()),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go g.run(greenlet.New(t.Proc, t.Config.Facts, t.Reader.Interpreter()))
	return g
}

// run walks the process's GC lists until close, every rescanGreenlets,
// or less often for a heap that takes long to walk (the walks take at
// most a tenth of a core), and decodes what the last walk found every
// redecodeGreenlets, or ten times as long as a decode takes. A release
// of greenlet, or a Python, whose layout is unknown ends it: no greenlet
// of it is ever read, and unread says why.
func (g *greenlets) run(r *greenlet.Reader) {
	defer close(g.done)
	var objs []uint64
	var next time.Time // of the next walk
	for {
		if start := time.Now(); !start.Before(next) {
			sc, err := r.Scan()
			next = time.Now().Add(max(rescanGreenlets, 10*time.Since(start)))
			if err == nil || len(sc.Objects) > 0 {
				objs = sc.Objects
				g.mu.Lock()
				g.walks++
				g.mu.Unlock()
			}
			if errors.Is(err, greenlet.ErrUnknownRelease) || errors.Is(err, greenlet.ErrNoGC) {
				g.mu.Lock()
				g.failed = err
				g.mu.Unlock()
				return
			}
		}
		start := time.Now()
		if len(objs) > 0 {
			// Decode reuses its result: what sample holds is a copy.
			gs := slices.Clone(r.Decode(objs, false))
			g.mu.Lock()
			g.gs, g.gen = gs, g.gen+1
			g.mu.Unlock()
		}
		t := time.NewTimer(max(redecodeGreenlets, 10*time.Since(start)))
		select {
		case <-g.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// unread returns, once, why the process's greenlets cannot be read.
func (g *greenlets) unread() error {
	if g.said {
		return nil
	}
	g.mu.Lock()
	err := g.failed
	g.mu.Unlock()
	if err != nil {
		g.said = true
	}
	return err
}

// close stops the walks, before the process's memory is closed.
func (g *greenlets) close() {
	close(g.stop)
	<-g.done
}

// sample appends to out each parked greenlet's stack, as the last decode
// read it, as an idle stack of its thread, labelled with the greenlet;
// a greenlet its thread runs now is left out, for the thread's own stack
// is its stack.
func (g *greenlets) sample(p *proc, threads []pyspy.Thread, out []Thread) []Thread {
	g.mu.Lock()
	gs, gen, walks := g.gs, g.gen, g.walks
	g.mu.Unlock()
	if len(gs) == 0 {
		return out
	}
	if gen != g.gen1 || !sameThreads(g.tids, threads) {
		g.derive(p, gs, gen, walks, threads)
	}
	if len(g.states) > 0 {
		g.running = g.cur.Current(g.states, g.running)
	}
	for i := range gs {
		gl := &gs[i]
		o := g.owners[i]
		if gl.Err != nil || !gl.Parked() || o < 0 || o >= len(threads) || len(gl.Frames) == 0 || g.runs(gl) {
			continue
		}
		t := &threads[o]
		label := gl.Name
		if !gl.HasName {
			label = g.hexLabel(gl.Addr)
		}
		out = append(out, Thread{
			NativeID: t.NativeID, ID: t.ID, Name: t.Name, HasName: t.HasName,
			Frames: gl.Frames, Greenlet: label, Stable: true,
		})
	}
	return out
}

// derive ties the greenlets of a decode to the threads of this sample,
// reading the threads' stacks again when the threads changed or after a
// walk of the GC lists, and lists their ThreadStates.
func (g *greenlets) derive(p *proc, gs []greenlet.Greenlet, gen, walks int, threads []pyspy.Thread) {
	if !sameThreads(g.tids, threads) || g.stacksWalk != walks {
		g.stacks, g.stacksWalk = p.t.ThreadStacks(threads), walks
		g.tids = g.tids[:0]
		for _, t := range threads {
			g.tids = append(g.tids, t.NativeID)
		}
	}
	g.owners = greenlet.Owners(gs, g.stacks)
	g.gen1 = gen
	g.states = g.states[:0]
	for _, gl := range gs {
		if gl.ThreadState != 0 && !slices.Contains(g.states, gl.ThreadState) {
			g.states = append(g.states, gl.ThreadState)
		}
	}
}

// runs tells whether gl's thread runs it now.
func (g *greenlets) runs(gl *greenlet.Greenlet) bool {
	for i, ts := range g.states {
		if ts == gl.ThreadState {
			return i < len(g.running) && g.running[i] == gl.Addr
		}
	}
	return false
}

func sameThreads(tids []int, threads []pyspy.Thread) bool {
	if len(tids) != len(threads) {
		return false
	}
	for i, t := range threads {
		if tids[i] != t.NativeID {
			return false
		}
	}
	return true
}
