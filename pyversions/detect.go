package pyversions

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
)

// Binary is what version detection reads from an interpreter's ELF file
// (the python executable or libpython). Addresses are link-time addresses.
type Binary interface {
	Symbol(name string) (value, size uint64, ok bool)
	Section(name string) (addr, size uint64, ok bool)
	ReadVirtual(b []byte, vaddr uint64) error
}

// Source says where a detected version came from, from most to least
// trustworthy.
type Source int

const (
	FromPyVersion Source = iota + 1 // the Py_Version constant (3.11+)
	FromString                      // the PY_VERSION string in .rodata
	FromFileName                    // pythonX.Y or libpythonX.Y
)

func (s Source) String() string {
	switch s {
	case FromPyVersion:
		return "Py_Version"
	case FromString:
		return "version string"
	case FromFileName:
		return "file name"
	}
	return "unknown"
}

// ErrNoVersion means nothing in the binary or its name looks like a
// CPython version.
var ErrNoVersion = errors.New("no python version found")

// maxRodata bounds the scan for the version string; real .rodata sections
// are a few MiB.
const maxRodata = 64 << 20

var (
	fileNameRE = regexp.MustCompile(`^(?:lib)?python(\d)\.(\d{1,2})`)
	// The lookbehind is emulated by checking the byte before a match: the
	// linker merges PY_VERSION into the tail of longer strings such as
	// "/usr/lib/python3.9.18", so a NUL need not precede it.
	versionStringRE = regexp.MustCompile(`([23])\.(\d{1,2})\.(\d{1,2})((?:a|b|rc)\d{1,2})?\+?\x00`)
)

// FileNameVersion returns the major and minor version in a file name such
// as "libpython3.11.so.1.0" or "python3.6m".
func FileNameVersion(name string) (major, minor int, ok bool) {
	m := fileNameRE.FindStringSubmatch(filepath.Base(name))
	if m == nil {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor, true
}

// Detect works out the exact version of the interpreter in bin. name is the
// binary's file name, used to disambiguate the version string and as a last
// resort.
func Detect(bin Binary, name string) (Version, Source, error) {
	fmajor, fminor, hasName := FileNameVersion(name)
	if addr, size, ok := bin.Symbol("Py_Version"); ok && size >= 4 {
		var b [4]byte
		if err := bin.ReadVirtual(b[:], addr); err == nil {
			if v := FromHex(binary.LittleEndian.Uint32(b[:])); plausible(v) {
				return v, FromPyVersion, nil
			}
		}
	}
	if v, ok := versionString(bin, fmajor, fminor, hasName); ok {
		return v, FromString, nil
	}
	if hasName {
		return Version{Major: fmajor, Minor: fminor}, FromFileName, nil
	}
	return Version{}, 0, ErrNoVersion
}

func plausible(v Version) bool {
	return v.Major == 2 && v.Minor == 7 || v.Major == 3 && v.Minor >= 5 && v.Minor < 100
}

// versionString scans .rodata for PY_VERSION. With a file-name hint only
// matching minors count; without one, the most frequent plausible candidate
// wins, because PY_VERSION usually also appears inside the install prefix.
func versionString(bin Binary, major, minor int, hint bool) (Version, bool) {
	addr, size, ok := bin.Section(".rodata")
	if !ok || size == 0 || size > maxRodata {
		return Version{}, false
	}
	data := make([]byte, size)
	if err := bin.ReadVirtual(data, addr); err != nil {
		return Version{}, false
	}
	counts := map[Version]int{}
	for _, m := range versionStringRE.FindAllSubmatchIndex(data, -1) {
		if m[0] > 0 && (data[m[0]-1] == '.' || data[m[0]-1] >= '0' && data[m[0]-1] <= '9') {
			continue
		}
		v, err := Parse(string(data[m[0] : m[1]-1]))
		if err != nil || !plausible(v) {
			continue
		}
		if hint && (v.Major != major || v.Minor != minor) {
			continue
		}
		counts[v]++
	}
	var best Version
	n := 0
	for v, c := range counts {
		if c > n || c == n && best.Less(v) {
			best, n = v, c
		}
	}
	return best, n > 0
}

// UnsupportedError says the target's version is outside what pyprof reads.
type UnsupportedError struct {
	Version   Version
	Supported string // e.g. "2.7, 3.6–3.13"
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("python %s is not supported (supported: %s)", e.Version, e.Supported)
}
