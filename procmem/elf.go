package procmem

import (
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// ErrNotLoaded is returned by ELF.ReadVirtual for an address outside every
// loadable segment.
var ErrNotLoaded = errors.New("address not in a loadable segment")

// ErrNotMapped is returned by LoadBias when the file is not mapped in the
// process.
var ErrNotMapped = errors.New("file not mapped")

// ELF is an ELF file with lookups a profiler needs: symbols from either
// symbol table, sections, and reads at link-time addresses. Symbol tables
// are parsed on first use, once; an ELF is safe for concurrent use.
type ELF struct {
	f      *elf.File
	r      io.ReaderAt
	size   int64
	closer io.Closer

	symOnce sync.Once
	syms    map[string]elf.Symbol
}

// OpenELF parses the ELF file read from r.
func OpenELF(r io.ReaderAt) (*ELF, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parse elf: %w", err)
	}
	return &ELF{f: f, r: r, size: readerSize(r, f)}, nil
}

// OpenELFPath opens the ELF file at path in our own mount namespace.
func OpenELFPath(path string) (*ELF, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	e, err := OpenELF(fh)
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.closer = fh
	return e, nil
}

// readerSize finds the length of the data behind r: from the reader if it
// knows, otherwise the end of the furthest part the headers describe.
func readerSize(r io.ReaderAt, f *elf.File) int64 {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size()
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	var end uint64
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS {
			end = max(end, s.Offset+s.FileSize)
		}
	}
	for _, p := range f.Progs {
		end = max(end, p.Off+p.Filesz)
	}
	return int64(min(end, 1<<62))
}

// Close closes the file if the ELF opened it.
func (e *ELF) Close() error {
	if e.closer == nil {
		return nil
	}
	return e.closer.Close()
}

// File returns the parsed file.
func (e *ELF) File() *elf.File { return e.f }

// Sections returns the section headers; a stripped file may have few or none.
func (e *ELF) Sections() []*elf.Section { return e.f.Sections }

// Progs returns the program headers.
func (e *ELF) Progs() []*elf.Prog { return e.f.Progs }

// DataReader returns the whole file's bytes and its length, for scans such as
// a search for a version string.
func (e *ELF) DataReader() (io.ReaderAt, int64) { return e.r, e.size }

// Symbol returns the link-time value and size of the symbol called name,
// looking in .dynsym and .symtab: a stripped executable has only the first,
// while static (local) variables are only in the second. A global symbol is
// preferred to a local one of the same name.
func (e *ELF) Symbol(name string) (value, size uint64, ok bool) {
	e.symOnce.Do(e.loadSymbols)
	s, ok := e.syms[name]
	return s.Value, s.Size, ok
}

func (e *ELF) loadSymbols() {
	e.syms = make(map[string]elf.Symbol)
	// Missing tables (ErrNoSymbols) and corrupt ones alike leave their
	// symbols out; the lookups then report them as absent.
	dyn, _ := e.f.DynamicSymbols()
	tab, _ := e.f.Symbols()
	for _, list := range [][]elf.Symbol{dyn, tab} {
		for _, s := range list {
			if s.Name == "" || s.Section == elf.SHN_UNDEF {
				continue
			}
			switch elf.ST_TYPE(s.Info) {
			case elf.STT_FILE, elf.STT_SECTION:
				continue
			}
			old, seen := e.syms[s.Name]
			if !seen || (elf.ST_BIND(old.Info) == elf.STB_LOCAL && elf.ST_BIND(s.Info) != elf.STB_LOCAL) {
				e.syms[s.Name] = s
			}
		}
	}
}

// Section returns the link-time address and size of the named section.
func (e *ELF) Section(name string) (addr, size uint64, ok bool) {
	s := e.f.Section(name)
	if s == nil {
		return 0, 0, false
	}
	return s.Addr, s.Size, true
}

// ReadVirtual fills b with the file's image at link-time address vaddr, as
// the loader would map it before the program runs: it works without a live
// process, which suits constants such as Py_Version. Bytes past the end of a
// segment's file contents (.bss) read as zero.
func (e *ELF) ReadVirtual(b []byte, vaddr uint64) error {
	start := vaddr
	for len(b) > 0 {
		var prog *elf.Prog
		for _, p := range e.f.Progs {
			if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr-p.Vaddr < p.Memsz {
				prog = p
				break
			}
		}
		if prog == nil {
			return fmt.Errorf("read virtual %#x: %w", start, ErrNotLoaded)
		}
		off := vaddr - prog.Vaddr
		n := min(uint64(len(b)), prog.Memsz-off)
		chunk := b[:n]
		if off < prog.Filesz {
			fn := min(n, prog.Filesz-off)
			if _, err := e.r.ReadAt(chunk[:fn], int64(prog.Off+off)); err != nil {
				return fmt.Errorf("read virtual %#x: %w", start, err)
			}
			clear(chunk[fn:])
		} else {
			clear(chunk)
		}
		b = b[n:]
		vaddr += n
	}
	return nil
}

// BuildID returns the GNU build ID as lowercase hex, or "" if the file has
// none.
func (e *ELF) BuildID() string {
	for _, s := range e.f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		if id := e.noteBuildID(s.Open(), s.Size, s.Addralign); id != "" {
			return id
		}
	}
	// A file stripped of its section headers still has PT_NOTE.
	for _, p := range e.f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		if id := e.noteBuildID(p.Open(), p.Filesz, p.Align); id != "" {
			return id
		}
	}
	return ""
}

// ntGNUBuildID is NT_GNU_BUILD_ID, which debug/elf does not define.
const ntGNUBuildID = 3

// noteBuildID scans a run of ELF notes for NT_GNU_BUILD_ID.
func (e *ELF) noteBuildID(r io.ReadSeeker, size, align uint64) string {
	const maxNotes = 1 << 16
	if size > maxNotes {
		return ""
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return ""
	}
	if align != 8 {
		align = 4
	}
	pad := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	bo := e.f.ByteOrder
	for len(b) >= 12 {
		namesz := uint64(bo.Uint32(b[0:]))
		descsz := uint64(bo.Uint32(b[4:]))
		typ := bo.Uint32(b[8:])
		b = b[12:]
		if pad(namesz) > uint64(len(b)) {
			return ""
		}
		name := strings.TrimRight(string(b[:namesz]), "\x00")
		b = b[pad(namesz):]
		if descsz > uint64(len(b)) {
			return ""
		}
		desc := b[:descsz]
		if name == "GNU" && typ == ntGNUBuildID {
			return hex.EncodeToString(desc)
		}
		if pad(descsz) > uint64(len(b)) {
			return ""
		}
		b = b[pad(descsz):]
	}
	return ""
}

// LoadBias returns the difference between run-time and link-time addresses of
// the ELF file mapped at path in a process with the given maps: a symbol's
// address in memory is its Symbol value plus the bias. It is 0 for a non-PIE
// executable.
//
// The loader maps the first loadable segment, rounded down to a page, at the
// start of the mapping whose file offset is that segment's offset rounded the
// same way.
func LoadBias(e *ELF, maps []Mapping, path string) (uint64, error) {
	path = strings.TrimSuffix(path, deletedSuffix)
	var first *elf.Prog
	for _, p := range e.f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if first == nil {
			first = p
		}
		if p.Off == 0 {
			first = p
			break
		}
	}
	if first == nil {
		return 0, fmt.Errorf("load bias of %s: no loadable segment", path)
	}
	page := uint64(os.Getpagesize())
	off := first.Off &^ (page - 1)

	// The file may also be mapped as data (say, by a tool that reads it
	// with mmap); the loader's mapping is private and has the segment's
	// permissions, so prefer that one.
	var found *Mapping
	for i := range maps {
		m := &maps[i]
		if m.Path != path || m.Offset != off {
			continue
		}
		if found == nil {
			found = m
		}
		if permsMatch(m.Perms, first.Flags) {
			found = m
			break
		}
	}
	if found == nil {
		return 0, fmt.Errorf("load bias of %s: %w", path, ErrNotMapped)
	}
	return found.Start - first.Vaddr&^(page-1), nil
}

func permsMatch(perms string, flags elf.ProgFlag) bool {
	if len(perms) != 4 {
		return false
	}
	bit := func(c byte, f elf.ProgFlag) bool { return (c != '-') == (flags&f != 0) }
	return bit(perms[0], elf.PF_R) && bit(perms[2], elf.PF_X) && perms[3] == 'p'
}
