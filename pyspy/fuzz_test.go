package pyspy

import (
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/pyrepr"
	"github.com/pyprof/pyprof/pyversions"
)

// The fuzz targets feed corrupt memory to every decoder. Memory comes from
// the snapshots of real interpreters in testdata/snapshots, with the fuzz
// input overlaid at an address, so that most pointers still lead somewhere
// real. Each input must finish quickly and without panicking; errors are
// expected.

var fuzzSnaps struct {
	once  sync.Once
	snaps []*Snapshot
}

func loadFuzzSnapshots(f *testing.F) []*Snapshot {
	fuzzSnaps.once.Do(func() {
		files, _ := filepath.Glob("testdata/snapshots/*.snap")
		sort.Strings(files)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			if s, err := DecodeSnapshot(data); err == nil {
				fuzzSnaps.snaps = append(fuzzSnaps.snaps, s)
			}
		}
	})
	if len(fuzzSnaps.snaps) == 0 {
		f.Fatal("no snapshots in testdata/snapshots")
	}
	return fuzzSnaps.snaps
}

// overlay is a snapshot with some bytes replaced or added.
type overlay struct {
	base *Snapshot
	addr uint64
	data []byte
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	addr := uint64(off)
	end := addr + uint64(len(p))
	oend := o.addr + uint64(len(o.data))
	if addr >= o.addr && end <= oend {
		return copy(p, o.data[addr-o.addr:]), nil
	}
	n, err := o.base.ReadAt(p, off)
	// Patch any overlap with the overlay.
	if addr < oend && end > o.addr {
		lo, hi := max(addr, o.addr), min(end, oend)
		copy(p[lo-addr:hi-addr], o.data[lo-o.addr:hi-o.addr])
	}
	return n, err
}

// fuzzReader returns a fresh reader over the memory, located as the
// snapshot says but without its validation walk, which the overlay may
// defeat.
func fuzzReader(t *testing.T, s *Snapshot, mem Memory) *Reader {
	l, err := pyversions.LayoutFor(s.Version)
	if err != nil {
		t.Skip(err)
	}
	r := newReader(mem, l, s.Version, true)
	r.cache.Begin()
	switch {
	case s.Config.Runtime != 0:
		p, err := r.pointer(s.Config.Runtime + uint64(l.Runtime.InterpretersHead))
		if err != nil {
			t.Skip(err)
		}
		r.setRuntime(s.Config.Runtime, p)
	case s.Config.InterpHead != 0:
		p, err := r.pointer(s.Config.InterpHead)
		if err != nil {
			t.Skip(err)
		}
		r.interp, r.gilVar = p, s.Config.TstateCurrent
	}
	return r
}

// within fails the test when fn takes too long: bounded loops must stay
// bounded even on corrupt input.
func within(t *testing.T, fn func()) {
	start := time.Now()
	fn()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("decoder took %v", d)
	}
}

// seeds adds, for every snapshot, the objects a sample meets: each frame,
// code object and local variable, with the bytes recorded at its address.
func seedObjects(f *testing.F, snaps []*Snapshot) {
	for i, s := range snaps {
		r, err := s.Open()
		if err != nil {
			continue
		}
		ts, _ := r.Sample(SampleOptions{Locals: true})
		add := func(op uint8, addr uint64) {
			b := make([]byte, 256)
			if _, err := s.ReadAt(b[:64], int64(addr)); err != nil {
				return
			}
			n, _ := s.ReadAt(b, int64(addr))
			f.Add(uint8(i), op, addr, b[:max(n, 64)])
		}
		for _, t := range ts {
			add(opThread, t.Addr)
			for _, fr := range t.Frames {
				add(opFrames, fr.Addr)
				add(opCode, fr.Code)
				if len(fr.Locals) == 0 {
					continue
				}
				ci, err := r.code(fr.Code)
				if err != nil {
					continue
				}
				off := r.l.Frame.Localsplus
				if r.l.IFrame.Code >= 0 {
					off = r.l.IFrame.Localsplus
				}
				vars, _ := r.localVars(ci)
				for j := range vars {
					p, err := r.pointer(fr.Addr + uint64(off) + uint64(8*j))
					if err == nil && p != 0 {
						add(opRepr, p)
						add(opDict, p)
						seedVariants(f, uint8(i), s, r, p)
					}
				}
			}
		}
	}
}

// lead is how many bytes of an opAttr or opValues input come before the
// object: managed dict and values pointers (3.11+) and the values prefix
// (3.11/3.12) sit there.
const lead = 32

// grab copies n bytes of the snapshot from addr, with zeros where nothing
// was recorded, so that a seed covers a whole object even when the sample
// read only parts of it.
func grab(s *Snapshot, addr uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		_, _ = s.ReadAt(b[i:i+1], int64(addr)+int64(i))
	}
	return b
}

// seedVariants adds seeds for the decoders that look around an object
// rather than into it (instance attributes, split-table values), with the
// real bytes and a few corrupt edits of them, and corrupt 3.12+ int tags.
func seedVariants(f *testing.F, snap uint8, s *Snapshot, r *Reader, p uint64) {
	name, _, err := r.builtinType(p)
	if err != nil {
		return
	}
	edit := func(op uint8, addr uint64, b []byte, off int, bytes ...byte) {
		if off >= 0 {
			b = append([]byte(nil), b...)
			copy(b[off:], bytes)
		}
		f.Add(snap, op, addr, b)
	}
	switch {
	case name == "int" && r.l.Long.Tag >= 0:
		b := grab(s, p, 64)
		tag := int(r.l.Long.Tag)
		// Only ints of three digits or more: they have digits to
		// misread, and there are few of them.
		if binary.LittleEndian.Uint64(b[tag:])>>3 < 3 {
			return
		}
		for _, t := range []uint64{1<<3 | 2, 1, 0, 3<<3 | 3, 5000 << 3, 1 << 63} {
			edit(opInt, p, b, tag, le(t)...)
		}
	case name == "":
		// An instance of a class: its attributes are wherever this
		// version keeps them.
		b := grab(s, p-lead, lead+256)
		edit(opAttr, p-lead, b, -1)
		if r.v.AtLeast(3, 13) {
			// Inline values after the 16-byte header: clear valid,
			// then claim more values than capacity.
			edit(opAttr, p-lead, b, lead+16+3, 0)
			edit(opAttr, p-lead, b, lead+16, 1, 200)
		}
	case name == "dict":
		values, err := r.pointer(p + uint64(r.l.Dict.Values))
		if err != nil || values == 0 {
			return
		}
		b := grab(s, values-lead, lead+256)
		edit(opValues, values-lead, b, -1)
		if r.v.AtLeast(3, 13) {
			edit(opValues, values-lead, b, lead, 2, 2) // two values, whatever follows them read as their order
			edit(opValues, values-lead, b, lead, 4, 9) // size over capacity
		} else if r.v.AtLeast(3, 11) {
			// The prefix ends [order 0, size, prefix size].
			edit(opValues, values-lead, b, lead-3, 40, 1, 32) // order names slot 40 of 30
			edit(opValues, values-lead, b, lead-2, 200, 32)   // size over the prefix
			edit(opValues, values-lead, b, lead-1, 1)         // prefix smaller than its header
		}
	}
}

// Operations of FuzzDecoders.
const (
	opRepr = iota
	opCode
	opFrames
	opThread
	opDict
	opStr
	opInt
	opLines
	opAttr   // an instance attribute; the object starts lead bytes into the input
	opValues // split-table values; values[0] is lead bytes into the input
	nOps
)

func FuzzDecoders(f *testing.F) {
	snaps := loadFuzzSnapshots(f)
	seedObjects(f, snaps)
	f.Fuzz(func(t *testing.T, snap, op uint8, addr uint64, data []byte) {
		s := snaps[int(snap)%len(snaps)]
		if len(data) > 1<<16 {
			return
		}
		r := fuzzReader(t, s, &overlay{base: s, addr: addr, data: data})
		within(t, func() {
			switch op % nOps {
			case opRepr:
				_ = r.Repr(addr)
			case opCode:
				if ci, err := r.code(addr); err == nil {
					_ = ci.frame(int(addr % 4096))
					_, _ = r.localVars(ci)
				}
			case opFrames:
				_, _ = r.walk(&tstate{frame: addr}, true, nil)
			case opThread:
				if ts, err := r.readThread(addr); err == nil {
					_, _ = r.walk(&ts, true, nil)
				}
				r.interp = addr
				// Learning the native thread id offset decodes struct pthread.
				r.SetOSThreads(1, []int{1, 2, 3})
				_, _ = r.Sample(SampleOptions{Locals: true})
			case opDict:
				_, _, _ = r.dictItems(addr, 1000)
				_, _ = r.dictLookup(addr, "threading")
				_, _, _ = r.setItems(addr, 1000)
				// The input itself as a 2.7 set table.
				_ = r.setKeys27(data, int64(addr%64), 1000)
			case opStr:
				_, _ = r.str(addr)
				_, _, _ = r.codePoints(addr, 1000)
				_, _, _ = r.bytesData(addr, 1000)
			case opInt:
				_, _, _ = r.intDigits(addr)
				_, _, _ = r.intValue(addr)
				_, _ = r.floatValue(addr)
				_, _ = r.boolValue(addr)
			case opLines:
				// Decode the input itself as each line table format.
				for _, lt := range []*lineTable{parseLnotab(data, 1, true), parseLnotab(data, 1, false), parseLinetable310(data, 1)} {
					_ = lt.line(int(addr % 100000))
				}
				if lt, err := parseLocations(data, 1); err == nil {
					_ = lt.line(int(addr % 100000))
				}
			case opAttr:
				_, _ = r.attribute(addr+lead, "alpha")
				_, _ = r.attribute(addr+lead, "_name")
			case opValues:
				if sv, err := r.readSplitValues(addr+lead, 30); err == nil {
					_, _ = r.slots(sv)
				}
			}
		})
	})
}

// FuzzSnapshot mutates whole snapshots: the encoding, the recorded memory
// and the interpreter's location, then takes a full sample.
func FuzzSnapshot(f *testing.F) {
	files, _ := filepath.Glob("testdata/snapshots/*.snap")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data, true)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, locals bool) {
		s, err := DecodeSnapshot(data)
		if err != nil {
			return
		}
		within(t, func() {
			r, err := s.Open()
			if err != nil {
				return
			}
			_, _ = r.Sample(SampleOptions{Locals: locals})
			_, _ = r.Sample(SampleOptions{Locals: locals, NoNames: true})
		})
	})
}

// FuzzLineTables decodes arbitrary bytes in each line table format and
// checks that lookups stay within what the table can produce.
func FuzzLineTables(f *testing.F) {
	f.Add([]byte{0x06, 0x01, 0x08, 0x02, 0x04, 0xff}, int32(10), int32(8))
	f.Add([]byte{0x80, 0x00, 0xf0, 0x69, 0x03, 0x01, 0xd8, 0x00}, int32(1), int32(2))
	f.Add([]byte{0x02, 0x80, 0x04, 0x7f}, int32(700), int32(3))
	f.Fuzz(func(t *testing.T, data []byte, first, addrq int32) {
		for _, lt := range []*lineTable{parseLnotab(data, first, true), parseLnotab(data, first, false), parseLinetable310(data, first)} {
			_ = lt.line(int(addrq))
		}
		lt, err := parseLocations(data, first)
		if err == nil {
			_ = lt.line(int(addrq))
			if len(lt.entries) > len(data)+1 {
				t.Fatalf("%d entries from %d bytes", len(lt.entries), len(data))
			}
		}
	})
}

// FuzzDigits15 checks that the 15-bit digits of builds with 2-byte digits
// pair into 30-bit digits of the same value, as math/big reads them, and
// that a digit with its top bit set is refused.
func FuzzDigits15(f *testing.F) {
	f.Add([]byte{0x05, 0x00, 0x00, 0x00, 0x01, 0x00}) // 2**30 + 5
	f.Add([]byte{0xff, 0x7f, 0xff, 0x7f, 0xff})       // 2**30 - 1, and an odd byte
	f.Add([]byte{0x00, 0x80})                         // bit 15 set
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<12 {
			return
		}
		d, err := pairDigits15(0, b)
		want, valid := new(big.Int), true
		for i := len(b)/2 - 1; i >= 0; i-- {
			v := binary.LittleEndian.Uint16(b[2*i:])
			valid = valid && v>>15 == 0
			want.Lsh(want, 15).Or(want, big.NewInt(int64(v)))
		}
		if (err == nil) != valid {
			t.Fatalf("pairDigits15(%x): error %v, digits valid %v", b, err, valid)
		}
		if err != nil {
			return
		}
		if got := pyrepr.Int(d, false); got != want.String() {
			t.Fatalf("pairDigits15(%x) = %s, want %s", b, got, want)
		}
	})
}
