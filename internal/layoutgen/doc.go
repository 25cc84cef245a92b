// Package layoutgen extracts pyversions.Layout tables from the DWARF debug
// info of CPython builds and renders them as Go source. It backs the
// `go generate` step in pyversions and the test that fails when the
// committed table drifts from the interpreters on the machine.
package layoutgen
