package pyspy

import (
	"github.com/pyprof/pyprof/pyspy/bytecode"
	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

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
func (j *judge) checkCallee(addr uint64, ci *pyobj.Code, addrq int, callee *frames.Link) int {
	se, cs := j.dec.Facts().StackEffects, j.codes.CallSites(ci)
	if cs == nil || addrq < 0 {
		return callUnknown
	}
	op, ok := bytecode.OpAt(cs.Code, se, addrq/2)
	if ok && se.Pure[op] {
		return callTorn
	}
	method, callable, ok := bytecode.CallSlots(cs.Code, cs.Depth, se, addrq/2)
	if !ok {
		return callUnknown
	}
	base := addr + uint64(j.l.Frame.Localsplus) + cs.StackOff
	slot := func(i int) (uint64, bool) {
		a := base + 8*uint64(i)
		// A caller's stack may lie past the page of its frame's
		// header: the next samples' first batch reads that page too.
		j.hotWord(a)
		b := j.cache.Held(a, 8)
		if b == nil {
			return 0, false
		}
		return mem.LE64(b), true
	}
	// args is the slot of the first value the callee's frame got as its
	// first argument, and nargs how many it got in a row, when that is
	// known.
	args, nargs := -1, 0
	if se.Call[op] == pyversions.CallPositional {
		args, nargs = callable+1, int(cs.Depth[addrq/2])-callable-1
	}
	if method >= 0 {
		if m, ok := slot(method); !ok {
			return callUnknown
		} else if m != 0 {
			// LOAD_METHOD found a method: the function itself, then
			// self and the arguments.
			callable = method
			args, nargs = method+1, int(cs.Depth[addrq/2])-method-1
		} else {
			args, nargs = callable+1, int(cs.Depth[addrq/2])-callable-1
		}
	}
	p, ok := slot(callable)
	if !ok || p == 0 {
		return callUnknown
	}
	code, known, plain := j.codes.CallableCode(p, false)
	if known && code != callee.Code {
		// A function object freed and another made at its address:
		// ask the target again before calling the stack torn.
		code, known, plain = j.codes.CallableCode(p, true)
	}
	switch {
	case !known:
		return callUnknown
	case code != callee.Code:
		return callTorn
	}
	// A frame of the right code may still be another call's (a
	// recursion read at two depths): where the callee cannot have
	// rebound them, its arguments are the values on the caller's stack.
	if cci, ok := j.codes.Cached(callee.Code); ok && plain && args >= 0 && nargs > 0 {
		if ccs := j.codes.CallSites(cci); ccs != nil {
			n := uint64(min(nargs, ccs.ArgsKept, maxCheckedArgs))
			mine := j.cache.Held(base+8*uint64(args), 8*n)
			theirs := j.cache.Held(callee.Addr+uint64(j.l.Frame.Localsplus), 8*n)
			if n > 0 && mine != nil && theirs != nil && string(mine) != string(theirs) {
				return callTorn
			}
		}
	}
	return callConfirmed
}

// maxCheckedArgs bounds the arguments compared per call.
const maxCheckedArgs = 4
