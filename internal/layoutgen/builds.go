package layoutgen

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/pyprof/pyprof/pyversions"
)

// Build is a CPython build with debug info.
type Build struct {
	Path    string // the libpython carrying the DWARF
	Version pyversions.Version
}

// PyenvRoot follows pyenv's own rule: $PYENV_ROOT, else ~/.pyenv.
func PyenvRoot() string {
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		return r
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".pyenv")
}

// FindBuilds lists the shared libpythons under pyenv that carry DWARF.
func FindBuilds() ([]Build, error) {
	libs, err := filepath.Glob(filepath.Join(PyenvRoot(), "versions", "*", "lib", "libpython*.so.1.0"))
	if err != nil {
		return nil, err
	}
	var out []Build
	for _, p := range libs {
		v, err := fileVersion(p)
		if err != nil {
			return nil, err
		}
		out = append(out, Build{Path: p, Version: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version.Less(out[j].Version) })
	return out, nil
}

// fileVersion detects a build's version the same way pyprof does for a
// target, so the generator exercises the detector too.
func fileVersion(path string) (pyversions.Version, error) {
	f, err := elf.Open(path)
	if err != nil {
		return pyversions.Version{}, err
	}
	defer f.Close()
	v, _, err := pyversions.Detect(elfBinary{f}, filepath.Base(path))
	if err != nil {
		return pyversions.Version{}, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

type elfBinary struct{ f *elf.File }

func (b elfBinary) Symbol(name string) (uint64, uint64, bool) {
	for _, get := range []func() ([]elf.Symbol, error){b.f.DynamicSymbols, b.f.Symbols} {
		syms, _ := get()
		for _, s := range syms {
			if s.Name == name {
				return s.Value, s.Size, true
			}
		}
	}
	return 0, 0, false
}

func (b elfBinary) Section(name string) (uint64, uint64, bool) {
	s := b.f.Section(name)
	if s == nil {
		return 0, 0, false
	}
	return s.Addr, s.Size, true
}

func (b elfBinary) ReadVirtual(p []byte, addr uint64) error {
	for _, prog := range b.f.Progs {
		if prog.Type == elf.PT_LOAD && addr >= prog.Vaddr && addr+uint64(len(p)) <= prog.Vaddr+prog.Filesz {
			_, err := prog.ReadAt(p, int64(addr-prog.Vaddr))
			return err
		}
	}
	return fmt.Errorf("address %#x not in a loaded segment", addr)
}

// DetectFile detects the version of the interpreter binary at path.
func DetectFile(path string) (pyversions.Version, pyversions.Source, error) {
	f, err := elf.Open(path)
	if err != nil {
		return pyversions.Version{}, 0, err
	}
	defer f.Close()
	return pyversions.Detect(elfBinary{f}, filepath.Base(path))
}
