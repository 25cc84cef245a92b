package procmem

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// hexversion asks an interpreter for sys.hexversion, the value its
// Py_Version constant must hold.
func hexversion(t *testing.T, python string) uint64 {
	t.Helper()
	out, err := exec.Command(python, "-c", "import sys; print(sys.hexversion)").Output()
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSymbols(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		python string // whose sys.hexversion Py_Version must equal; "" to skip
		sym    string
		size   uint64
		// which table holds sym, to show both lookups are exercised
		inDynsym, inSymtab bool
	}{
		{"stripped exe _PyRuntime", systemPython, "", "_PyRuntime", 0, true, false},
		{"stripped exe Py_Version", systemPython, systemPython, "Py_Version", 8, true, false},
		{"libpython _PyRuntime", pyenvLib311, "", "_PyRuntime", 0, true, true},
		{"libpython Py_Version", pyenvLib311, pyenvPython, "Py_Version", 8, true, true},
		{"local symbol", pyenvLib36, "", "interp_head", 8, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := OpenELFPath(needFile(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			value, size, ok := e.Symbol(tc.sym)
			if !ok || value == 0 {
				t.Fatalf("Symbol(%q) = %#x, %d, %v", tc.sym, value, size, ok)
			}
			if tc.size != 0 && size != tc.size {
				t.Errorf("size %d, want %d", size, tc.size)
			}
			dyn, _ := e.File().DynamicSymbols()
			tab, _ := e.File().Symbols()
			if has(dyn, tc.sym) != tc.inDynsym || has(tab, tc.sym) != tc.inSymtab {
				t.Errorf("in .dynsym: %v, in .symtab: %v; test assumes %v, %v",
					has(dyn, tc.sym), has(tab, tc.sym), tc.inDynsym, tc.inSymtab)
			}
			if tc.sym == "_PyRuntime" {
				addr, ssize, ok := e.Section(".PyRuntime")
				if !ok || addr != value || ssize < size {
					t.Errorf(".PyRuntime at %#x size %d, %v; _PyRuntime at %#x size %d", addr, ssize, ok, value, size)
				}
			}
			if tc.python != "" {
				var b [8]byte
				if err := e.ReadVirtual(b[:], value); err != nil {
					t.Fatal(err)
				}
				if got, want := binary.LittleEndian.Uint64(b[:]), hexversion(t, needFile(t, tc.python)); got != want {
					t.Errorf("Py_Version = %#x, want %#x", got, want)
				}
			}
			if _, _, ok := e.Symbol("no_such_symbol_here"); ok {
				t.Error("found a symbol that does not exist")
			}
		})
	}
}

func has(syms []elf.Symbol, name string) bool {
	for _, s := range syms {
		if s.Name == name && s.Section != elf.SHN_UNDEF {
			return true
		}
	}
	return false
}

func TestELFFile(t *testing.T) {
	path := needFile(t, systemPython)
	e, err := OpenELFPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// The build ID is the tail of the note that holds it.
	id := e.BuildID()
	noteAddr, noteSize, ok := e.Section(".note.gnu.build-id")
	if !ok || len(id) != 40 {
		t.Fatalf("BuildID %q, note section present: %v", id, ok)
	}
	note := make([]byte, noteSize)
	if err := e.ReadVirtual(note, noteAddr); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(note), string(mustHex(t, id))) {
		t.Errorf("BuildID %s not in note % x", id, note)
	}

	r, size := e.DataReader()
	if size != int64(len(raw)) {
		t.Errorf("DataReader size %d, want %d", size, len(raw))
	}
	all, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil || !bytes.Equal(all, raw) {
		t.Errorf("DataReader does not return the file: %v", err)
	}
	if !bytes.Contains(all, []byte("3.11")) {
		t.Error("no version string in the file")
	}

	// .bss has no file contents and reads as zeros.
	bss, _, ok := e.Section(".bss")
	if !ok {
		t.Fatal("no .bss")
	}
	b := []byte{1, 2, 3, 4}
	if err := e.ReadVirtual(b, bss); err != nil || !bytes.Equal(b, make([]byte, 4)) {
		t.Errorf("ReadVirtual(.bss) = % x, %v", b, err)
	}
	if err := e.ReadVirtual(b, 0x10); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("ReadVirtual below the image: %v, want ErrNotLoaded", err)
	}

	// Without a size from the reader, the headers give one.
	e2, err := OpenELF(struct{ io.ReaderAt }{bytes.NewReader(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if _, size := e2.DataReader(); size <= 0 || size > int64(len(raw)) {
		t.Errorf("size from headers %d, file is %d", size, len(raw))
	}
	if _, err := OpenELF(bytes.NewReader([]byte("not an elf file"))); err == nil {
		t.Error("OpenELF accepted garbage")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[i] = byte(v)
	}
	return b
}

// LoadBias is checked against the live process: the bytes at a symbol's
// run-time address must equal the file's bytes at its link-time address.
func TestLoadBias(t *testing.T) {
	for _, tc := range []struct {
		name     string
		python   string
		file     string // suffix of the mapped path; "" for the executable
		sym      string
		zeroBias bool
	}{
		{"non-PIE executable", systemPython, "", "Py_Version", true},
		{"PIE executable", pyenvPython, "", "main", false},
		{"shared library", pyenvPython, "/libpython3.11.so.1.0", "Py_Version", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startPython(t, tc.python, `import sys; print("{}", flush=True); sys.stdin.read()`)
			p := c.open(t)
			maps, err := p.Maps()
			if err != nil {
				t.Fatal(err)
			}
			path, err := p.Exe()
			if err != nil {
				t.Fatal(err)
			}
			if tc.file != "" {
				path = ""
				for _, m := range maps {
					if strings.HasSuffix(m.Path, tc.file) {
						path = m.Path
						break
					}
				}
				if path == "" {
					t.Fatalf("%s not mapped", tc.file)
				}
			}
			e, err := p.OpenELF(path)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			bias, err := LoadBias(e, maps, path)
			if err != nil {
				t.Fatal(err)
			}
			if (bias == 0) != tc.zeroBias {
				t.Errorf("bias %#x", bias)
			}
			value, _, ok := e.Symbol(tc.sym)
			if !ok {
				t.Fatalf("no %s", tc.sym)
			}
			want := make([]byte, 16)
			if err := e.ReadVirtual(want, value); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 16)
			if _, err := p.ReadAt(got, int64(value+bias)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s at %#x+%#x: memory % x, file % x", tc.sym, value, bias, got, want)
			}
			if _, err := LoadBias(e, maps, "/not/mapped"); !errors.Is(err, ErrNotMapped) {
				t.Errorf("LoadBias of an unmapped file: %v", err)
			}
		})
	}
}

// A binary deleted (or replaced) after it started is read from the mapping,
// not from whatever is at its path now.
func TestOpenFileDeleted(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "sleeper")
	orig, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(exe, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The exe link changes before the new image is mapped.
	waitFor(t, "the child to exec", func() bool {
		maps, _ := p.Maps()
		return slices.ContainsFunc(maps, func(m Mapping) bool { return m.Path == exe })
	})
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("impostor"), 0o755); err != nil {
		t.Fatal(err)
	}

	path, err := p.Exe()
	if err != nil || path != exe+" (deleted)" {
		t.Fatalf("Exe = %q, %v", path, err)
	}
	f, err := p.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, orig) {
		t.Fatalf("OpenFile read %d bytes (%v), want the original %d", len(got), err, len(orig))
	}

	maps, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.OpenELF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	bias, err := LoadBias(e, maps, path)
	if err != nil {
		t.Fatal(err)
	}
	var load uint64
	for _, prog := range e.Progs() {
		if prog.Type == elf.PT_LOAD && prog.Off == 0 {
			load = prog.Vaddr
		}
	}
	var magic [4]byte
	if _, err := p.ReadAt(magic[:], int64(bias+load)); err != nil || string(magic[:]) != elf.ELFMAG {
		t.Errorf("no ELF header at the load address: % x, %v", magic, err)
	}

	// A file that is not deleted comes through the process's root.
	lib := ""
	waitFor(t, "the loader to map libc", func() bool {
		maps, err := p.Maps()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range maps {
			if strings.Contains(m.Path, "/libc.so") {
				lib = m.Path
			}
		}
		return lib != ""
	})
	f, err = p.OpenFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.HasPrefix(f.Name(), "/proc/") || !strings.Contains(f.Name(), "/root/") {
		t.Errorf("opened %s, want it through /proc/PID/root", f.Name())
	}
}

// A deleted file that is not the executable comes from map_files.
func TestOpenFileDeletedMapping(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data file")
	orig := bytes.Repeat([]byte("mapped "), 1000)
	if err := os.WriteFile(data, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	c := startPython(t, systemPython, fmt.Sprintf(`
import mmap, sys
f = open(%q, "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
print("{}", flush=True)
sys.stdin.read()
`, data))
	p := c.open(t)
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, []byte("impostor"), 0o644); err != nil {
		t.Fatal(err)
	}
	maps, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(maps, func(m Mapping) bool { return m.Path == data && m.Deleted }) {
		t.Fatalf("no deleted mapping of %s", data)
	}
	f, err := p.OpenFile(data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, orig) {
		t.Errorf("read %q (%v), want the original", got[:min(len(got), 20)], err)
	}
	if !strings.Contains(f.Name(), "/map_files/") {
		t.Errorf("opened %s, want it through map_files", f.Name())
	}
}
