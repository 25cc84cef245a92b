package bytecode

import "github.com/pyprof/pyprof/pyversions"

// Code flags (co_flags) that change how a code object's bytecode starts,
// or mark a frame that always has a caller while it runs: a generator's,
// a coroutine's, an async generator's (CO_GENERATOR, CO_COROUTINE,
// CO_ITERABLE_COROUTINE, CO_ASYNC_GENERATOR).
const (
	CoGenerator         = 0x20
	CoCoroutine         = 0x80
	CoIterableCoroutine = 0x100
	CoAsyncGenerator    = 0x200
)

// maxStackDepth bounds the value stack depth the analysis accepts;
// CPython's compiler rejects code far shallower.
const maxStackDepth = 1 << 14

// StackDepths computes, for bytecode before 3.11, the depth of the value
// stack before each code unit's instruction (for an instruction with
// EXTENDED_ARG prefixes, at each prefix), -1 where no path reaches, as
// CPython's compiler did when it sized the frame's stack: from the first
// instruction at depth start, each instruction's effect along its
// fall-through and, with its jump effect, along its jump. Jump arguments
// count code units from 3.10 (unitJumps), bytes before. It returns nil for
// code it cannot follow (an unknown opcode, a jump outside the code, two
// paths that meet at different depths): no depth is better than a wrong
// one.
func StackDepths(code []byte, se *pyversions.StackEffects, unitJumps bool, start int) []int16 {
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

// CallSlots returns, for the instruction at code unit u of code whose
// stack depths are depth, the value stack slots that may hold what it
// calls: the callable, and for CALL_METHOD first the method slot (NULL
// when the call is not a method call). ok is false where the instruction
// is no call or its depth is unknown.
func CallSlots(code []byte, depth []int16, se *pyversions.StackEffects, u int) (method, callable int, ok bool) {
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

// StartDepth is the depth of a code object's stack at its first
// instruction: 3.10's generators and coroutines start with the value their
// first send pushed, which GEN_START pops.
func StartDepth(v pyversions.Version, flags int) int {
	if v.AtLeast(3, 10) && flags&(CoGenerator|CoCoroutine|CoAsyncGenerator) != 0 {
		return 1
	}
	return 0
}

// OpAt returns the opcode of the instruction at code unit u, past its
// EXTENDED_ARG prefixes (f_lasti names the first prefix).
func OpAt(code []byte, se *pyversions.StackEffects, u int) (uint8, bool) {
	for units := len(code) / 2; u >= 0 && u < units; u++ {
		if op := code[2*u]; op != se.ExtendedArg {
			return op, true
		}
	}
	return 0, false
}

// KeptArgs returns how many of the argcount leading arguments code never
// stores to or deletes. An argument that is also a cell variable moves
// into its cell as the frame starts, so code with cells keeps none.
func KeptArgs(code []byte, se *pyversions.StackEffects, argcount, cells int) int {
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

// UnitBit returns the bit of bits for the code unit at byte offset addrq,
// and whether bits tells it at all.
func UnitBit(bits []uint64, addrq int) (v, ok bool) {
	u := addrq / 2
	if bits == nil || addrq < 0 || u >= len(bits)*64 {
		return false, false
	}
	return bits[u/64]&(1<<(u%64)) != 0, true
}

// Pushes walks 3.11+ bytecode instruction by instruction (an opcode, its
// argument, then its inline cache units) and marks every code unit of the
// instructions that may push a frame, and of those that are calls
// (pyversions.OpCall). It returns nil for bytecode it cannot follow (an
// opcode the table does not know, or one whose real opcode is kept
// elsewhere): no mark is better than a wrong one.
func Pushes(code []byte, ops *pyversions.Opcodes) (pushes, calls []uint64) {
	units := len(code) / 2
	pushes, calls = make([]uint64, (units+63)/64), make([]uint64, (units+63)/64)
	for i := 0; i < units; {
		op := code[2*i]
		class, caches := ops.Class[op], int(ops.Caches[op])
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
