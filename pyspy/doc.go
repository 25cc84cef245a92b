// Package pyspy reads the Python stacks of a CPython process from the
// outside.
//
// It never touches the operating system itself: every byte comes through a
// Memory, so the same reader runs against a live process, a snapshot kept
// in testdata, or a fuzzer's bytes. Layouts of the interpreter's structs
// come from package pyversions. Everything read from the target is treated
// as untrusted: lengths, counts and depths are bounded and lists are
// checked for cycles, so corrupt memory yields an error rather than a
// panic or a hang.
//
// The Reader is built of smaller parts, each usable alone: package mem
// (the memory interface and the per-sample read cache), package pyobj
// (Python objects and code objects at any address), package bytecode
// (what an instruction can be doing) and package frames (the walk of a
// frame chain). What this package adds is the process's side: where its
// interpreter is, its threads, their names and OS thread ids, and the
// judge that decides whether each stack a sample read existed at some
// moment, which the walker asks as it reads and which plans the sample's
// reads and reads again what needs it (judge.go, batch.go, verify.go).
package pyspy
