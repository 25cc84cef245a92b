package sampler

import (
	"errors"
	"fmt"
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

// greenlets follows the greenlets of one process (Options.Greenlets): a
// goroutine walks the GC lists every rescanGreenlets with a reader of its
// own, and each sample decodes the greenlets the last walk found, reusing
// the stacks of those that have not moved.
type greenlets struct {
	dec *greenlet.Reader // the sampling goroutine's

	mu      sync.Mutex
	objs    []uint64
	release string
	scans   int
	// failed is why the walks ended for good, once; said is set once
	// unread has returned it.
	failed error
	said   bool

	// stacks tie greenlets to threads; they are read from the maps
	// again after every walk, or when the threads change.
	stacks    []greenlet.Stack
	stacksFor int // the walk they were read after
	tids      []int

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
		dec:  greenlet.New(t.Proc, t.Config.Facts, t.Reader.Interpreter()),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go g.scan(greenlet.New(t.Proc, t.Config.Facts, t.Reader.Interpreter()))
	return g
}

// scan walks the process's GC lists until close, every rescanGreenlets,
// or less often for a heap that takes long to walk: the walks take at
// most a tenth of a core. A release of greenlet, or a Python, whose
// layout is unknown ends it: no greenlet of it is ever read, and unread
// says why.
func (g *greenlets) scan(r *greenlet.Reader) {
	defer close(g.done)
	for {
		start := time.Now()
		sc, err := r.Scan()
		wait := max(rescanGreenlets, 10*time.Since(start))
		if err == nil || len(sc.Objects) > 0 {
			g.mu.Lock()
			g.objs, g.release = sc.Objects, r.Release()
			g.scans++
			g.mu.Unlock()
		}
		if errors.Is(err, greenlet.ErrUnknownRelease) || errors.Is(err, greenlet.ErrNoGC) {
			g.mu.Lock()
			g.failed = err
			g.mu.Unlock()
			return
		}
		t := time.NewTimer(wait)
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

// sample appends to out each parked greenlet's stack as an idle stack of
// its thread, labelled with the greenlet.
func (g *greenlets) sample(p *proc, threads []pyspy.Thread, out []Thread) []Thread {
	g.mu.Lock()
	objs, release, scans := g.objs, g.release, g.scans
	g.mu.Unlock()
	if len(objs) == 0 || g.dec.SetRelease(release) != nil {
		return out
	}
	gs := g.dec.Decode(objs, false)
	if scans != g.stacksFor || !sameThreads(g.tids, threads) {
		g.stacks, g.stacksFor = p.t.ThreadStacks(threads), scans
		g.tids = g.tids[:0]
		for _, t := range threads {
			g.tids = append(g.tids, t.NativeID)
		}
	}
	owners := greenlet.Owners(gs, g.stacks)
	for i := range gs {
		gl := &gs[i]
		o := owners[i]
		if gl.Err != nil || !gl.Parked() || o < 0 || o >= len(threads) || len(gl.Frames) == 0 {
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
