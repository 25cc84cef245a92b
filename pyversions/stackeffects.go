package pyversions

import "sort"

// StackEffects says, for one minor's bytecode before 3.11, what each
// opcode does to a frame's value stack and to control flow. Those versions
// keep a running frame's stack pointer in a C local of the evaluation
// loop, so a reader that needs to know where a caller's callable lies
// recomputes the stack depth at the call from the bytecode, as the
// compiler did when it sized the stack.
type StackEffects struct {
	// ExtendedArg is the opcode that prefixes an argument wider than a
	// byte.
	ExtendedArg uint8
	Known       [256]bool
	// Jump is JumpNone, JumpRel or JumpAbs: how the argument names the
	// instruction the opcode may jump to.
	Jump [256]uint8
	// Stops marks opcodes after which control never falls through.
	Stops [256]bool
	// Call is CallNone or how the opcode's operands hold the callable
	// it calls.
	Call [256]uint8
	// Pure marks opcodes that run no Python code and after which no
	// signal handler runs: a frame stopped at one calls no Python frame
	// (short of a finalizer or a Python trace function).
	Pure [256]bool
	// StoresLocal marks the opcodes that rebind or delete a fast local
	// (STORE_FAST, DELETE_FAST), its index their argument.
	StoresLocal [256]bool
	// Effect is the change of stack depth, without and with the jump.
	Effect [256][2]Effect
}

// Call kinds: CALL_FUNCTION (callable, args), CALL_FUNCTION_KW (callable,
// args, names), CALL_FUNCTION_EX (callable, args, kwargs if flagged) and
// CALL_METHOD (method or NULL, self or callable, args).
const (
	CallNone = iota
	CallPositional
	CallKw
	CallEx
	CallMethod
)

// Jump kinds.
const (
	JumpNone = iota
	JumpRel
	JumpAbs
)

// Effect is an opcode's change of stack depth for an argument: Base plus
// PerArg times the argument, or ByArg's entry where it is not affine.
type Effect struct {
	Base, PerArg int16
	ByArg        *[256]int8
}

// Of returns the effect for argument arg.
func (e Effect) Of(arg int) (int, bool) {
	if e.ByArg != nil {
		if arg < 0 || arg > 255 {
			return 0, false
		}
		return int(e.ByArg[arg]), true
	}
	return int(e.Base) + int(e.PerArg)*arg, true
}

// StackEffectsFor returns the table of minor ("3.9"), or nil for minors
// without one.
func StackEffectsFor(minor string) *StackEffects { return generatedStackEffects[minor] }

// StackEffectMinors lists the minors with a table.
func StackEffectMinors() []string {
	var out []string
	for m := range generatedStackEffects {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
