// Package pyrepr formats values already decoded from a target interpreter's
// memory into the exact text that repr() would produce inside that
// interpreter, for Python 2.7 and 3.6–3.15.
//
// Exactness is the point: a user comparing `pyprof dump --locals` with a
// print in their own code should see the same characters. The rules that
// vary between releases are therefore keyed by Version. The biggest one is
// which code points Python 3 treats as printable, which follows the Unicode
// version each minor was built with; those tables are generated from the
// interpreters themselves (see gen_unicode.go) because Go's unicode package
// carries a single Unicode version.
//
// Everything here is a pure function of its arguments. Values in a target
// can be huge, so Builder and Truncate bound the work and the output by a
// number of runes, and the Append functions let callers reuse buffers.
package pyrepr
