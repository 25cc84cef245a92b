package greenlet_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy/greenlet"
	"github.com/pyprof/pyprof/pyspy/mem"
)

// TestGreenlets reads every greenlet of greenlets.py, under gevent and
// eventlet, and compares each with the target's own view: the same
// greenlets, started and alive, parked with the same frames, the hub
// running; and checks greenlet's layout against the live objects.
func TestGreenlets(t *testing.T) {
	for _, py := range testpython.GreenletPythons(t) {
		for _, lib := range []string{"gevent", "eventlet"} {
			t.Run(py.Name+"/"+lib, func(t *testing.T) {
				tg, rep := testpython.StartGreenlets(t, py, lib)
				p, err := target.Attach(tg.Pid, target.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				r := greenlet.New(p.Proc, p.Config.Facts, p.Reader.Interpreter())
				// Paused, as dump reads: eventlet's hub allocates as
				// it runs, and a walk of a running process's GC lists
				// can fail.
				paused, err := p.Proc.Pause()
				if err != nil {
					t.Fatal(err)
				}
				sc, err := r.Scan()
				if err != nil {
					paused.Resume()
					t.Fatalf("scan: %v", err)
				}
				if r.Release() != rep.Greenlet {
					t.Errorf("release %q, target has %q", r.Release(), rep.Greenlet)
				}
				gs := r.Decode(sc.Objects, false)
				if err := paused.Resume(); err != nil {
					t.Fatal(err)
				}
				t.Logf("greenlet %s: %d greenlets among %d GC objects", r.Release(), len(gs), sc.Visited)
				compare(t, rep, gs)
				l, err := greenlet.LayoutFor(r.Release(), p.Version)
				if err != nil {
					t.Fatal(err)
				}
				checkLayout(t, p.Proc, l, gs)
			})
		}
	}
}

func compare(t *testing.T, rep *testpython.GreenletReport, gs []greenlet.Greenlet) {
	t.Helper()
	byAddr := map[uint64]*greenlet.Greenlet{}
	for i := range gs {
		g := &gs[i]
		if g.Err != nil {
			t.Errorf("greenlet %#x: %v", g.Addr, g.Err)
		}
		if g.Started && !g.Dead {
			byAddr[g.Addr] = g
		}
	}
	for _, want := range rep.Greenlets {
		g := byAddr[want.Address]
		if g == nil {
			t.Errorf("%s greenlet %#x not found", want.Shape, want.Address)
			continue
		}
		delete(byAddr, want.Address)
		if g.Main != want.Main {
			t.Errorf("%s greenlet: main %v, want %v", want.Shape, g.Main, want.Main)
		}
		name := (*string)(nil)
		if g.HasName {
			name = &g.Name
		}
		if fmt.Sprint(deref(name)) != fmt.Sprint(deref(want.Name)) {
			t.Errorf("%s greenlet: name %v, want %v", want.Shape, deref(name), deref(want.Name))
		}
		if want.Shape == "hub" {
			// The hub is parked in the target's view, taken while the
			// reporter ran, and runs its loop ever since.
			if !g.Running {
				t.Errorf("hub %#x not running", g.Addr)
			}
			continue
		}
		if g.Running {
			t.Errorf("%s greenlet %#x running", want.Shape, g.Addr)
			continue
		}
		if d := testpython.DiffThreads(
			[]testpython.ExpectThread{{Shape: want.Shape, Frames: want.Frames}},
			[]testpython.ExpectThread{{Shape: want.Shape, Frames: expectFrames(g)}}); d != "" {
			t.Errorf("%s greenlet %#x:\n%s", want.Shape, g.Addr, d)
		}
	}
	for _, g := range byAddr {
		t.Errorf("greenlet %#x (%s) read as alive, not in the target's view", g.Addr, g.Name)
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func expectFrames(g *greenlet.Greenlet) []testpython.ExpectFrame {
	out := []testpython.ExpectFrame{}
	for _, f := range g.Frames {
		out = append(out, testpython.ExpectFrame{Function: f.Name, Filename: f.Filename, Line: f.Line})
	}
	return out
}

// checkLayout checks the offsets of l on the live impls: every user
// greenlet's impl starts with one vtable and every main greenlet's with
// another; a started greenlet's stack_prev is another impl's stack state;
// a user greenlet's parent is a greenlet found.
func checkLayout(t *testing.T, m mem.Memory, l *greenlet.Layout, gs []greenlet.Greenlet) {
	t.Helper()
	word := func(addr uint64) uint64 {
		var b [8]byte
		if _, err := m.ReadAt(b[:], int64(addr)); err != nil {
			t.Fatalf("read %#x: %v", addr, err)
		}
		return mem.LE64(b[:])
	}
	impls, objs := map[uint64]bool{}, map[uint64]bool{}
	for _, g := range gs {
		impls[g.Impl], objs[g.Addr] = true, true
	}
	vtables := map[bool]map[uint64]bool{false: {}, true: {}}
	prevs := 0
	for _, g := range gs {
		vtables[g.Main][word(g.Impl)] = true
		if g.Started && !g.Dead && !g.Running {
			if prev := word(g.Impl + uint64(l.StackPrev)); prev != 0 {
				prevs++
				if !impls[prev-uint64(l.StackStart)] {
					t.Errorf("greenlet %#x: stack_prev %#x is no impl's stack state", g.Addr, prev)
				}
			}
		}
		if !g.Main && g.Started {
			if parent := word(g.Impl + uint64(l.Parent)); !objs[parent] {
				t.Errorf("greenlet %#x: parent %#x is no greenlet", g.Addr, parent)
			}
		}
	}
	for main, vs := range vtables {
		if len(vs) != 1 {
			t.Errorf("main=%v greenlets have %d vtables", main, len(vs))
		}
	}
	if prevs == 0 {
		t.Error("no stack_prev checked")
	}
}

// TestGCLists walks the GC lists of every interpreter whose GC layout the
// table has and counts what it visits against the target's own
// len(gc.get_objects()), taken before it parks with the collector off: the
// same, give or take what printing its report allocated.
func TestGCLists(t *testing.T) {
	for _, py := range testpython.For(t, "3.11", "3.12", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "gcobjects.py", "20000")
			want := -1
			for _, l := range tg.Stdout() {
				if n, ok := strings.CutPrefix(l, "GC-OBJECTS "); ok {
					want, _ = strconv.Atoi(n)
				}
			}
			if want < 20000 {
				t.Fatalf("no GC-OBJECTS line: %q", tg.Stdout())
			}
			p, err := target.Attach(tg.Pid, target.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			r := greenlet.New(p.Proc, p.Config.Facts, p.Reader.Interpreter())
			sc, err := r.WalkGC()
			if err != nil {
				t.Fatalf("walk: %v", err)
			}
			if sc.Visited < want-100 || sc.Visited > want+1000 {
				t.Errorf("visited %d GC objects, the target tracks %d", sc.Visited, want)
			}
		})
	}
}
