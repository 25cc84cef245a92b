// Package pyversions knows which CPython releases pyprof supports and how
// each one lays out the structs an outside reader walks.
//
// Layouts are generated from the DWARF debug info of one build per minor
// version (see layouts_gen.go and internal/layoutgen), then adjusted for the
// patch releases known to differ (patches.go). From 3.13 the interpreter
// also describes its own layout in _Py_DebugOffsets (debugoffsets.go); that
// description overrides the generated table and covers minors newer than
// it. Version detection reads the target's binary only: a Py_Version
// constant, the PY_VERSION string, or the file name, in that order of
// trust.
package pyversions

//go:generate go run ../internal/cmd/genlayouts -o layouts_gen.go -debugoffsets debugoffsets_gen.go
//go:generate go run ../internal/cmd/genopcodes -o opcodes_gen.go
//go:generate go run ../internal/cmd/genstackeffects -o stackeffects_gen.go
