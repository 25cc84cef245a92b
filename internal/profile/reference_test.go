package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	pprof "github.com/google/pprof/profile"
)

// refBuilder is the Builder as it was before it kept stacks compactly:
// each stack stored whole with its labels, found by a binary key. The
// tests hold the Builder's profiles to it.
type refBuilder struct {
	p        Profile
	frames   map[Frame]int
	stacks   map[string]int
	key      []byte
	threads  map[threadKey]int
	timeline []timeline
}

func newRefBuilder() *refBuilder {
	return &refBuilder{frames: map[Frame]int{}, stacks: map[string]int{}}
}

func (b *refBuilder) FrameID(f Frame) int {
	id, ok := b.frames[f]
	if !ok {
		id = len(b.p.Frames)
		b.p.Frames = append(b.p.Frames, f)
		b.frames[f] = id
	}
	return id
}

func (b *refBuilder) KeepOrder() {
	if b.threads == nil {
		b.threads = map[threadKey]int{}
	}
}

func (b *refBuilder) AddStack(ids []int, count int64, pid, tid int, threadName string) {
	k := binary.AppendVarint(b.key[:0], int64(pid))
	k = binary.AppendVarint(k, int64(tid))
	k = binary.AppendUvarint(k, uint64(len(threadName)))
	k = append(k, threadName...)
	for _, id := range ids {
		k = binary.AppendUvarint(k, uint64(id))
	}
	b.key = k
	i, ok := b.stacks[string(k)]
	if ok {
		b.p.Stacks[i].Count += count
	} else {
		i = len(b.p.Stacks)
		b.stacks[string(k)] = i
		b.p.Stacks = append(b.p.Stacks, Stack{
			Frames: append([]int(nil), ids...), Count: count,
			Pid: pid, Tid: tid, ThreadName: threadName,
		})
	}
	if b.threads == nil {
		return
	}
	tk := threadKey{pid: pid, tid: tid}
	if tid == 0 {
		tk.name = threadName
	}
	ti, ok := b.threads[tk]
	if !ok {
		ti = len(b.timeline)
		b.threads[tk] = ti
		b.timeline = append(b.timeline, timeline{Timeline: Timeline{Pid: pid, Tid: tid}})
	}
	t := &b.timeline[ti]
	t.Name = threadName
	if t.n > 0 && t.last != i {
		t.close()
	}
	t.last = i
	t.n += count
}

func (b *refBuilder) Profile() *Profile {
	p := b.p
	p.Frames = append([]Frame(nil), b.p.Frames...)
	p.Stacks = append([]Stack(nil), b.p.Stacks...)
	for i := range b.timeline {
		t := &b.timeline[i]
		if t.n > 0 {
			t.close()
		}
		tl := t.Timeline
		tl.runs = slices.Clone(tl.runs)
		p.Timelines = append(p.Timelines, tl)
	}
	return &p
}

// builder is what the equivalence test drives, Builder or refBuilder.
type builder interface {
	FrameID(Frame) int
	AddStack(ids []int, count int64, pid, tid int, threadName string)
	KeepOrder()
	Profile() *Profile
}

// churnInput adds to b, from a fixed seed, stacks of three processes
// and their threads: with and without process and thread frames (and
// with three leading ones, more than a label holds), threads without an
// id told apart by name, threads renamed, stacks with no Python frame,
// counts above one, and Python parts shared between threads and
// processes. order, when at least 0, is the add at which KeepOrder is
// called; snapshot is called after every 97 adds.
func churnInput(b builder, order int, snapshot func(*Profile)) *Profile {
	rng := rand.New(rand.NewPCG(18, 2026))
	var pyFrames []int
	for i := range 40 {
		pyFrames = append(pyFrames, b.FrameID(py(fmt.Sprintf("f%d", i%25), fmt.Sprintf("/app/m%d.py", i%4), 10+i)))
	}
	// Python parts recur: a few bases, cut at random depths.
	var bases [][]int
	for range 12 {
		var s []int
		for range 2 + rng.IntN(10) {
			s = append(s, pyFrames[rng.IntN(len(pyFrames))])
		}
		bases = append(bases, s)
	}
	names := []string{"MainThread", "worker", "", "0x7f01", "Thread-1 (run)"}
	for n := range 1500 {
		if n == order {
			b.KeepOrder()
		}
		pid := 10 + rng.IntN(3)
		tid := 0
		if rng.IntN(4) > 0 {
			tid = pid*10 + rng.IntN(4)
		}
		name := names[rng.IntN(len(names))]
		var ids []int
		switch rng.IntN(6) {
		case 0: // a single process, no thread frames
		case 1:
			ids = append(ids, b.FrameID(ProcessFrame(pid, "python app.py")))
		case 2:
			ids = append(ids, b.FrameID(ProcessFrame(pid, "python app.py")), b.FrameID(ThreadFrame(tid, name)))
		case 3:
			ids = append(ids, b.FrameID(ThreadFrame(tid, name)))
		case 4: // more leading frames than a label holds
			ids = append(ids, b.FrameID(ProcessFrame(pid, "python app.py")), b.FrameID(ThreadFrame(tid, name)), b.FrameID(ThreadFrame(tid+1, name)))
		case 5: // the command line changed (an exec)
			ids = append(ids, b.FrameID(ProcessFrame(pid, "python other.py")))
		}
		if rng.IntN(10) > 0 {
			base := bases[rng.IntN(len(bases))]
			ids = append(ids, base[:1+rng.IntN(len(base))]...)
		}
		b.AddStack(ids, int64(1+rng.IntN(3)*rng.IntN(2)), pid, tid, name)
		if snapshot != nil && n%97 == 96 {
			snapshot(b.Profile())
		}
	}
	p := b.Profile()
	p.Command, p.Pids = "python app.py", []int{10, 11, 12}
	p.Interval, p.Rate = 10*time.Millisecond, 100
	p.Start, p.Duration = time.Unix(1700000000, 0), 15*time.Second
	return p
}

// TestCompactMatchesReference: the Builder's profiles, built from its
// compact form, are the ones the old Builder gave, stack for stack and
// timeline for timeline, and so are their collapsed, pprof and speedscope
// files, with and without the order kept, also when asked for midway.
func TestCompactMatchesReference(t *testing.T) {
	for _, order := range []int{-1, 0, 700} {
		t.Run(fmt.Sprintf("order from %d", order), func(t *testing.T) {
			var got, want []*Profile
			g := churnInput(NewBuilder(), order, func(p *Profile) { got = append(got, p) })
			w := churnInput(newRefBuilder(), order, func(p *Profile) { want = append(want, p) })
			got, want = append(got, g), append(want, w)
			if len(got) != len(want) {
				t.Fatalf("%d profiles, want %d", len(got), len(want))
			}
			for i := range got {
				sameProfile(t, got[i], want[i])
			}
			if len(g.Stacks) < 500 || (order >= 0) != (len(g.Timelines) > 0) {
				t.Fatalf("input too small to tell: %d stacks, %d timelines", len(g.Stacks), len(g.Timelines))
			}
			for _, f := range []struct {
				name  string
				write func(*Profile, *bytes.Buffer) error
			}{
				{"collapsed", func(p *Profile, b *bytes.Buffer) error { return p.WriteCollapsed(b) }},
				{"pprof", func(p *Profile, b *bytes.Buffer) error { return p.WritePprof(b) }},
				{"speedscope", func(p *Profile, b *bytes.Buffer) error { return p.WriteSpeedscope(b) }},
			} {
				var gb, wb bytes.Buffer
				if err := f.write(g, &gb); err != nil {
					t.Fatal(err)
				}
				if err := f.write(w, &wb); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(gb.Bytes(), wb.Bytes()) {
					t.Errorf("%s: %d bytes differ from the old builder's %d", f.name, gb.Len(), wb.Len())
				}
			}
			// The same in figures, for a readable failure.
			gp, err := g.ToPprof()
			if err != nil {
				t.Fatal(err)
			}
			wp, err := w.ToPprof()
			if err != nil {
				t.Fatal(err)
			}
			if gs, ws := pprofTotals(gp), pprofTotals(wp); gs != ws || len(gp.Sample) != len(wp.Sample) {
				t.Errorf("pprof: %d samples totalling %v, want %d totalling %v", len(gp.Sample), gs, len(wp.Sample), ws)
			}
			if order > 0 {
				return // the timelines begin midway: readSpeedscope's totals do not hold
			}
			if gs, ws := readSpeedscope(t, g), readSpeedscope(t, w); len(gs.Profiles) != len(ws.Profiles) {
				t.Errorf("speedscope: %d profiles, want %d", len(gs.Profiles), len(ws.Profiles))
			} else {
				for i := range gs.Profiles {
					if a, b := gs.Profiles[i], ws.Profiles[i]; a.Name != b.Name || len(a.Samples) != len(b.Samples) || a.EndValue != b.EndValue {
						t.Errorf("speedscope profile %d: %q with %d entries over %d, want %q with %d over %d",
							i, a.Name, len(a.Samples), a.EndValue, b.Name, len(b.Samples), b.EndValue)
					}
				}
			}
		})
	}
}

func pprofTotals(p *pprof.Profile) [2]int64 {
	var s [2]int64
	for _, x := range p.Sample {
		s[0] += x.Value[0]
		s[1] += x.Value[1]
	}
	return s
}

// sameProfile compares frames, stacks and timelines.
func sameProfile(t *testing.T, got, want *Profile) {
	t.Helper()
	if !slices.Equal(got.Frames, want.Frames) {
		t.Fatalf("%d frames, want %d, or not the same", len(got.Frames), len(want.Frames))
	}
	if len(got.Stacks) != len(want.Stacks) || got.Total() != want.Total() {
		t.Fatalf("%d stacks of %d samples, want %d of %d", len(got.Stacks), got.Total(), len(want.Stacks), want.Total())
	}
	for i, g := range got.Stacks {
		w := want.Stacks[i]
		if !slices.Equal(g.Frames, w.Frames) || g.Count != w.Count || g.Pid != w.Pid || g.Tid != w.Tid || g.ThreadName != w.ThreadName {
			t.Fatalf("stack %d: %+v, want %+v", i, g, w)
		}
	}
	if len(got.Timelines) != len(want.Timelines) {
		t.Fatalf("%d timelines, want %d", len(got.Timelines), len(want.Timelines))
	}
	for i := range got.Timelines {
		g, w := &got.Timelines[i], &want.Timelines[i]
		if g.Pid != w.Pid || g.Tid != w.Tid || g.Name != w.Name || !slices.Equal(runList(g), runList(w)) {
			t.Fatalf("timeline %d: %d/%d %q %v, want %d/%d %q %v", i, g.Pid, g.Tid, g.Name, runList(g), w.Pid, w.Tid, w.Name, runList(w))
		}
	}
}

func runList(t *Timeline) [][2]int64 {
	var out [][2]int64
	t.Runs(func(s int, n int64) bool { out = append(out, [2]int64{int64(s), n}); return true })
	return out
}
