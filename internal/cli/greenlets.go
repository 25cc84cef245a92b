package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/greenlet"
)

// greenletDump is one greenlet of a thread in dump --json: a parked one
// with its own frames, the running one with its thread's.
type greenletDump struct {
	Address uint64      `json:"address"`
	Name    *string     `json:"name"`
	Running bool        `json:"running"`
	Frames  []frameDump `json:"frames"`
}

// dumpGreenlets reads the greenlets of one process for dump: found before
// the process is paused (the GC walk is the long part), decoded while it
// is, with its threads' stacks.
type dumpGreenlets struct {
	r    *greenlet.Reader
	objs []uint64
	// scanned says the objects are from a walk that ended well.
	scanned bool
	err     error
	gs      []greenlet.Greenlet
}

func newDumpGreenlets(p *target.Process) *dumpGreenlets {
	g := &dumpGreenlets{r: greenlet.New(p.Proc, p.Config.Facts, p.Reader.Interpreter())}
	g.scan()
	return g
}

// scan walks the GC lists. A walk that met a collection under way missed
// the objects the collector held on lists of its own, and is done again
// with the process paused; if the process was paused mid-collection, the
// dump says so.
func (g *dumpGreenlets) scan() {
	sc, err := g.r.Scan()
	g.objs, g.err, g.scanned = sc.Objects, err, err == nil && !sc.Collecting
	if err == nil && sc.Collecting {
		g.err = errors.New("a garbage collection was under way: greenlets may be missing")
	}
}

// read decodes the greenlets, with the process paused (or not, as the
// dump goes). A walk of a running process can fail as objects come and
// go, so one that failed for any reason but an unknown release is tried
// again now.
func (g *dumpGreenlets) read(locals bool) {
	if !g.scanned && !errors.Is(g.err, greenlet.ErrUnknownRelease) {
		g.scan()
	}
	g.gs = g.r.Decode(g.objs, locals)
}

// attach puts each started, live greenlet under its thread in d, names
// the threads threading knows by their main greenlet (gevent's
// monkey-patching), and adds to d's errors what could not be read.
func (g *dumpGreenlets) attach(p *target.Process, threads []pyspy.Thread, d *processDump, o dumpOptions) {
	if g.err != nil {
		d.Errors = append(d.Errors, fmt.Sprintf("greenlets: %v", g.err))
	}
	if len(g.gs) == 0 {
		return
	}
	stacks := p.ThreadStacks(threads)
	owners := greenlet.Owners(g.gs, stacks)
	var mains []uint64
	unowned := 0
	for i, gl := range g.gs {
		if !gl.Started || gl.Dead {
			continue
		}
		if gl.Err != nil {
			d.Errors = append(d.Errors, fmt.Sprintf("greenlet %#x: %v", gl.Addr, gl.Err))
			continue
		}
		t := owners[i]
		if t < 0 || t >= len(d.Threads) {
			unowned++
			continue
		}
		if gl.Main {
			mains = append(mains, gl.Addr)
		}
		gd := greenletDump{Address: gl.Addr, Running: gl.Running}
		if gl.HasName {
			name := gl.Name
			gd.Name = &name
		}
		if gl.Running {
			gd.Frames = d.Threads[t].Frames
		} else {
			gd.Frames = framesDump(gl.Frames, o)
		}
		d.Threads[t].Greenlets = append(d.Threads[t].Greenlets, gd)
		if gl.Main {
			d.Threads[t].mainGreenlet = gl.Addr
		}
	}
	if unowned > 0 {
		d.Errors = append(d.Errors, fmt.Sprintf("greenlets: %d not tied to any thread", unowned))
	}
	names := g.r.ThreadNames(mains)
	for i := range d.Threads {
		t := &d.Threads[i]
		if name, ok := names[t.mainGreenlet]; ok && t.Name == nil {
			t.Name = &name
		}
		slices.SortFunc(t.Greenlets, func(a, b greenletDump) int {
			if a.Running != b.Running {
				if a.Running {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.Address, b.Address)
		})
	}
}

// writeGreenlets prints a thread's greenlets after its own stack: the
// running one's stack is the thread's, printed above.
func writeGreenlets(w io.Writer, t threadDump, o dumpOptions) {
	for _, g := range t.Greenlets {
		label := fmt.Sprintf("%#x", g.Address)
		if g.Name != nil {
			label = *g.Name
		}
		if g.Running {
			fmt.Fprintf(w, "    Greenlet %s (running: the thread's stack)\n", label)
			continue
		}
		fmt.Fprintf(w, "    Greenlet %s (parked)\n", label)
		writeFrames(w, g.Frames, o, "        ")
	}
}
