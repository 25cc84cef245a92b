package pyobj

import (
	"github.com/pyprof/pyprof/pyspy/bytecode"
)

// CallSites is what a code object's bytecode says of the calls its frames
// make (before 3.11, whose frames do not say which function they called),
// decoded on first need: the bytecode, the stack depth at each code unit,
// and where the value stack begins in its frames.
type CallSites struct {
	// Code is the bytecode, copied out of the cache.
	Code []byte
	// Depth is the value stack's depth before each code unit
	// (bytecode.StackDepths).
	Depth []int16
	// StackOff is the offset of the value stack from a frame's
	// f_localsplus: past the locals, cells and free variables.
	StackOff uint64
	// ArgsKept counts the leading arguments the code never rebinds or
	// deletes, which therefore hold, while a frame of it runs, what its
	// caller passed.
	ArgsKept int
}

// maxCallScan bounds the bytecode analysed for call sites.
const maxCallScan = 1 << 16

// CallSites returns c's, or nil where they cannot be told (no stack
// effects for the version, bytecode too long or not followed).
func (cs *Codes) CallSites(c *Code) *CallSites {
	if c.callRead {
		return c.call
	}
	c.callRead = true
	se := cs.facts.StackEffects
	if se == nil || c.codeBytes == 0 || c.length <= 0 || c.length > maxCallScan {
		return nil
	}
	code, _, err := cs.d.Bytes(c.codeBytes, maxCallScan)
	if err != nil || len(code) != c.length {
		return nil
	}
	code = append([]byte(nil), code...)
	depth := bytecode.StackDepths(code, se, cs.v.AtLeast(3, 10), bytecode.StartDepth(cs.v, c.flags))
	if depth == nil {
		return nil
	}
	cells, err1 := cs.tupleLen(c.cellvars)
	frees, err2 := cs.tupleLen(c.freevars)
	if err1 != nil || err2 != nil || c.nlocals < 0 || c.nlocals+cells+frees > maxLocals {
		return nil
	}
	c.call = &CallSites{Code: code, Depth: depth, StackOff: 8 * uint64(c.nlocals+cells+frees),
		ArgsKept: bytecode.KeptArgs(code, se, min(c.argcount, c.nlocals), cells)}
	return c.call
}

// CallableCode returns the code object that calling the object at p runs
// first (3.0–3.10): a function's (plain), or a bound method's function's;
// known is false for any other callable (a type, a builtin, an instance
// with __call__). The answers are cached by address; fresh asks the
// target again.
func (cs *Codes) CallableCode(p uint64, fresh bool) (code uint64, known, plain bool) {
	if c, ok := cs.callees[p]; ok && !fresh {
		return c.code, c.known, c.plain
	}
	code, known, plain = cs.readCallableCode(p, 2)
	if cs.callees == nil || len(cs.callees) > 4096 {
		cs.callees = map[uint64]calleeEntry{}
	}
	cs.callees[p] = calleeEntry{code, known, plain}
	return code, known, plain
}

type calleeEntry struct {
	code         uint64
	known, plain bool
}

func (cs *Codes) readCallableCode(p uint64, depth int) (code uint64, known, plain bool) {
	// PyMethodObject's im_func follows the object header, and so does
	// PyFunctionObject's func_code up to 3.9; 3.10 puts func_globals,
	// func_builtins, func_name and func_qualname before it.
	imFunc, funcCode := cs.l.Object.Type+8, cs.l.Object.Type+8
	if cs.v.AtLeast(3, 10) {
		funcCode += 4 * 8
	}
	f, err := cs.d.Read(p, uint64(max(imFunc, funcCode)+8), "callable")
	if err != nil {
		return 0, false, false
	}
	typ := f.Ptr(cs.l.Object.Type)
	if f.Err() != nil || typ == 0 {
		return 0, false, false
	}
	ti, err := cs.d.typeInfo(typ)
	if err != nil || ti.heap {
		return 0, false, false
	}
	switch ti.name {
	case "function":
		if code := f.Ptr(funcCode); code != 0 {
			return code, true, true
		}
	case "method":
		if next := f.Ptr(imFunc); depth > 0 && next != 0 {
			code, known, _ = cs.readCallableCode(next, depth-1)
			return code, known, false
		}
	}
	return 0, false, false
}

// tupleLen returns the length of the tuple at addr (0 for NULL).
func (cs *Codes) tupleLen(addr uint64) (int, error) {
	if addr == 0 {
		return 0, nil
	}
	f, err := cs.d.Read(addr, uint64(cs.l.Object.Size+8), "tuple")
	if err != nil {
		return 0, err
	}
	n := f.I64(cs.l.Object.Size)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if n < 0 || n > maxLocals {
		return 0, badObject(addr, "tuple", "size %d", n)
	}
	return int(n), nil
}
