// Package bytecode analyses CPython bytecode for what a frame suspended at
// an instruction can be doing: from 3.11, whether the instruction can push
// a frame and whether it is a call; for 3.8 to 3.10, the depth of the
// value stack before each instruction (from each opcode's stack effect)
// and the stack slots where a call keeps what it calls.
//
// The functions are pure: they take the bytes of the bytecode and the
// version's tables from package pyversions, and return nil where the code
// cannot be followed, since no answer is better than a wrong one. The
// stack reader uses them to tell a caller that called the frame above it
// from one that had moved on when it was read.
package bytecode
