package pyspy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/pyprof/pyprof/pyspy/bytecode"
	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// moving is a snapshot whose bytes change while a sample reads them: the
// patches in now apply from the start, those in later once moved is set
// (by testHookVerify, between a sample's walks and its verify). A test
// thus builds a thread that moves between two reads of a sample, as a
// running target does.
type moving struct {
	*Snapshot
	now, later map[uint64][]byte
	moved      bool
}

// moveOnVerify has m move when a sample's verify starts, for the rest of
// the test.
func moveOnVerify(t testing.TB, m *moving) {
	testHookVerify = func() { m.moved = true }
	t.Cleanup(func() { testHookVerify = nil })
}

func (m *moving) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.Snapshot.ReadAt(p, off)
	lo, hi := uint64(off), uint64(off)+uint64(len(p))
	if err != nil && m.covers(lo, hi) {
		// Bytes the snapshot's walk never read, which a test supplies.
		n, err = len(p), nil
	}
	apply := func(patches map[uint64][]byte) {
		for a, b := range patches {
			for i := range b {
				if x := a + uint64(i); x >= lo && x < hi {
					p[x-lo] = b[i]
				}
			}
		}
	}
	apply(m.now)
	if m.moved {
		apply(m.later)
	}
	return n, err
}

// covers reports whether the patches in effect cover [lo, hi) whole.
func (m *moving) covers(lo, hi uint64) bool {
	for x := lo; x < hi; x++ {
		in := false
		for a, b := range m.now {
			in = in || x >= a && x < a+uint64(len(b))
		}
		for a, b := range m.later {
			in = in || m.moved && x >= a && x < a+uint64(len(b))
		}
		if !in {
			return false
		}
	}
	return true
}

// tornFixture is a snapshot reader and what an undisturbed sample of it
// found.
type tornFixture struct {
	r       *Reader // the reader that took the undisturbed sample
	snap    *Snapshot
	file    string
	threads []Thread
	links   map[uint64][]frames.Link // per thread state, innermost first
	ts      map[uint64]tstate
}

func loadTorn(t testing.TB, file string) *tornFixture {
	t.Helper()
	snap := loadSnapshot(t, file)
	r, err := snap.Open()
	if err != nil {
		t.Fatal(err)
	}
	f := &tornFixture{r: r, snap: snap, file: file, links: map[uint64][]frames.Link{}, ts: map[uint64]tstate{}}
	threads, err := r.Sample(SampleOptions{NoNames: true})
	if err != nil {
		t.Fatal(err)
	}
	f.threads = threads
	for _, th := range threads {
		ts, err := r.readThread(th.Addr)
		if err != nil {
			t.Fatal(err)
		}
		r.scratch.stack.Links = r.scratch.stack.Links[:0]
		if _, err := r.walk(&ts, false, nil); err != nil {
			t.Fatal(err)
		}
		f.links[th.Addr] = append([]frames.Link(nil), r.scratch.stack.Links...)
		f.ts[th.Addr] = ts
	}
	return f
}

// deepest returns the thread with the most frames.
func (f *tornFixture) deepest() Thread {
	var deep Thread
	for _, th := range f.threads {
		if len(th.Frames) > len(deep.Frames) {
			deep = th
		}
	}
	return deep
}

// read returns n bytes at addr of the snapshot.
func (f *tornFixture) read(t testing.TB, addr uint64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := f.snap.ReadAt(b, int64(addr)); err != nil {
		t.Fatal(err)
	}
	return b
}

// reader opens a fresh reader over m.
func (f *tornFixture) reader(t testing.TB, m *moving) *Reader {
	t.Helper()
	r0, err := f.snap.Open()
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.snap.Config
	cfg.Layout, cfg.Version, cfg.NoReadahead = r0.l, f.snap.Version, true
	r, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// codeAt returns the code object at addr as r decoded it, or nil.
func codeAt(r *Reader, addr uint64) *pyobj.Code {
	c, _ := r.codes.Cached(addr)
	return c
}

// codeType returns the address of the code type: the type of the code
// object at code.
func codeType(t testing.TB, r *Reader, code uint64) uint64 {
	t.Helper()
	typ, err := r.dec.TypeOf(code)
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}

func u32(v uint32) []byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return b[:]
}

func threadOf(threads []Thread, addr uint64) *Thread {
	for i := range threads {
		if threads[i].Addr == addr {
			return &threads[i]
		}
	}
	return nil
}

func tornErrOf(err error, addr uint64) error {
	var te *ThreadError
	for _, e := range unwrapJoined(err) {
		if errors.As(e, &te) && te.Thread == addr {
			return te.Err
		}
	}
	return nil
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestStructuralChecks builds torn stacks that a single read can catch and
// checks that the walk rejects them (or, for frames that returned, skips
// them) through the reader interface.
func TestStructuralChecks(t *testing.T) {
	for _, file := range []string{"testdata/snapshots/pyenv-3.9.18.snap", "testdata/snapshots/pyenv-3.11.7.snap", "testdata/snapshots/pyenv-3.13.0.snap", "testdata/snapshots/sid-3.14.10.snap"} {
		f := loadTorn(t, file)
		r0 := f.r
		l := r0.l
		deep := f.deepest()
		links := f.links[deep.Addr]
		ts := f.ts[deep.Addr]
		interp := l.IFrame.Code >= 0
		instrOff, instrLen := l.Frame.Lasti, 4
		prevOff := l.Frame.Back
		if interp {
			instrOff, instrLen, prevOff = l.IFrame.Instr, 8, l.IFrame.Previous
		}
		// The code of the caller of the innermost frame, and where its
		// bytecode ends.
		ci := codeAt(r0, links[1].Code)
		if ci == nil {
			t.Fatalf("%s: code of frame 1 not decoded", file)
		}
		past := uint64(ci.Len() + 64)
		if interp {
			past += ci.Start()
		}
		pastBytes := u64(past)
		if instrLen == 4 {
			pastBytes = u32(uint32(ci.Len()/2 + 64))
		}
		type tc struct {
			name    string
			patches map[uint64][]byte
			want    error // nil: read without error
			frames  int   // frames expected when want is nil
		}
		// What a case has read in the sample's first batch, as a live
		// target's data stack is: memory the walk finds there rather
		// than reads.
		fetch := map[string][]mem.Region{}
		cases := []tc{
			{"instruction past its code", map[uint64][]byte{links[1].Addr + uint64(instrOff): pastBytes}, frames.ErrTorn, 0},
		}
		if interp {
			cases = append(cases,
				tc{"caller above its callee", map[uint64][]byte{links[3].Addr + uint64(prevOff): u64(links[1].Addr)}, frames.ErrTorn, 0},
				// The top read after the frames is below the two
				// innermost: they returned, and the stack is their
				// callers'.
				tc{"innermost frames returned", map[uint64][]byte{ts.addr + uint64(l.Thread.DatastackTop): u64(links[1].Addr)}, nil, len(deep.Frames) - 2},
			)
			// The caller of the innermost frame suspended on an
			// instruction that cannot push a frame: it was running
			// when copied, and the frame above it is an old one.
			if u := plainUnit(t, r0, ci); u >= 0 {
				cases = append(cases, tc{"caller not at a call", map[uint64][]byte{links[1].Addr + uint64(instrOff): u64(ci.Start() + 2*uint64(u))}, nil, len(deep.Frames) - 1})
			}
			// The caller of the innermost frame had not begun: the
			// frame above it is old, and it is hidden itself.
			cases = append(cases, tc{"caller not begun", map[uint64][]byte{links[1].Addr + uint64(instrOff): u64(ci.Start() - 2)}, nil, len(deep.Frames) - 2})
			// The frame pointer led into other frames' locals: what
			// stands where the executable would be is no code object.
			if r0.v.AtLeast(3, 13) {
				cases = append(cases, tc{"executable not code", map[uint64][]byte{links[0].Addr + uint64(l.IFrame.Code): u64(codeType(t, r0, links[0].Code))}, frames.ErrTorn, 0})
			}
			// The caller of the innermost frame is in a call of another
			// function than the one above it (3.11-3.13, which keep the
			// callable where the caller's stack pointer is): it was in a
			// call to C code or about to push its callee, and the frame
			// above it is an old one.
			if l.IFrame.Func >= 0 && l.IFrame.Stacktop >= 0 {
				top := binary.LittleEndian.Uint32(f.read(t, links[1].Addr+uint64(l.IFrame.Stacktop), 4))
				slots := links[1].Addr + uint64(l.IFrame.Localsplus) + 8*uint64(top)
				fn := f.read(t, links[0].Addr+uint64(l.IFrame.Func), 8)
				// Before 3.13 NULL and then the function; from 3.13 the
				// function and then NULL (no self).
				holds := append(u64(0), fn...)
				if r0.v.AtLeast(3, 13) {
					holds = append(append([]byte{}, fn...), u64(0)...)
				}
				cases = append(cases,
					tc{"caller holds another callable", map[uint64][]byte{slots: append(u64(codeType(t, r0, links[0].Code)), u64(0)...)}, nil, len(deep.Frames) - 1},
					tc{"caller holds its callee", map[uint64][]byte{slots: holds}, nil, len(deep.Frames)},
				)
				fetch["caller holds another callable"] = []mem.Region{{Addr: slots, Len: 16}}
				fetch["caller holds its callee"] = []mem.Region{{Addr: slots, Len: 16}}
			}
			// The caller of the innermost frame was running when copied
			// (3.12 and 3.13 mark it so), though at a call.
			if r0.facts.StacktopMarksRunning {
				cases = append(cases, tc{"caller running", map[uint64][]byte{links[1].Addr + uint64(l.IFrame.Stacktop): u32(0xffffffff)}, nil, len(deep.Frames) - 1})
			}
		} else {
			cases = append(cases,
				tc{"dead frame among the callers", map[uint64][]byte{links[3].Addr: u64(0)}, frames.ErrTorn, 0},
				tc{"innermost frame returned", map[uint64][]byte{links[0].Addr: u64(0)}, nil, len(deep.Frames) - 1},
			)
		}
		// A coroutine's frame at the bottom: the chain was cut while the
		// coroutine suspended.
		for _, th := range f.threads {
			tl := f.links[th.Addr]
			for i, lk := range tl {
				if c := codeAt(r0, lk.Code); c != nil && c.Flags()&bytecode.CoCoroutine != 0 && i+1 < len(tl) {
					cases = append(cases, tc{"stack ending in a coroutine", map[uint64][]byte{lk.Addr + uint64(prevOff): u64(0)}, errNoBase, 0})
					break
				}
			}
		}
		for _, c := range cases {
			t.Run(file+"/"+c.name, func(t *testing.T) {
				m := &moving{Snapshot: f.snap, now: c.patches}
				r := f.reader(t, m)
				r.scratch.refresh = append(r.scratch.refresh, fetch[c.name]...)
				threads, err := r.Sample(SampleOptions{NoNames: true})
				addr := deep.Addr
				if c.want == errNoBase {
					for _, th := range f.threads {
						for _, lk := range f.links[th.Addr] {
							if _, ok := c.patches[lk.Addr+uint64(prevOff)]; ok {
								addr = th.Addr
							}
						}
					}
				}
				got := tornErrOf(err, addr)
				if c.want != nil {
					if !errors.Is(got, c.want) {
						t.Errorf("error %v, want %v", got, c.want)
					}
					return
				}
				if got != nil {
					t.Fatalf("error %v", got)
				}
				if th := threadOf(threads, addr); th == nil || len(th.Frames) != c.frames {
					t.Errorf("%d frames, want %d", len(th.Frames), c.frames)
				}
				if popped := r.stats.Popped > 0; popped != (c.frames < len(deep.Frames)) {
					t.Errorf("frames counted as returned: %v, want %v", popped, !popped)
				}
			})
		}
	}
}

// plainUnit returns a code unit of ci, past its first traceable one, that
// starts an instruction whose family never pushes a frame, or -1.
func plainUnit(t testing.TB, r *Reader, ci *pyobj.Code) int {
	t.Helper()
	if r.dec.Facts().Opcodes == nil {
		t.Fatal("no opcode table")
	}
	code, err := r.cache.Bytes(ci.Start(), uint64(ci.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ci.Len()/2; {
		op := code[2*i]
		if i >= ci.FirstTraceable() && r.dec.Facts().Opcodes.Class[op] == pyversions.OpPlain {
			return i
		}
		i += 1 + int(r.dec.Facts().Opcodes.Caches[op])
	}
	t.Fatal("no plain instruction")
	return -1
}

// callUnit returns the first unit of a call in ci other than the one
// holding unit not, or -1.
func callUnit(t testing.TB, r *Reader, ci *pyobj.Code, not int) int {
	t.Helper()
	code, err := r.cache.Bytes(ci.Start(), uint64(ci.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ci.Len()/2; {
		op := code[2*i]
		n := 1 + int(r.dec.Facts().Opcodes.Caches[op])
		if r.dec.Facts().Opcodes.Class[op] == pyversions.OpCall && (not < i || not >= i+n) {
			return i
		}
		i += n
	}
	return -1
}

// TestVerify moves a thread between a sample's first read and its second,
// through the reader interface, and checks what verify keeps.
func TestVerify(t *testing.T) {
	for _, file := range []string{"testdata/snapshots/pyenv-3.9.18.snap", "testdata/snapshots/pyenv-3.11.7.snap", "testdata/snapshots/sid-3.14.10.snap"} {
		f := loadTorn(t, file)
		l := f.r.l
		deep := f.deepest()
		links := f.links[deep.Addr]
		ts := f.ts[deep.Addr]
		codeOff := l.Frame.Code
		if l.IFrame.Code >= 0 {
			codeOff = l.IFrame.Code
		}
		other := links[len(links)-1].Code // the outermost frame's code
		type verifyCase struct {
			name   string
			later  map[uint64][]byte
			torn   bool
			frames int
		}
		cases := []verifyCase{
			{"nothing moved", nil, false, len(deep.Frames)},
			{"a caller's code replaced", map[uint64][]byte{links[4].Addr + uint64(codeOff): u64(other)}, true, 0},
			{"returned into a caller", map[uint64][]byte{ts.framePtr: u64(links[2].Addr)}, false, len(deep.Frames) - 2},
		}
		if l.IFrame.Code >= 0 {
			// A caller below the frame the thread is at now moved on to
			// an instruction that cannot push: it returned from the
			// callee the first read kept above it.
			ci := codeAt(f.r, links[2].Code)
			u := plainUnit(t, f.r, ci)
			cases = append(cases, verifyCase{"a caller moved off its call", map[uint64][]byte{
				ts.framePtr:                            u64(links[1].Addr),
				links[2].Addr + uint64(l.IFrame.Instr): u64(ci.Start() + 2*uint64(u)),
			}, true, 0})
		}
		// A caller below the frame the thread is at now moved on to
		// another call: it returned from the callee the first read kept
		// above it, and that frame, unchanged in code and caller, is
		// another call's.
		if l.IFrame.Code >= 0 {
			ci := codeAt(f.r, links[2].Code)
			if u := callUnit(t, f.r, ci, int(links[2].Instr-ci.Start())/2); u >= 0 {
				cases = append(cases, verifyCase{"a caller moved to another call", map[uint64][]byte{
					ts.framePtr:                            u64(links[1].Addr),
					links[2].Addr + uint64(l.IFrame.Instr): u64(ci.Start() + 2*uint64(u)),
				}, true, 0})
			}
		} else {
			cases = append(cases, verifyCase{"a caller moved to another call", map[uint64][]byte{
				ts.framePtr:                           u64(links[1].Addr),
				links[2].Addr + uint64(l.Frame.Lasti): u32(uint32(links[2].Instr) - 2),
			}, true, 0})
		}
		for _, c := range cases {
			t.Run(file+"/"+c.name, func(t *testing.T) {
				// The first sample of a reader has no order to rely
				// on, so verify reads the stack again.
				m := &moving{Snapshot: f.snap, later: c.later}
				moveOnVerify(t, m)
				r := f.reader(t, m)
				threads, err := r.Sample(SampleOptions{NoNames: true, Verify: true})
				got := tornErrOf(err, deep.Addr)
				if c.torn {
					if !errors.Is(got, frames.ErrTorn) {
						t.Errorf("error %v, want a torn stack", got)
					}
					return
				}
				if got != nil {
					t.Fatalf("error %v", got)
				}
				th := threadOf(threads, deep.Addr)
				if len(th.Frames) != c.frames {
					t.Fatalf("%d frames, want %d", len(th.Frames), c.frames)
				}
				for i, fr := range th.Frames {
					if want := deep.Frames[len(deep.Frames)-c.frames+i]; fr.Addr != want.Addr || fr.Code != want.Code {
						t.Errorf("frame %d is %s at %#x, want %s at %#x", i, fr.Name, fr.Addr, want.Name, want.Addr)
					}
				}
			})
		}
	}
}

// FuzzVerify changes arbitrary bytes of a thread's frames between a
// sample's first read and its second: whatever verify keeps must be the
// outer part of the stack the first read saw, never a mixture.
func FuzzVerify(f *testing.F) {
	fx := loadTorn(f, "testdata/snapshots/pyenv-3.11.7.snap")
	deep := fx.deepest()
	links := fx.links[deep.Addr]
	ts := fx.ts[deep.Addr]
	f.Add(uint16(0), uint64(0))
	f.Add(uint16(8), links[3].Code)
	f.Add(uint16(16), links[2].Addr)
	f.Fuzz(func(t *testing.T, at uint16, val uint64) {
		// A word anywhere in the frames the walk visited, or the frame
		// pointer itself.
		lo := links[len(links)-1].Addr
		target := lo + uint64(at)&^7
		if at == 0 {
			target = ts.framePtr
		}
		m := &moving{Snapshot: fx.snap, later: map[uint64][]byte{target: u64(val)}}
		moveOnVerify(t, m)
		r := fx.reader(t, m)
		threads, err := r.Sample(SampleOptions{NoNames: true, Verify: true})
		if tornErrOf(err, deep.Addr) != nil {
			return
		}
		th := threadOf(threads, deep.Addr)
		if th == nil || len(th.Frames) > len(deep.Frames) {
			t.Fatalf("kept %v", th)
		}
		off := len(deep.Frames) - len(th.Frames)
		for i, fr := range th.Frames {
			if want := deep.Frames[off+i]; fr.Addr != want.Addr || fr.Code != want.Code {
				t.Fatalf("frame %d is %s at %#x, not the first read's %s at %#x", i, fr.Name, fr.Addr, want.Name, want.Addr)
			}
		}
	})
}

// TestReuse checks that a waiting thread keeps its stack between samples
// only while its frame pointer stays, and is walked again after at most
// reuseFor samples.
func TestReuse(t *testing.T) {
	f := loadTorn(t, "testdata/snapshots/pyenv-3.11.7.snap")
	deep := f.deepest()
	ts := f.ts[deep.Addr]
	m := &moving{Snapshot: f.snap, now: map[uint64][]byte{}}
	r := f.reader(t, m)
	opts := SampleOptions{NoNames: true, Reuse: true}
	if _, err := r.Sample(opts); err != nil {
		t.Fatal(err)
	}
	walks := func() int { return r.stats.Samples*len(f.threads) - r.stats.Reused }
	before := walks()
	threads, err := r.Sample(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := walks() - before; got != 0 {
		t.Errorf("%d threads walked again though none moved", got)
	}
	if th := threadOf(threads, deep.Addr); th == nil || len(th.Frames) != len(deep.Frames) || th.Frames[0].Code != deep.Frames[0].Code {
		t.Errorf("reused stack differs: %v", th)
	}
	// The thread moves: its frame pointer now names its caller.
	links := f.links[deep.Addr]
	m.now[ts.framePtr] = u64(links[1].Addr)
	before = walks()
	threads, err = r.Sample(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := walks() - before; got != 1 {
		t.Errorf("%d threads walked after one moved", got)
	}
	if th := threadOf(threads, deep.Addr); th == nil || len(th.Frames) != len(deep.Frames)-1 {
		t.Errorf("moved thread has %d frames, want %d", len(th.Frames), len(deep.Frames)-1)
	}
	// Nobody moves again: every thread is still walked within reuseFor
	// samples.
	start := walks()
	for range 2 * reuseFor {
		if _, err := r.Sample(opts); err != nil {
			t.Fatal(err)
		}
	}
	if n := walks() - start; n < len(f.threads) {
		t.Errorf("%d walks in %d samples of %d threads", n, 2*reuseFor, len(f.threads))
	}
}

// asm assembles 3.9 bytecode from opcode, argument pairs.
func asm(ops ...int) []byte {
	b := make([]byte, len(ops))
	for i, v := range ops {
		b[i] = byte(v)
	}
	return b
}

// 3.9 opcodes of recurse's bytecode.
const (
	opReturnValue  = 83
	opLoadConst    = 100
	opPopJumpFalse = 114
	opLoadGlobal   = 116
	opLoadFast     = 124
	opCallFunction = 131
)

// TestCallableCheckFrameObjects builds, in a 3.9 snapshot, callers that
// cannot have called the frame above them (before 3.11, whose frames do
// not say which function they run): a sample that verifies rejects their
// stacks as torn, one taken while the target is paused reads them as
// they are.
func TestCallableCheckFrameObjects(t *testing.T) {
	f := loadTorn(t, "testdata/snapshots/pyenv-3.9.18.snap")
	r0, l := f.r, f.r.l
	deep := f.deepest()
	links := f.links[deep.Addr]
	// links[2] is recurse(n) in "return recurse(n - 1)", at its
	// CALL_FUNCTION 1, and links[1] the recurse it called, itself in
	// "return park()".
	caller, callee := links[2], links[1]
	ci := codeAt(r0, caller.Code)
	if ci == nil || ci.Function().Name != "recurse" || codeAt(r0, callee.Code).Function().Name != "recurse" {
		t.Fatalf("frames 1 and 2 are not recurse's")
	}
	// recurse's bytecode as 3.9 compiles it (stacks.py), which the
	// snapshot does not hold.
	code := asm(opLoadFast, 0, opLoadConst, 1, 107, 1, opPopJumpFalse, 14, opLoadGlobal, 0, opCallFunction, 0, opReturnValue, 0,
		opLoadGlobal, 1, opLoadFast, 0, opLoadConst, 2, 24, 0, opCallFunction, 1, opReturnValue, 0)
	if len(code) != ci.Len() || int(caller.Instr) != 22 {
		t.Fatalf("recurse has %d bytes of code, its caller is at %d", ci.Len(), caller.Instr)
	}
	// A function object of a given code, its type "function", at
	// addresses the snapshot does not use.
	const fnBase, typAddr, nameAddr = 0x7ff000000000, 0x7ff000001000, 0x7ff000002ff0
	typ := make([]byte, mem.Extent(l.Type.Name, l.Type.Flags))
	copy(typ[l.Type.Name:], u64(nameAddr))
	function := func(i int, code uint64) (uint64, map[uint64][]byte) {
		a := fnBase + 64*uint64(i)
		return a, map[uint64][]byte{a: append(append(u64(1), u64(typAddr)...), u64(code)...)}
	}
	stack := caller.Addr + uint64(l.Frame.Localsplus) + 8*uint64(ci.NLocals())
	// The bytes object holding recurse's bytecode.
	codeBytes := binary.LittleEndian.Uint64(f.read(t, ci.Addr()+uint64(l.Code.Code), 8))
	args := callee.Addr + uint64(l.Frame.Localsplus)
	base := map[uint64][]byte{
		codeBytes + uint64(l.Bytes.Sval): code,
		typAddr:                          typ,
		nameAddr:                         []byte("function\x00\x00\x00\x00\x00\x00\x00\x00"),
	}
	own, ownFn := function(0, callee.Code)
	other, otherFn := function(1, links[0].Code) // park's
	const seven, eight = 0x7ff000003000, 0x7ff000003040
	cases := []struct {
		name    string
		patches []map[uint64][]byte
		torn    bool
	}{
		{"caller calls its callee", []map[uint64][]byte{ownFn, {stack: append(u64(own), u64(seven)...), args: u64(seven)}}, false},
		{"caller calls another function", []map[uint64][]byte{otherFn, {stack: append(u64(other), u64(seven)...), args: u64(seven)}}, true},
		{"callee of another call", []map[uint64][]byte{ownFn, {stack: append(u64(own), u64(seven)...), args: u64(eight)}}, true},
		{"caller at an instruction that calls nothing", []map[uint64][]byte{{caller.Addr + uint64(l.Frame.Lasti): u32(16)}}, true},
	}
	for _, c := range cases {
		for _, verify := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/verify=%v", c.name, verify), func(t *testing.T) {
				patches := maps.Clone(base)
				for _, p := range c.patches {
					maps.Copy(patches, p)
				}
				m := &moving{Snapshot: f.snap, now: patches}
				r := f.reader(t, m)
				// The stack and the arguments are in the first batch,
				// as the pages of a live target's frames are.
				r.scratch.refresh = append(r.scratch.refresh, mem.Region{Addr: stack, Len: 16}, mem.Region{Addr: args, Len: 8})
				threads, err := r.Sample(SampleOptions{NoNames: true, Verify: verify})
				got := tornErrOf(err, deep.Addr)
				if want := c.torn && verify; want != errors.Is(got, frames.ErrTorn) {
					t.Fatalf("error %v, want torn %v", got, want)
				}
				if got == nil {
					if th := threadOf(threads, deep.Addr); th == nil || len(th.Frames) != len(deep.Frames) {
						t.Errorf("kept %v, want %d frames", th, len(deep.Frames))
					}
				}
			})
		}
	}
}

// TestVerifyFrameObjects moves a 3.9 thread between a sample's walk and its
// second read: frames the second read finds changed are kept as the walk
// read them only above callers that can vouch for them.
func TestVerifyFrameObjects(t *testing.T) {
	f := loadTorn(t, "testdata/snapshots/pyenv-3.9.18.snap")
	l := f.r.l
	deep := f.deepest()
	links := f.links[deep.Addr]
	ts := f.ts[deep.Addr]
	outer := links[len(links)-1]
	// The innermost frame (park, called through a builtin's C code:
	// no callable check confirms it) became another frame, and the
	// thread is in a frame the walk never saw.
	replaced := map[uint64][]byte{links[0].Addr + uint64(l.Frame.Back): u64(0x1234), ts.framePtr: u64(0x7ff000004000)}
	moved := maps.Clone(replaced)
	moved[links[1].Addr+uint64(l.Frame.Lasti)] = u32(8)
	// Whether the first batch copies the innermost frame after its
	// caller, which a caller that stood still then vouches for.
	after := links[0].Addr > links[1].Addr
	t.Logf("innermost frame copied after its caller: %v", after)
	cases := []struct {
		name          string
		later         map[uint64][]byte
		strict, loose bool // torn in each mode
	}{
		{"nothing moved", nil, false, false},
		{"innermost replaced above a still caller", replaced, !after, false},
		{"innermost replaced above a caller that moved", moved, true, true},
		{"outermost frame changed", map[uint64][]byte{outer.Addr + uint64(l.Frame.Code): u64(links[0].Code)}, true, true},
	}
	for _, c := range cases {
		for _, plausible := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/plausible=%v", c.name, plausible), func(t *testing.T) {
				m := &moving{Snapshot: f.snap, later: c.later}
				moveOnVerify(t, m)
				r := f.reader(t, m)
				// The two innermost frames in the first batch, which
				// copies them in address order.
				n := uint64(l.Frame.Localsplus)
				r.scratch.refresh = append(r.scratch.refresh, mem.Region{Addr: links[0].Addr, Len: n}, mem.Region{Addr: links[1].Addr, Len: n})
				threads, err := r.Sample(SampleOptions{NoNames: true, Verify: true, Plausible: plausible})
				got := tornErrOf(err, deep.Addr)
				want := c.strict
				if plausible {
					want = c.loose
				}
				if want != errors.Is(got, frames.ErrTorn) {
					t.Fatalf("error %v, want torn %v", got, want)
				}
				if got == nil {
					if th := threadOf(threads, deep.Addr); th == nil || len(th.Frames) != len(deep.Frames) {
						t.Errorf("kept %v, want %d frames", th, len(deep.Frames))
					}
				}
			})
		}
	}
}
