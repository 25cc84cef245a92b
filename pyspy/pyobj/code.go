package pyobj

import (
	"fmt"

	"github.com/pyprof/pyprof/pyspy/bytecode"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyversions"
)

// Function is what a frame runs: the immutable facts of a code object.
// Frames of the same code object share one Function, so a sample
// allocates no strings and profiles can key on the pointer.
type Function struct {
	// Name is the function's co_qualname where the version has one (3.11+)
	// and its co_name otherwise.
	Name string
	// ShortName is co_name.
	ShortName string
	// Filename is co_filename as the interpreter holds it.
	Filename string
	// FirstLine is the function's first line (co_firstlineno).
	FirstLine int
	// Code is the code object's address.
	Code uint64
}

// Code is a decoded code object. Code objects are immutable, so each is
// decoded once and then revalidated on every use by comparing the members
// it was decoded from: a freed code object whose memory was reused for
// another one fails the comparison. What is learnt of its bytecode (where
// it can push a frame, its stack depths) is kept with it.
type Code struct {
	addr  uint64
	check fingerprint // the compared members, as read
	// validated is the cache generation in which check was last
	// compared, and listed the one whose batch last listed the code as
	// recently used (see RecentHeaders).
	validated, listed int

	// fn is allocated on its own: callers keep the Functions of frames
	// (profiles, caches by pointer), and an interior pointer would keep
	// the whole Code, line table and bytecode with it, for every code
	// object of every process that has exited.
	fn    *Function
	lines *lineTable
	// start is the address of the first instruction (3.11+), from which
	// a frame's instruction pointer gives its offset.
	start          uint64
	firstTraceable int // in code units (3.11+)
	// length is the length of the bytecode in bytes, or -1 when unknown.
	length int
	// pushes marks the code units of instructions whose family can push
	// a frame (3.11+), decoded on first need; pushesRead says it was
	// tried, and a nil pushes then that it could not be.
	pushes     []uint64
	pushesRead bool
	// calls marks, among them, the units of calls (pyversions.OpCall).
	calls []uint64

	// codeBytes is the bytecode's bytes object (≤3.10), and call what
	// was learnt of the calls it makes (see CallSites), once callRead.
	codeBytes uint64
	call      *CallSites
	callRead  bool

	// For locals, decoded on first use.
	argcount, kwonly, flags, nlocals int
	nlocalsplus                      int
	varnames, cellvars, freevars     uint64 // tuples (≤3.10)
	localsNames, localsKinds         uint64 // 3.11+
	vars                             []localVar
	varsErr                          error
}

// Addr is the code object's address.
func (c *Code) Addr() uint64 { return c.addr }

// Function is what frames of the code run.
func (c *Code) Function() *Function { return c.fn }

// Start is the address of the first instruction (3.11+).
func (c *Code) Start() uint64 { return c.start }

// Len is the length of the bytecode in bytes, or -1 when unknown.
func (c *Code) Len() int { return c.length }

// FirstTraceable is the code unit of the first instruction a traceback
// shows (3.11+): a frame before it is "incomplete", hidden by CPython.
func (c *Code) FirstTraceable() int { return c.firstTraceable }

// Flags are co_flags.
func (c *Code) Flags() int { return c.flags }

// NLocals is co_nlocals.
func (c *Code) NLocals() int { return c.nlocals }

// IsGenerator reports whether the code is a generator's, a coroutine's or
// an async generator's, whose frames always have a caller while they run.
func (c *Code) IsGenerator() bool {
	return c.flags&(bytecode.CoGenerator|bytecode.CoCoroutine|bytecode.CoIterableCoroutine|bytecode.CoAsyncGenerator) != 0
}

// Line returns the line of the instruction at byte offset at, as
// frame.f_lineno would give it, or 0 where the table gives none.
func (c *Code) Line(at int) int {
	return max(c.lines.line(at), 0)
}

// Holds reports whether a frame's instruction offset (at, in bytes) lies
// in the code: a torn frame pairs a code object with another's
// instruction pointer. Offsets from -2 on are allowed, since 3.11's
// prev_instr points one unit before the first instruction until it runs,
// and f_lasti is -1 before the first instruction up to 3.10.
func (c *Code) Holds(at int) bool {
	return c.length < 0 || at >= -2 && at < c.length
}

// Codes decodes the code objects of one process and keeps them: code
// objects are immutable, so each is decoded once and then compared again
// with the target, from its header alone, once in each generation of the
// read cache (each sample begun) before it is trusted. With them it keeps
// what their bytecode says (where a frame can push another, the calls it
// makes) and the names of their locals. It is not safe for concurrent use.
type Codes struct {
	d     *Decoder
	c     *mem.Cache
	facts *Facts
	l     *pyversions.Layout
	v     pyversions.Version
	py2   bool
	// codes are the code objects decoded, lastCode the one last
	// validated, and recent those validated lately (see RecentHeaders).
	codes    map[uint64]*Code
	lastCode *Code
	recent   []*Code
	misses   int
	// callees caches what callables run (see CallableCode).
	callees map[uint64]calleeEntry
	// codeType is learnt from the first valid code object and lets
	// later reads reject pointers to something else.
	codeType uint64
}

// NewCodes returns the code objects of the process whose objects d
// decodes, read through the same cache.
func NewCodes(d *Decoder) *Codes {
	return &Codes{d: d, c: d.c, facts: d.facts, l: d.l, v: d.v, py2: d.py2, codes: map[uint64]*Code{}}
}

// fingerprint holds the members whose values identify a code object: its
// type, the pointers to its names and line table, and its first line.
type fingerprint [6]uint64

func (cs *Codes) fingerprint(f *mem.Fields) fingerprint {
	c := &cs.l.Code
	var fp fingerprint
	for i, off := range [...]int64{cs.l.Object.Type, c.Name, c.Filename, c.Qualname, c.Linetable} {
		if off >= 0 {
			fp[i] = f.Ptr(off)
		}
	}
	fp[5] = uint64(f.U32(c.Firstlineno))
	return fp
}

// maxCodes bounds the code cache. Long-running targets that keep creating
// code (exec, lambdas in loops) would otherwise grow it forever.
const maxCodes = 1 << 16

// Code returns the decoded code object at addr.
func (cs *Codes) Code(addr uint64) (*Code, error) {
	if addr == 0 || addr%8 != 0 {
		return nil, fmt.Errorf("bad code object pointer %#x", addr)
	}
	// A code object validated earlier in this generation of the cache
	// needs no second look: recursion meets the same one at every level.
	gen := cs.c.Generation()
	if ci := cs.lastCode; ci != nil && ci.addr == addr && ci.validated == gen {
		return ci, nil
	}
	if ci, ok := cs.codes[addr]; ok && ci.validated == gen {
		cs.lastCode = ci
		return ci, nil
	}
	b, err := cs.c.Exact(addr, cs.facts.CodeHeader)
	if err != nil {
		return nil, fmt.Errorf("code object: %w", err)
	}
	f := mem.NewFields(b, addr, "code object")
	fp := cs.fingerprint(&f)
	if f.Err() != nil {
		return nil, f.Err()
	}
	if ci, ok := cs.codes[addr]; ok && ci.check == fp {
		ci.validated = gen
		cs.lastCode = ci
		cs.recent = append(cs.recent, ci)
		return ci, nil
	}
	cs.misses++
	ci, err := cs.decodeCode(&f)
	if err != nil {
		return nil, err
	}
	ci.check, ci.validated = fp, gen
	if len(cs.codes) >= maxCodes {
		clear(cs.codes)
		cs.recent = cs.recent[:0]
	}
	cs.codes[addr] = ci
	cs.recent = append(cs.recent, ci)
	return ci, nil
}

// Cached returns the code object at addr as last decoded, without
// reading the target: for a caller that met it in this sample already.
func (cs *Codes) Cached(addr uint64) (*Code, bool) {
	c, ok := cs.codes[addr]
	return c, ok
}

// Misses counts the code objects decoded rather than served from the
// cache.
func (cs *Codes) Misses() int { return cs.misses }

// Recently used code objects are those validated in the last
// recentGenerations generations of the cache, at most maxRecent of them.
const (
	recentGenerations = 32
	maxRecent         = 512
)

// RecentHeaders appends to dst the headers of the code objects validated
// in the last recentGenerations generations of the cache, each once, at
// most maxRecent. A sampler reads them in its next sample's first batch:
// a stack of another shape than the previous sample's (a function
// returned, another called) then still meets its code objects in that
// batch instead of reading each on its own, after the frames.
func (cs *Codes) RecentHeaders(dst []mem.Region) []mem.Region {
	gen := cs.c.Generation()
	keep := cs.recent[:0]
	for _, ci := range cs.recent {
		if gen-ci.validated >= recentGenerations || ci.listed == gen+1 || len(keep) >= maxRecent {
			continue
		}
		ci.listed = gen + 1
		keep = append(keep, ci)
		dst = append(dst, mem.Region{Addr: ci.addr, Len: cs.facts.CodeHeader})
	}
	cs.recent = keep
	return dst
}

// Offset turns a frame's instruction, as the frame holds it, into a byte
// offset into its code: from 3.11 an instruction pointer, before f_lasti,
// which 3.10 counts in 2-byte code units and earlier versions in bytes.
func (cs *Codes) Offset(c *Code, instr uint64) int {
	if cs.l.IFrame.Code >= 0 {
		return int(int64(instr - c.start))
	}
	lasti := int(int32(uint32(instr)))
	if cs.v.AtLeast(3, 10) && lasti >= 0 {
		return lasti * 2
	}
	return lasti
}

// maxPushScan bounds the bytecode read to find a code object's call sites.
const maxPushScan = 64 << 10

// MayPush reports whether a frame of c suspended at byte offset at can
// have pushed the frame it called (3.11+). Whatever cannot be told (no
// opcode table for the version, bytecode too long or unreadable,
// instructions whose opcode is kept elsewhere) counts as able to.
func (cs *Codes) MayPush(c *Code, at int) bool {
	cs.decodeUnits(c)
	v, ok := bytecode.UnitBit(c.pushes, at)
	return v || !ok
}

// InCall reports whether a frame of c suspended at byte offset at is in
// a call (pyversions.OpCall, 3.11+), false where that cannot be told.
func (cs *Codes) InCall(c *Code, at int) bool {
	cs.decodeUnits(c)
	v, ok := bytecode.UnitBit(c.calls, at)
	return v && ok
}

// decodeUnits decodes c's bitmaps of code units on first need.
func (cs *Codes) decodeUnits(c *Code) {
	if c.pushesRead {
		return
	}
	c.pushesRead = true
	if cs.facts.Opcodes == nil || c.length <= 0 || c.length > maxPushScan {
		return
	}
	code, err := cs.c.Bytes(c.start, uint64(c.length))
	if err != nil {
		return
	}
	c.pushes, c.calls = bytecode.Pushes(code, cs.facts.Opcodes)
}

// maxCodeUnits bounds a code object's bytecode; CPython's compiler stops
// far below it.
const maxCodeUnits = 1 << 24

// IsCode checks that typ, the type of the object at addr, is the code
// type.
func (cs *Codes) IsCode(addr uint64, typ uint64) error {
	if cs.codeType != 0 {
		if typ != cs.codeType {
			return fmt.Errorf("object at %#x is not a code object", addr)
		}
		return nil
	}
	ti, err := cs.d.typeInfo(typ)
	if err != nil {
		return fmt.Errorf("code object at %#x: %w", addr, err)
	}
	if ti.name != "code" {
		return fmt.Errorf("object at %#x is a %q, not a code object", addr, ti.name)
	}
	cs.codeType = typ
	return nil
}

func (cs *Codes) decodeCode(f *mem.Fields) (*Code, error) {
	c := &cs.l.Code
	addr := f.Addr()
	if err := cs.IsCode(addr, f.Ptr(cs.l.Object.Type)); err != nil {
		return nil, err
	}
	ci := &Code{
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
	ci.length = -1
	if c.CodeAdaptive >= 0 {
		ci.start = addr + uint64(c.CodeAdaptive)
		// From 3.11 the code object is a PyVarObject holding its
		// bytecode, ob_size counting 2-byte code units.
		if n := f.I64(cs.l.Object.Size); n >= 0 && n <= maxCodeUnits {
			ci.length = int(2 * n)
		}
	}
	if c.FirstTraceable >= 0 {
		ci.firstTraceable = int(f.I32(c.FirstTraceable))
	}
	namePtr, filePtr, linePtr := f.Ptr(c.Name), f.Ptr(c.Filename), f.Ptr(c.Linetable)
	if c.Code >= 0 {
		// Up to 3.10 the bytecode is a bytes object of its own.
		ci.codeBytes = f.Ptr(c.Code)
		if n, err := cs.d.bytesLen(ci.codeBytes); err == nil && n <= 2*maxCodeUnits {
			ci.length = n
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
	if ci.fn.ShortName, err = cs.d.Str(namePtr); err != nil {
		return nil, fmt.Errorf("code object at %#x: name: %w", addr, err)
	}
	ci.fn.Name = ci.fn.ShortName
	if qualPtr != 0 {
		if ci.fn.Name, err = cs.d.Str(qualPtr); err != nil {
			return nil, fmt.Errorf("code object at %#x: qualname: %w", addr, err)
		}
	}
	if ci.fn.Filename, err = cs.d.Str(filePtr); err != nil {
		return nil, fmt.Errorf("code object at %#x: filename: %w", addr, err)
	}
	table, more, err := cs.d.Bytes(linePtr, maxLineTable)
	if err != nil {
		return nil, fmt.Errorf("code object at %#x: line table: %w", addr, err)
	}
	if more {
		return nil, fmt.Errorf("code object at %#x: line table over %d bytes", addr, maxLineTable)
	}
	first := int32(ci.fn.FirstLine)
	switch {
	case cs.v.AtLeast(3, 11):
		ci.lines, err = parseLocations(table, first)
		if err != nil {
			return nil, fmt.Errorf("code object at %#x: %w", addr, err)
		}
	case cs.v.AtLeast(3, 10):
		ci.lines = parseLinetable310(table, first)
	default:
		ci.lines = parseLnotab(table, first, !cs.py2)
	}
	return ci, nil
}

// NLocalsPlus is co_nlocalsplus (3.11+): the slots of locals, cells and
// free variables before a frame's value stack.
func (c *Code) NLocalsPlus() int { return c.nlocalsplus }
