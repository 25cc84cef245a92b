package pyspy

import (
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyversions"
)

// maxStackDepth bounds the value stack depth the analysis accepts;
// CPython's compiler rejects code far shallower.
const maxStackDepth = 1 << 14

// stackDepths computes, for bytecode before 3.11, the depth of the value
// stack before each code unit's instruction (for an instruction with
// EXTENDED_ARG prefixes, at each prefix), -1 where no path reaches, as
// CPython's compiler did when it sized the frame's stack: from the first
// instruction at depth start, each instruction's effect along its
// fall-through and, with its jump effect, along its jump. Jump arguments
// count code units from 3.10 (unitJumps), bytes before. It returns nil for
// code it cannot follow (an unknown opcode, a jump outside the code, two
// paths that meet at different depths): no depth is better than a wrong
// one.
func stackDepths(code []byte, se *pyversions.StackEffects, unitJumps bool, start int) []int16 {
	units := len(code) / 2
	if units == 0 || se == nil {
		return nil
	}
	depth := make([]int16, units)
	for i := range depth {
		depth[i] = -1
	}
	type entry struct{ unit, depth int }
	work := []entry{{0, start}}
	for steps := 0; len(work) > 0; {
		e := work[len(work)-1]
		work = work[:len(work)-1]
		ext := 0
		for i, d := e.unit, e.depth; i < units; i++ {
			if steps++; steps > 4*units+16 {
				return nil
			}
			if d < 0 || d > maxStackDepth {
				return nil
			}
			if depth[i] >= 0 && ext == 0 {
				if int(depth[i]) != d {
					return nil
				}
				break
			}
			depth[i] = int16(d)
			op, arg := code[2*i], int(code[2*i+1])|ext
			if !se.Known[op] {
				return nil
			}
			if op == se.ExtendedArg {
				ext = arg << 8
				continue
			}
			ext = 0
			if kind := se.Jump[op]; kind != pyversions.JumpNone {
				t := arg
				if !unitJumps {
					t /= 2
				}
				if kind == pyversions.JumpRel {
					t += i + 1
				}
				eff, ok := se.Effect[op][1].Of(arg)
				if !ok || t < 0 || t >= units {
					return nil
				}
				work = append(work, entry{t, d + eff})
			}
			if se.Stops[op] {
				break
			}
			eff, ok := se.Effect[op][0].Of(arg)
			if d += eff; !ok || d < 0 {
				return nil
			}
		}
	}
	return depth
}

// callSlots returns, for the instruction at code unit u of code whose
// stack depths are depth, the value stack slots that may hold what it
// calls: the callable, and for CALL_METHOD first the method slot (NULL
// when the call is not a method call). ok is false where the instruction
// is no call or its depth is unknown.
func callSlots(code []byte, depth []int16, se *pyversions.StackEffects, u int) (method, callable int, ok bool) {
	units := len(code) / 2
	if u < 0 || u >= units || u >= len(depth) || depth[u] < 0 {
		return 0, 0, false
	}
	d := int(depth[u])
	arg := 0
	for ; u < units && code[2*u] == se.ExtendedArg; u++ {
		arg = (arg | int(code[2*u+1])) << 8
	}
	if u >= units {
		return 0, 0, false
	}
	op := code[2*u]
	arg |= int(code[2*u+1])
	method = -1
	switch se.Call[op] {
	case pyversions.CallPositional:
		callable = d - arg - 1
	case pyversions.CallKw:
		callable = d - arg - 2
	case pyversions.CallEx:
		callable = d - 2 - arg&1
	case pyversions.CallMethod:
		method, callable = d-arg-2, d-arg-1
		if method < 0 {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	return method, callable, callable >= 0
}

// startDepth is the depth of a code object's stack at its first
// instruction: 3.10's generators and coroutines start with the value their
// first send pushed, which GEN_START pops.
func startDepth(v pyversions.Version, flags int) int {
	if v.AtLeast(3, 10) && flags&(coGenerator|coCoroutine|coAsyncGenerator) != 0 {
		return 1
	}
	return 0
}

// opAt returns the opcode of the instruction at code unit u, past its
// EXTENDED_ARG prefixes (f_lasti names the first prefix).
func opAt(code []byte, se *pyversions.StackEffects, u int) (uint8, bool) {
	for units := len(code) / 2; u >= 0 && u < units; u++ {
		if op := code[2*u]; op != se.ExtendedArg {
			return op, true
		}
	}
	return 0, false
}

// callState is what the callable check learnt of a code object (before
// 3.11), decoded on first need: its bytecode, the stack depth at each code
// unit, and where its value stack begins in its frames.
type callState struct {
	code  []byte
	depth []int16
	// stackOff is the offset of the value stack from a frame's
	// f_localsplus: past the locals, cells and free variables.
	stackOff uint64
	// argsKept counts the leading arguments the code never rebinds or
	// deletes, which therefore hold, while a frame of it runs, what its
	// caller passed.
	argsKept int
}

// keptArgs returns how many of the argcount leading arguments code never
// stores to or deletes. An argument that is also a cell variable moves
// into its cell as the frame starts, so code with cells keeps none.
func keptArgs(code []byte, se *pyversions.StackEffects, argcount, cells int) int {
	if cells > 0 {
		return 0
	}
	kept, ext := argcount, 0
	for u := 0; u+1 < len(code); u += 2 {
		op, arg := code[u], int(code[u+1])|ext
		if ext = 0; op == se.ExtendedArg {
			ext = arg << 8
			continue
		}
		if se.StoresLocal[op] && arg < kept {
			kept = arg
		}
	}
	return max(kept, 0)
}

// maxCallScan bounds the bytecode the callable check analyses.
const maxCallScan = 1 << 16

// callState returns ci's, or nil where the check cannot be made.
func (r *Reader) callState(ci *codeInfo) *callState {
	if ci.callRead {
		return ci.call
	}
	ci.callRead = true
	if r.effects == nil || ci.codeBytes == 0 || ci.codeLen <= 0 || ci.codeLen > maxCallScan {
		return nil
	}
	code, _, err := r.bytesData(ci.codeBytes, maxCallScan)
	if err != nil || len(code) != ci.codeLen {
		return nil
	}
	code = append([]byte(nil), code...)
	depth := stackDepths(code, r.effects, r.v.AtLeast(3, 10), startDepth(r.v, ci.flags))
	if depth == nil {
		return nil
	}
	cells, err1 := r.tupleLen(ci.cellvars)
	frees, err2 := r.tupleLen(ci.freevars)
	if err1 != nil || err2 != nil || ci.nlocals < 0 || ci.nlocals+cells+frees > maxLocals {
		return nil
	}
	ci.call = &callState{code: code, depth: depth, stackOff: 8 * uint64(ci.nlocals+cells+frees),
		argsKept: keptArgs(code, r.effects, min(ci.argcount, ci.nlocals), cells)}
	return ci.call
}

// Verdicts of the callable check.
const (
	callUnknown   = iota // nothing tells
	callTorn             // the caller cannot have called the frame above it
	callConfirmed        // the caller's callable runs the code of the frame above it
)

// checkCallee tells whether the frame object at addr, of code ci and at
// byte offset addrq, may have called the frame the walk read above it
// (callee): not when it stands at an instruction that calls no Python
// code (see pyversions.StackEffects.Pure); when it is in a call of a
// function (or of a method of one), only if that function runs the
// callee's code and passed it the arguments it holds; otherwise (a type, a
// builtin, an operator, which may all call Python code from C) it cannot
// be told. A frame that called one function and is seen above another's
// frame was read at two moments: the frame above is a later or an earlier
// call's. Without stack effects (before 3.8) nothing is told.
func (r *Reader) checkCallee(addr uint64, ci *codeInfo, addrq int, callee *link) int {
	cs := r.callState(ci)
	if cs == nil || addrq < 0 {
		return callUnknown
	}
	op, ok := opAt(cs.code, r.effects, addrq/2)
	if ok && r.effects.Pure[op] {
		return callTorn
	}
	method, callable, ok := callSlots(cs.code, cs.depth, r.effects, addrq/2)
	if !ok {
		return callUnknown
	}
	base := addr + uint64(r.l.Frame.Localsplus) + cs.stackOff
	slot := func(i int) (uint64, bool) {
		a := base + 8*uint64(i)
		// A caller's stack may lie past the page of its frame's
		// header: the next samples' first batch reads that page too.
		r.hotWord(a)
		b := r.cache.Held(a, 8)
		if b == nil {
			return 0, false
		}
		return mem.LE64(b), true
	}
	// args is the slot of the first value the callee's frame got as its
	// first argument, and nargs how many it got in a row, when that is
	// known.
	args, nargs := -1, 0
	if r.effects.Call[op] == pyversions.CallPositional {
		args, nargs = callable+1, int(cs.depth[addrq/2])-callable-1
	}
	if method >= 0 {
		if m, ok := slot(method); !ok {
			return callUnknown
		} else if m != 0 {
			// LOAD_METHOD found a method: the function itself, then
			// self and the arguments.
			callable = method
			args, nargs = method+1, int(cs.depth[addrq/2])-method-1
		} else {
			args, nargs = callable+1, int(cs.depth[addrq/2])-callable-1
		}
	}
	p, ok := slot(callable)
	if !ok || p == 0 {
		return callUnknown
	}
	code, known, plain := r.calleeCode(p, false)
	if known && code != callee.code {
		// A function object freed and another made at its address:
		// ask the target again before calling the stack torn.
		code, known, plain = r.calleeCode(p, true)
	}
	switch {
	case !known:
		return callUnknown
	case code != callee.code:
		return callTorn
	}
	// A frame of the right code may still be another call's (a
	// recursion read at two depths): where the callee cannot have
	// rebound them, its arguments are the values on the caller's stack.
	if cci, ok := r.codes[callee.code]; ok && plain && args >= 0 && nargs > 0 {
		if ccs := r.callState(cci); ccs != nil {
			n := uint64(min(nargs, ccs.argsKept, maxCheckedArgs))
			mine := r.cache.Held(base+8*uint64(args), 8*n)
			theirs := r.cache.Held(callee.addr+uint64(r.l.Frame.Localsplus), 8*n)
			if n > 0 && mine != nil && theirs != nil && string(mine) != string(theirs) {
				return callTorn
			}
		}
	}
	return callConfirmed
}

// maxCheckedArgs bounds the arguments compared per call.
const maxCheckedArgs = 4

// calleeCode returns the code object that calling the object at p runs
// first: a function's (plain), or a bound method's function's; known is
// false for any other callable (a type, a builtin, an instance with
// __call__). The answers are cached by address; fresh asks the target
// again.
func (r *Reader) calleeCode(p uint64, fresh bool) (code uint64, known, plain bool) {
	if c, ok := r.callees[p]; ok && !fresh {
		return c.code, c.known, c.plain
	}
	code, known, plain = r.readCalleeCode(p, 2)
	if r.callees == nil || len(r.callees) > 4096 {
		r.callees = map[uint64]calleeEntry{}
	}
	r.callees[p] = calleeEntry{code, known, plain}
	return code, known, plain
}

type calleeEntry struct {
	code         uint64
	known, plain bool
}

func (r *Reader) readCalleeCode(p uint64, depth int) (code uint64, known, plain bool) {
	// PyFunctionObject's func_code and PyMethodObject's im_func follow
	// the object header (3.0–3.10).
	off := r.l.Object.Type + 8
	f, err := r.read(p, uint64(off+8), "callable")
	if err != nil {
		return 0, false, false
	}
	typ, next := f.Ptr(r.l.Object.Type), f.Ptr(off)
	if f.Err() != nil || typ == 0 || next == 0 {
		return 0, false, false
	}
	ti, err := r.typeInfo(typ)
	if err != nil || ti.heap {
		return 0, false, false
	}
	switch ti.name {
	case "function":
		return next, true, true
	case "method":
		if depth > 0 {
			code, known, _ = r.readCalleeCode(next, depth-1)
			return code, known, false
		}
	}
	return 0, false, false
}

// tupleLen returns the length of the tuple at addr (0 for NULL).
func (r *Reader) tupleLen(addr uint64) (int, error) {
	if addr == 0 {
		return 0, nil
	}
	f, err := r.read(addr, uint64(r.l.Object.Size+8), "tuple")
	if err != nil {
		return 0, err
	}
	n := f.I64(r.l.Object.Size)
	if f.Err() != nil {
		return 0, f.Err()
	}
	if n < 0 || n > maxLocals {
		return 0, badObject(addr, "tuple", "size %d", n)
	}
	return int(n), nil
}
