package testpython

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pyprof/pyprof/pyversions"
)

// FutureLibpython makes a copy of py's shared libpython (a 3.13+ pyenv
// build) that describes itself as Python major.minor: its Py_Version
// constant and the version in its _Py_DebugOffsets both say so. edit, if
// not nil, may then change the descriptor, which it gets as the
// DebugOffsetsMaxSize bytes at _PyRuntime. The interpreter keeps running
// as the release it was built as; only a reader of its memory sees the
// claim. It returns the copy's path; run py with LD_PRELOAD set to it, and
// only py: a dynamically linked pyprof would load it too.
func FutureLibpython(t testing.TB, py Interpreter, major, minor int, edit func(desc []byte)) string {
	t.Helper()
	name := fmt.Sprintf("libpython%d.%d.so.1.0", py.Major, py.Minor)
	src := filepath.Join(filepath.Dir(filepath.Dir(py.Path)), "lib", name)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("%s has no shared libpython: %v", py.Name, err)
	}
	f, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fileOffset := func(sym string) int {
		syms, _ := f.DynamicSymbols()
		for _, s := range syms {
			if s.Name != sym {
				continue
			}
			for _, sec := range f.Sections {
				if sec.Type != elf.SHT_NOBITS && s.Value >= sec.Addr && s.Value < sec.Addr+sec.Size {
					return int(s.Value - sec.Addr + sec.Offset)
				}
			}
		}
		t.Fatalf("no %s with file contents in %s", sym, src)
		return 0
	}
	hex := uint32(major)<<24 | uint32(minor)<<16 | 0xf0
	binary.LittleEndian.PutUint32(data[fileOffset("Py_Version"):], hex)
	rt := fileOffset("_PyRuntime")
	desc := data[rt : rt+pyversions.DebugOffsetsMaxSize()]
	if string(desc[:8]) != "xdebugpy" {
		t.Fatalf("%s: _PyRuntime does not start with _Py_DebugOffsets", src)
	}
	binary.LittleEndian.PutUint64(desc[8:], uint64(hex))
	if edit != nil {
		edit(desc)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
