// Package pyspy reads the Python stacks of a CPython process from the
// outside.
//
// It never touches the operating system itself: every byte comes through a
// Memory, so the same walker runs against a live process, a snapshot kept in
// testdata, or a fuzzer's bytes. Layouts of the interpreter's structs come
// from package pyversions. Everything read from the target is treated as
// untrusted: lengths, counts and depths are bounded and lists are checked for
// cycles, so corrupt memory yields an error rather than a panic or a hang.
package pyspy
