package pyversions

import (
	"fmt"
	"regexp"
	"strconv"
)

// Version is a CPython release.
type Version struct {
	Major, Minor, Patch int
	// Release is the pre-release tag ("a1", "b2", "rc1"), empty for finals.
	Release string
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d%s", v.Major, v.Minor, v.Patch, v.Release)
}

// MinorString gives "3.11".
func (v Version) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less orders versions by major, minor and patch; pre-releases sort before
// the final release.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	if v.Patch != w.Patch {
		return v.Patch < w.Patch
	}
	return releaseRank(v.Release) < releaseRank(w.Release)
}

// AtLeast reports v >= major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func releaseRank(r string) string {
	if r == "" {
		return "z" // after a, b and rc
	}
	return r
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?((?:a|b|rc|c)\d+)?\+?$`)

// Parse reads "3.11.7", "3.8.0rc1" or "3.12".
func Parse(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("bad python version %q", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	v.Release = m[4]
	return v, nil
}

// FromHex decodes PY_VERSION_HEX, as stored in Py_Version (3.11+) and in
// _Py_DebugOffsets (3.13+).
func FromHex(h uint32) Version {
	v := Version{Major: int(h >> 24), Minor: int(h >> 16 & 0xff), Patch: int(h >> 8 & 0xff)}
	serial := h & 0xf
	switch h >> 4 & 0xf {
	case 0xa:
		v.Release = fmt.Sprintf("a%d", serial)
	case 0xb:
		v.Release = fmt.Sprintf("b%d", serial)
	case 0xc:
		v.Release = fmt.Sprintf("rc%d", serial)
	}
	return v
}
