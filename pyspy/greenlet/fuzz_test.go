package greenlet

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// fuzzBase is where the fuzz input is mapped in the fake target.
const fuzzBase = 0x100000

// flat is a target memory holding only the fuzz input, at fuzzBase.
type flat []byte

func (m flat) ReadAt(p []byte, off int64) (int, error) {
	a := uint64(off)
	if a < fuzzBase || a-fuzzBase > uint64(len(m)) || uint64(len(p)) > uint64(len(m))-(a-fuzzBase) {
		return 0, fmt.Errorf("read %#x+%d: unmapped", a, len(p))
	}
	return copy(p, m[a-fuzzBase:]), nil
}

// fake builds the memory of a greenlet the decoders accept: a static type
// named greenlet.greenlet, a PyGreenlet of it whose impl points back,
// started and parked, with a main greenlet and its ThreadState, a gr_frame
// that stands for the saved frame, and a GC list holding the greenlet.
// Offsets are from fuzzBase; the layout is l's.
func fake(l *Layout) []byte {
	b := make([]byte, 4096)
	put := func(off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	at := func(off int) uint64 { return fuzzBase + uint64(off) }
	const (
		head   = 0    // GC list head
		gch    = 64   // the greenlet's PyGC_Head; the object follows
		obj    = 80   //
		typ    = 256  // its type
		name   = 768  // "greenlet.greenlet"
		impl   = 1024 // its impl
		mobj   = 1536 // main greenlet object
		mimpl  = 1600 // main impl
		ts     = 2048 // ThreadState
		frame  = 2304 // gr_frame
		iframe = 2560
	)
	put(head, at(gch))
	put(head+8, at(gch))
	put(gch, at(head))
	put(gch+8, at(head))
	put(obj+8, at(typ))
	put(obj+pyImpl, at(impl))
	put(typ+24, at(name))
	put(typ+168, 0) // static
	copy(b[name:], "greenlet.greenlet\x00")
	self := l.Self
	if self < 0 {
		self = l.UserSelf
	}
	put(impl+int(self), at(obj))
	put(impl+int(l.StackStart), at(3000))
	put(impl+int(l.StackStop), at(3500))
	put(impl+int(l.MainGreenlet), at(mobj))
	put(impl+int(l.TopFrame), at(frame))
	put(impl+int(l.CurrentFrame), at(iframe))
	put(mobj+8, at(typ))
	put(mobj+pyImpl, at(mimpl))
	mself := l.Self
	if mself < 0 {
		mself = l.MainSelf
	}
	put(mimpl+int(mself), at(mobj))
	put(mimpl+int(l.StackStop), ^uint64(0))
	put(mimpl+int(l.StackStart), 1)
	put(mimpl+int(l.ThreadState), at(ts))
	put(ts+tsMain, at(mobj))
	put(ts+tsCur, at(mobj))
	put(frame+frameFF, at(iframe))
	put(iframe, at(iframe)) // a frame that is its own caller
	put(iframe+8, at(iframe))
	return b
}

// FuzzDecode feeds corrupt memory to the GC walk and the greenlet
// decoders, for every layout known: each input must end, soon, in greenlets
// or errors, never in a panic or a hang.
func FuzzDecode(f *testing.F) {
	for i := range layouts {
		f.Add(fake(&layouts[i]), uint8(i), uint16(0), uint16(80))
	}
	f.Add([]byte{}, uint8(0), uint16(8), uint16(8))
	f.Fuzz(func(t *testing.T, data []byte, which uint8, head, obj uint16) {
		if len(data) > 1<<16 {
			return
		}
		l := &layouts[int(which)%len(layouts)]
		v, err := pyversions.Parse(l.Python + ".0")
		if err != nil {
			t.Fatal(err)
		}
		pl, err := pyversions.LayoutFor(v)
		if err != nil {
			t.Skip(err)
		}
		r := New(flat(data), pyobj.NewFacts(pl, v), fuzzBase)
		r.MaxObjects = 10000
		r.l, r.release = l, l.Release
		start := time.Now()
		r.gc.Reset()
		sc := &Scanned{}
		_ = r.walkList(fuzzBase+uint64(head), sc, time.Now().Add(time.Second))
		objs := append(sc.Objects, fuzzBase+uint64(obj))
		for _, locals := range []bool{false, true} {
			for _, g := range r.Decode(objs, locals) {
				if len(g.Frames) > 8192 {
					t.Fatalf("%d frames", len(g.Frames))
				}
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

// TestFake checks that the fuzz seed is a greenlet the decoders read, so
// that fuzzing starts from paths that go deep.
func TestFake(t *testing.T) {
	for i := range layouts {
		l := &layouts[i]
		v, _ := pyversions.Parse(l.Python + ".0")
		pl, err := pyversions.LayoutFor(v)
		if err != nil {
			t.Logf("%s: %v", l.Python, err)
			continue
		}
		r := New(flat(fake(l)), pyobj.NewFacts(pl, v), fuzzBase)
		r.l, r.release = l, l.Release
		sc := &Scanned{}
		if err := r.walkList(fuzzBase, sc, time.Now().Add(time.Second)); err != nil || len(sc.Objects) != 1 {
			t.Fatalf("%s/%s: walk: %v, %d objects", l.Release, l.Python, err, len(sc.Objects))
		}
		gs := r.Decode(sc.Objects, false)
		if len(gs) != 1 || !gs[0].Parked() {
			t.Fatalf("%s/%s: %+v", l.Release, l.Python, gs)
		}
		if gs[0].Err == nil {
			t.Errorf("%s/%s: a frame that calls itself read without error", l.Release, l.Python)
		}
	}
}
