package pyversions

import "sort"

// Opcodes says, for one minor version's bytecode, what each opcode value
// is to a stack reader: Class is OpUnknown, OpPlain, OpPush, OpOpaque or
// OpCall, and Caches the number of inline cache code units that follow
// the instruction. A reader uses them to tell whether a frame that is not
// the innermost one is suspended where a call could have pushed its callee.
type Opcodes struct {
	Class  [256]uint8
	Caches [256]uint8
}

// Opcode classes.
const (
	OpUnknown = iota // no such opcode in this minor
	OpPlain          // its family never pushes a frame itself
	OpPush           // some member of its family pushes a frame inline
	OpOpaque         // its real opcode is kept elsewhere (instrumentation, executors)
	// OpCall is a push family that calls the callable its operands hold
	// (CALL, CALL_KW, CALL_FUNCTION_EX, and 3.11's PRECALL): the function
	// called sits on the caller's stack, just below the arguments the
	// call consumed.
	OpCall
)

// OpcodesFor returns the opcode table of minor ("3.12"), or nil before
// 3.11 and for minors without a table.
func OpcodesFor(minor string) *Opcodes { return generatedOpcodes[minor] }

// OpcodeMinors lists the minors with a table.
func OpcodeMinors() []string {
	var out []string
	for m := range generatedOpcodes {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
