package procmem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start, End uint64
	Perms      string // e.g. "r-xp"
	Offset     uint64 // offset in the file of Start
	Dev        string // "major:minor" in hex, as printed
	Inode      uint64
	// Path is the mapped file in the target's mount namespace, a
	// pseudo-path such as "[heap]", "[stack]" or "[vdso]", or "" for an
	// anonymous mapping.
	Path string
	// Deleted is set when the kernel marked Path " (deleted)": the file
	// was removed or replaced after it was mapped, so the file now at Path,
	// if any, is not the one in memory. The suffix is not part of Path.
	Deleted bool
}

const deletedSuffix = " (deleted)"

// Contains reports whether addr falls in the mapping.
func (m Mapping) Contains(addr uint64) bool { return m.Start <= addr && addr < m.End }

// Size returns the length of the mapping in bytes.
func (m Mapping) Size() uint64 { return m.End - m.Start }

// String formats m as a line of /proc/PID/maps.
func (m Mapping) String() string {
	s := fmt.Sprintf("%08x-%08x %s %08x %s %d", m.Start, m.End, m.Perms, m.Offset, m.Dev, m.Inode)
	if m.Path == "" && !m.Deleted {
		return s
	}
	// The kernel pads the path to column 73.
	pad := max(73-len(s), 1)
	s += strings.Repeat(" ", pad) + m.Path
	if m.Deleted {
		s += deletedSuffix
	}
	return s
}

// ParseMaps parses the contents of a /proc/PID/maps file.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var maps []Mapping
	sc := bufio.NewScanner(r)
	// A path is at most PATH_MAX, but nothing stops a fixture or a
	// fuzzer from being longer; refuse rather than grow without bound.
	sc.Buffer(make([]byte, 0, 8<<10), 1<<20)
	// Split on newlines only: ScanLines would also drop a trailing
	// carriage return, which can be the last byte of a file name.
	sc.Split(splitLF)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		m, err := parseMapping(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("maps line %d: %w", line, err)
		}
		maps = append(maps, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("maps: %w", err)
	}
	return maps, nil
}

func splitLF(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parseMapping parses one line. The first five fields are separated by
// single spaces; the path follows after padding and may itself contain
// spaces, so it is everything that is left.
func parseMapping(s string) (Mapping, error) {
	var f [5]string
	rest := s
	for i := range f {
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			if i < len(f)-1 {
				return Mapping{}, fmt.Errorf("want at least 5 fields: %.80q", s)
			}
			f[i], rest = rest, ""
			break
		}
		f[i], rest = rest[:j], rest[j+1:]
	}

	var m Mapping
	start, end, ok := strings.Cut(f[0], "-")
	if !ok {
		return Mapping{}, fmt.Errorf("bad address range %.40q", f[0])
	}
	var err error
	if m.Start, err = strconv.ParseUint(start, 16, 64); err != nil {
		return Mapping{}, fmt.Errorf("bad start address: %w", err)
	}
	if m.End, err = strconv.ParseUint(end, 16, 64); err != nil {
		return Mapping{}, fmt.Errorf("bad end address: %w", err)
	}
	if m.End < m.Start {
		return Mapping{}, errors.New("end address before start")
	}
	if len(f[1]) != 4 {
		return Mapping{}, fmt.Errorf("bad permissions %.40q", f[1])
	}
	m.Perms = f[1]
	if m.Offset, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return Mapping{}, fmt.Errorf("bad offset: %w", err)
	}
	if !strings.Contains(f[3], ":") {
		return Mapping{}, fmt.Errorf("bad device %.40q", f[3])
	}
	m.Dev = f[3]
	if m.Inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return Mapping{}, fmt.Errorf("bad inode: %w", err)
	}
	m.Path = strings.TrimLeft(rest, " ")
	if p, ok := strings.CutSuffix(m.Path, deletedSuffix); ok {
		m.Path, m.Deleted = p, true
	}
	return m, nil
}
