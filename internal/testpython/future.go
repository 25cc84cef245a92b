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

// FutureExecutable copies the python executable src (3.11+, with the
// interpreter linked in) so that its Py_Version constant claims
// major.minor. The program still runs as the Python it was built as; only
// a reader of the binary or its memory sees the claim. It returns the
// copy's path, named pythonMAJOR.MINOR.
func FutureExecutable(t testing.TB, src string, major, minor int) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), fmt.Sprintf("python%d.%d", major, minor))
	claimVersion(t, src, dst, major, minor, nil)
	return dst
}

// FutureLibpython makes a copy of py's shared libpython (a 3.13+ pyenv
// build) that describes itself as Python major.minor: its Py_Version
// constant and the version in its _Py_DebugOffsets both say so. edit, if
// not nil, may then change the descriptor, which it gets as the
// DebugOffsetsMaxSize bytes at _PyRuntime. It returns the copy's path; run
// py with LD_PRELOAD set to it, and only py: a dynamically linked pyprof
// would load it too.
func FutureLibpython(t testing.TB, py Interpreter, major, minor int, edit func(desc []byte)) string {
	t.Helper()
	name := fmt.Sprintf("libpython%d.%d.so.1.0", py.Major, py.Minor)
	src := filepath.Join(filepath.Dir(filepath.Dir(py.Path)), "lib", name)
	dst := filepath.Join(t.TempDir(), name)
	claimVersion(t, src, dst, major, minor, func(desc []byte) {
		if desc == nil {
			t.Fatalf("%s: _PyRuntime does not start with _Py_DebugOffsets", src)
		}
		if edit != nil {
			edit(desc)
		}
	})
	return dst
}

// claimVersion writes a copy of the interpreter binary src to dst with
// Py_Version, and the version in _Py_DebugOffsets if src has one, set to
// major.minor. edit, if not nil, gets the descriptor's bytes, or nil when
// there is none.
func claimVersion(t testing.TB, src, dst string, major, minor int, edit func(desc []byte)) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.DynamicSymbols()
	// fileOffset returns where sym's initial value is in the file, or -1.
	fileOffset := func(sym string) int {
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
		return -1
	}
	hex := uint32(major)<<24 | uint32(minor)<<16 | 0xf0
	at := fileOffset("Py_Version")
	if at < 0 {
		t.Fatalf("no Py_Version in %s", src)
	}
	binary.LittleEndian.PutUint32(data[at:], hex)
	var desc []byte
	if rt := fileOffset("_PyRuntime"); rt >= 0 && rt+pyversions.DebugOffsetsMaxSize() <= len(data) &&
		string(data[rt:rt+8]) == "xdebugpy" {
		desc = data[rt : rt+pyversions.DebugOffsetsMaxSize()]
		binary.LittleEndian.PutUint64(desc[8:], uint64(hex))
	}
	if edit != nil {
		edit(desc)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
