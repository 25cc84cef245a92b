package pyspy

import (
	"fmt"

	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyversions"
)

// codeInfo is what a sample needs from a code object. Code objects are
// immutable, so it is decoded once and then revalidated on every use by
// comparing the members it was decoded from: a freed code object whose
// memory was reused for another one fails the comparison.
type codeInfo struct {
	addr  uint64
	check fingerprint // the compared members, as read
	// validated is the sample in which check was last compared, and
	// hotMark the sample whose first batch last listed the code as hot.
	validated, hotMark int

	// fn is allocated on its own: callers keep the Functions of frames
	// (profiles, caches by pointer), and an interior pointer would keep
	// the whole codeInfo, line table and bytecode with it, for every
	// code object of every process that has exited.
	fn    *Function
	lines *lineTable
	// codeStart is the address of the first instruction (3.11+), from
	// which a frame's instruction pointer gives its offset.
	codeStart      uint64
	firstTraceable int // in code units (3.11+)
	// codeLen is the length of the bytecode in bytes, or -1 when unknown.
	codeLen int
	// pushes marks the code units of instructions whose family can push
	// a frame (3.11+), decoded on first need; pushesRead says it was
	// tried, and a nil pushes then that it could not be.
	pushes     []uint64
	pushesRead bool
	// calls marks, among them, the units of calls (pyversions.OpCall).
	calls []uint64

	// codeBytes is the bytecode's bytes object (≤3.10), and call what the
	// callable check learnt of it (see callState), once callRead.
	codeBytes uint64
	call      *callState
	callRead  bool

	// For locals, decoded on first use.
	argcount, kwonly, flags, nlocals int
	nlocalsplus                      int
	varnames, cellvars, freevars     uint64 // tuples (≤3.10)
	localsNames, localsKinds         uint64 // 3.11+
	vars                             []localVar
	varsErr                          error
}

// fingerprint holds the members whose values identify a code object: its
// type, the pointers to its names and line table, and its first line.
type fingerprint [6]uint64

func (r *Reader) fingerprint(f *mem.Fields) fingerprint {
	c := &r.l.Code
	var fp fingerprint
	for i, off := range [...]int64{r.l.Object.Type, c.Name, c.Filename, c.Qualname, c.Linetable} {
		if off >= 0 {
			fp[i] = f.Ptr(off)
		}
	}
	fp[5] = uint64(f.U32(c.Firstlineno))
	return fp
}

func codeHeaderSize(l *pyversions.Layout) uint64 {
	c := &l.Code
	return mem.Extent(l.Object.Type, c.Argcount, c.Posonlyargcount, c.Kwonlyargcount, c.Nlocals, c.Nlocalsplus,
		c.Flags, c.Firstlineno, c.Varnames, c.Cellvars, c.Freevars, c.Localsplusnames, c.Localspluskinds,
		c.Filename, c.Name, c.Qualname, c.Linetable, c.FirstTraceable, c.Code)
}

// maxCodes bounds the code cache. Long-running targets that keep creating
// code (exec, lambdas in loops) would otherwise grow it forever.
const maxCodes = 1 << 16

// code returns the decoded code object at addr.
func (r *Reader) code(addr uint64) (*codeInfo, error) {
	if addr == 0 || addr%8 != 0 {
		return nil, fmt.Errorf("bad code object pointer %#x", addr)
	}
	// A code object validated earlier in this sample needs no second
	// look: recursion meets the same one at every level.
	if ci := r.lastCode; ci != nil && ci.addr == addr && ci.validated == r.stats.Samples {
		return ci, nil
	}
	if ci, ok := r.codes[addr]; ok && ci.validated == r.stats.Samples {
		r.lastCode = ci
		return ci, nil
	}
	b, err := r.cache.Exact(addr, r.codeHeader)
	if err != nil {
		return nil, fmt.Errorf("code object: %w", err)
	}
	fd := mem.NewFields(b, addr, "code object")
	f := &fd
	fp := r.fingerprint(f)
	if f.Err() != nil {
		return nil, f.Err()
	}
	if ci, ok := r.codes[addr]; ok && ci.check == fp {
		ci.validated = r.stats.Samples
		r.lastCode = ci
		r.hot = append(r.hot, ci)
		return ci, nil
	}
	r.stats.CodeMisses++
	ci, err := r.decodeCode(f)
	if err != nil {
		return nil, err
	}
	ci.check, ci.validated = fp, r.stats.Samples
	if len(r.codes) >= maxCodes {
		clear(r.codes)
		r.hot = r.hot[:0]
	}
	r.codes[addr] = ci
	r.hot = append(r.hot, ci)
	return ci, nil
}

// Hot code objects are those validated in the last hotSamples samples, at
// most maxHot of them.
const (
	hotSamples = 32
	maxHot     = 512
)

// hotRegionsList is what the next sample's first batch reads besides the
// last sample's footprint: hot code objects, and before 3.11 the pages
// where recent samples found frame objects.
func (r *Reader) hotRegionsList() []mem.Region {
	regs := append(r.hotCodeRegions(), r.refresh...)
	for p, seen := range r.hotPages {
		if r.stats.Samples-seen >= hotSamples {
			delete(r.hotPages, p)
			continue
		}
		regs = append(regs, mem.Region{Addr: p, Len: mem.PageSize})
	}
	r.hotRegions = regs
	return regs
}

// maxHotPages bounds the frame pages kept hot: CPython keeps at most 200
// frame objects on its free lists, besides one per code object.
const maxHotPages = 128

// hotPage notes the page of a frame object a walk met: a frame object is
// taken from free lists that the next calls reuse, so later samples find
// other frames on the same pages.
func (r *Reader) hotPage(addr uint64) {
	p := r.hotWord(addr)
	// A frame may straddle a page boundary.
	if e := (addr + uint64(r.l.Frame.Localsplus) - 1) &^ (mem.PageSize - 1); e != p {
		r.hotPage(e)
	}
}

// hotWord marks the page of addr hot, and returns it.
func (r *Reader) hotWord(addr uint64) uint64 {
	if r.hotPages == nil {
		r.hotPages = map[uint64]int{}
	}
	p := addr &^ (mem.PageSize - 1)
	if _, ok := r.hotPages[p]; ok || len(r.hotPages) < maxHotPages {
		r.hotPages[p] = r.stats.Samples
	}
	return p
}

// hotCodeRegions lists the headers of the code objects the last samples
// validated, for the next sample's first batch: a stack of another shape
// than the previous sample's (a function returned, another called) then
// still meets its code objects in that batch instead of reading each on
// its own, after the frames.
func (r *Reader) hotCodeRegions() []mem.Region {
	keep := r.hot[:0]
	r.hotRegions = r.hotRegions[:0]
	for _, ci := range r.hot {
		if r.stats.Samples-ci.validated >= hotSamples || ci.hotMark == r.stats.Samples+1 || len(keep) >= maxHot {
			continue
		}
		ci.hotMark = r.stats.Samples + 1
		keep = append(keep, ci)
		r.hotRegions = append(r.hotRegions, mem.Region{Addr: ci.addr, Len: r.codeHeader})
	}
	r.hot = keep
	return r.hotRegions
}

// maxPushScan bounds the bytecode read to find a code object's call sites.
const maxPushScan = 64 << 10

// mayPush reports whether a frame of ci suspended at byte offset addrq
// can have pushed the frame it called. Whatever cannot be told (no opcode
// table for the version, bytecode too long or unreadable, instructions
// whose opcode is kept elsewhere) counts as able to.
func (r *Reader) mayPush(ci *codeInfo, addrq int) bool {
	r.decodeUnits(ci)
	v, ok := unitBit(ci.pushes, addrq)
	return v || !ok
}

// isCall reports whether a frame of ci suspended at byte offset addrq is
// in a call (pyversions.OpCall), false where that cannot be told.
func (r *Reader) isCall(ci *codeInfo, addrq int) bool {
	r.decodeUnits(ci)
	v, ok := unitBit(ci.calls, addrq)
	return v && ok
}

// decodeUnits decodes ci's bitmaps of code units on first need.
func (r *Reader) decodeUnits(ci *codeInfo) {
	if !ci.pushesRead {
		ci.pushesRead = true
		if r.ops != nil {
			ci.pushes, ci.calls = r.decodePushes(ci)
		}
	}
}

// unitBit returns the bit of bits for the code unit at byte offset addrq,
// and whether bits tells it at all.
func unitBit(bits []uint64, addrq int) (v, ok bool) {
	u := addrq / 2
	if bits == nil || addrq < 0 || u >= len(bits)*64 {
		return false, false
	}
	return bits[u/64]&(1<<(u%64)) != 0, true
}

// decodePushes walks ci's bytecode instruction by instruction (an opcode,
// its argument, then its inline cache units) and marks every unit of the
// instructions that may push a frame, and of those that are calls.
func (r *Reader) decodePushes(ci *codeInfo) (pushes, calls []uint64) {
	if ci.codeLen <= 0 || ci.codeLen > maxPushScan {
		return nil, nil
	}
	code, err := r.cache.Bytes(ci.codeStart, uint64(ci.codeLen))
	if err != nil {
		return nil, nil
	}
	units := ci.codeLen / 2
	pushes, calls = make([]uint64, (units+63)/64), make([]uint64, (units+63)/64)
	for i := 0; i < units; {
		op := code[2*i]
		class, caches := r.ops.Class[op], int(r.ops.Caches[op])
		switch class {
		case pyversions.OpUnknown, pyversions.OpOpaque:
			return nil, nil
		case pyversions.OpPush, pyversions.OpCall:
			for j := i; j <= i+caches && j < units; j++ {
				pushes[j/64] |= 1 << (j % 64)
				if class == pyversions.OpCall {
					calls[j/64] |= 1 << (j % 64)
				}
			}
		}
		i += 1 + caches
	}
	return pushes, calls
}

// maxCodeUnits bounds a code object's bytecode; CPython's compiler stops
// far below it.
const maxCodeUnits = 1 << 24

// holds reports whether a frame's instruction offset (addrq, in bytes)
// lies in the code: a torn frame pairs a code object with another's
// instruction pointer. Offsets from -2 on are allowed, since 3.11's
// prev_instr points one unit before the first instruction until it runs,
// and f_lasti is -1 before the first instruction up to 3.10.
func (ci *codeInfo) holds(addrq int) bool {
	return ci.codeLen < 0 || addrq >= -2 && addrq < ci.codeLen
}

func (r *Reader) isCode(addr uint64, typ uint64) error {
	if r.codeType != 0 {
		if typ != r.codeType {
			return fmt.Errorf("object at %#x is not a code object", addr)
		}
		return nil
	}
	ti, err := r.typeInfo(typ)
	if err != nil {
		return fmt.Errorf("code object at %#x: %w", addr, err)
	}
	if ti.name != "code" {
		return fmt.Errorf("object at %#x is a %q, not a code object", addr, ti.name)
	}
	r.codeType = typ
	return nil
}

func (r *Reader) decodeCode(f *mem.Fields) (*codeInfo, error) {
	c := &r.l.Code
	addr := f.Addr()
	if err := r.isCode(addr, f.Ptr(r.l.Object.Type)); err != nil {
		return nil, err
	}
	ci := &codeInfo{
		addr:     addr,
		fn:       &Function{Code: addr, FirstLine: int(f.I32(c.Firstlineno))},
		argcount: int(f.I32(c.Argcount)),
		flags:    int(f.I32(c.Flags)),
		nlocals:  int(f.I32(c.Nlocals)),
	}
	if c.Kwonlyargcount >= 0 {
		ci.kwonly = int(f.I32(c.Kwonlyargcount))
	}
	if c.Nlocalsplus >= 0 {
		ci.nlocalsplus = int(f.I32(c.Nlocalsplus))
		ci.localsNames, ci.localsKinds = f.Ptr(c.Localsplusnames), f.Ptr(c.Localspluskinds)
	} else {
		ci.varnames, ci.cellvars, ci.freevars = f.Ptr(c.Varnames), f.Ptr(c.Cellvars), f.Ptr(c.Freevars)
	}
	ci.codeLen = -1
	if c.CodeAdaptive >= 0 {
		ci.codeStart = addr + uint64(c.CodeAdaptive)
		// From 3.11 the code object is a PyVarObject holding its
		// bytecode, ob_size counting 2-byte code units.
		if n := f.I64(r.l.Object.Size); n >= 0 && n <= maxCodeUnits {
			ci.codeLen = int(2 * n)
		}
	}
	if c.FirstTraceable >= 0 {
		ci.firstTraceable = int(f.I32(c.FirstTraceable))
	}
	namePtr, filePtr, linePtr := f.Ptr(c.Name), f.Ptr(c.Filename), f.Ptr(c.Linetable)
	if c.Code >= 0 {
		// Up to 3.10 the bytecode is a bytes object of its own.
		ci.codeBytes = f.Ptr(c.Code)
		if n, err := r.bytesLen(ci.codeBytes); err == nil && n <= 2*maxCodeUnits {
			ci.codeLen = n
		}
	}
	var qualPtr uint64
	if c.Qualname >= 0 {
		qualPtr = f.Ptr(c.Qualname)
	}
	if f.Err() != nil {
		return nil, f.Err()
	}
	var err error
	if ci.fn.ShortName, err = r.str(namePtr); err != nil {
		return nil, fmt.Errorf("code object at %#x: name: %w", addr, err)
	}
	ci.fn.Name = ci.fn.ShortName
	if qualPtr != 0 {
		if ci.fn.Name, err = r.str(qualPtr); err != nil {
			return nil, fmt.Errorf("code object at %#x: qualname: %w", addr, err)
		}
	}
	if ci.fn.Filename, err = r.str(filePtr); err != nil {
		return nil, fmt.Errorf("code object at %#x: filename: %w", addr, err)
	}
	table, more, err := r.bytesData(linePtr, maxLineTable)
	if err != nil {
		return nil, fmt.Errorf("code object at %#x: line table: %w", addr, err)
	}
	if more {
		return nil, fmt.Errorf("code object at %#x: line table over %d bytes", addr, maxLineTable)
	}
	first := int32(ci.fn.FirstLine)
	switch {
	case r.v.AtLeast(3, 11):
		ci.lines, err = parseLocations(table, first)
		if err != nil {
			return nil, fmt.Errorf("code object at %#x: %w", addr, err)
		}
	case r.v.AtLeast(3, 10):
		ci.lines = parseLinetable310(table, first)
	default:
		ci.lines = parseLnotab(table, first, !r.py2)
	}
	return ci, nil
}
