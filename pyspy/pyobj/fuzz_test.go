package pyobj_test

import (
	"encoding/binary"
	"testing"

	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/internal/snapfuzz"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

// FuzzDecoders feeds corrupt memory to every object decoder. Memory comes
// from the snapshots of real interpreters in package pyspy's testdata,
// with the fuzz input overlaid at an address, so that most pointers still
// lead somewhere real. Each input must finish quickly and without
// panicking; errors are expected.

// decoder returns a fresh decoder over m, of the snapshot's version.
func decoder(t testing.TB, s *pyspy.Snapshot, m mem.Memory, readahead bool) *pyobj.Decoder {
	l, err := pyversions.LayoutFor(s.Version)
	if err != nil {
		t.Skip(err)
	}
	c := mem.NewCache(m, readahead)
	c.Begin()
	return pyobj.NewDecoder(c, pyobj.NewFacts(l, s.Version))
}

// seedObjects adds, for every snapshot, the objects a sample meets: each
// code object and local variable, with the bytes recorded at its address.
func seedObjects(f *testing.F, snaps []*pyspy.Snapshot) {
	for i, s := range snaps {
		r, err := s.Open()
		if err != nil {
			continue
		}
		ts, _ := r.Sample(pyspy.SampleOptions{Locals: true})
		d := decoder(f, s, s, false)
		codes := pyobj.NewCodes(d)
		l := d.Facts().Layout
		add := func(op uint8, addr uint64) { snapfuzz.AddSeed(f, uint8(i), op, s, addr) }
		for _, t := range ts {
			for _, fr := range t.Frames {
				add(opCode, fr.Code)
				if len(fr.Locals) == 0 {
					continue
				}
				ci, err := codes.Code(fr.Code)
				if err != nil {
					continue
				}
				off := l.Frame.Localsplus
				if l.IFrame.Code >= 0 {
					off = l.IFrame.Localsplus
				}
				vars, _ := codes.LocalVars(ci)
				for j := range vars {
					p, err := d.Pointer(fr.Addr + uint64(off) + uint64(8*j))
					if err == nil && p != 0 {
						add(opRepr, p)
						add(opDict, p)
						seedVariants(f, uint8(i), s, d, p)
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
func grab(s *pyspy.Snapshot, addr uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		_, _ = s.ReadAt(b[i:i+1], int64(addr)+int64(i))
	}
	return b
}

func le(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}

// seedVariants adds seeds for the decoders that look around an object
// rather than into it (instance attributes, split-table values), with the
// real bytes and a few corrupt edits of them, and corrupt 3.12+ int tags.
func seedVariants(f *testing.F, snap uint8, s *pyspy.Snapshot, d *pyobj.Decoder, p uint64) {
	name, _, err := d.BuiltinType(p)
	if err != nil {
		return
	}
	l, v := d.Facts().Layout, d.Facts().Version
	edit := func(op uint8, addr uint64, b []byte, off int, bytes ...byte) {
		if off >= 0 {
			b = append([]byte(nil), b...)
			copy(b[off:], bytes)
		}
		f.Add(snap, op, addr, b)
	}
	switch {
	case name == "int" && l.Long.Tag >= 0:
		b := grab(s, p, 64)
		tag := int(l.Long.Tag)
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
		if v.AtLeast(3, 13) {
			// Inline values after the 16-byte header: clear valid,
			// then claim more values than capacity.
			edit(opAttr, p-lead, b, lead+16+3, 0)
			edit(opAttr, p-lead, b, lead+16, 1, 200)
		}
	case name == "dict":
		values, err := d.Pointer(p + uint64(l.Dict.Values))
		if err != nil || values == 0 {
			return
		}
		b := grab(s, values-lead, lead+256)
		edit(opValues, values-lead, b, -1)
		if v.AtLeast(3, 13) {
			edit(opValues, values-lead, b, lead, 2, 2) // two values, whatever follows them read as their order
			edit(opValues, values-lead, b, lead, 4, 9) // size over capacity
		} else if v.AtLeast(3, 11) {
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
	opDict
	opStr
	opInt
	opLines
	opAttr   // an instance attribute; the object starts lead bytes into the input
	opValues // split-table values; values[0] is lead bytes into the input
	nOps
)

func FuzzDecoders(f *testing.F) {
	snaps := snapfuzz.Load(f, "../testdata/snapshots", pyspy.DecodeSnapshot)
	seedObjects(f, snaps)
	f.Fuzz(func(t *testing.T, snap, op uint8, addr uint64, data []byte) {
		s := snaps[int(snap)%len(snaps)]
		if len(data) > 1<<16 {
			return
		}
		d := decoder(t, s, &snapfuzz.Overlay{Base: s, Addr: addr, Data: data}, true)
		snapfuzz.Within(t, func() {
			switch op % nOps {
			case opRepr:
				_ = d.Repr(addr)
			case opCode:
				codes := pyobj.NewCodes(d)
				if ci, err := codes.Code(addr); err == nil {
					_ = ci.Line(int(addr % 4096))
					_, _ = codes.LocalVars(ci)
				}
			case opDict:
				_, _, _ = d.DictItems(addr, 1000)
				_, _ = d.DictLookup(addr, "threading")
				_, _, _ = d.SetItems(addr, 1000)
				// The input itself as a 2.7 set table.
				_ = d.SetKeys27(data, int64(addr%64), 1000)
			case opStr:
				_, _ = d.Str(addr)
				_, _, _ = d.CodePoints(addr, 1000)
				_, _, _ = d.Bytes(addr, 1000)
			case opInt:
				_, _, _ = d.IntDigits(addr)
				_, _, _ = d.IntValue(addr)
				_, _ = d.Float(addr)
				_, _ = d.Bool(addr)
			case opLines:
				// Decode the input itself as each line table format.
				pyobj.LineTables(data, int(addr%100000))
			case opAttr:
				_, _ = d.Attribute(addr+lead, "alpha")
				_, _ = d.Attribute(addr+lead, "_name")
			case opValues:
				d.SplitValues(addr+lead, 30)
			}
		})
	})
}
