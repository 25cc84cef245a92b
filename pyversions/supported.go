package pyversions

import (
	"fmt"
	"strings"
)

// supported lists the minor versions pyprof reads. A version outside it is
// refused with an UnsupportedError rather than read with a guessed layout.
var supported = []string{"3.6", "3.7", "3.8", "3.9", "3.10", "3.11"}

// Supported returns the supported minor versions, oldest first.
func Supported() []string { return append([]string(nil), supported...) }

// SupportedRange describes the supported window for messages, as "3.6–3.11".
func SupportedRange() string {
	if len(supported) == 0 {
		return "none"
	}
	return supported[0] + "–" + supported[len(supported)-1]
}

// IsSupported reports whether v's minor version is supported.
func IsSupported(v Version) bool {
	for _, s := range supported {
		if s == v.MinorString() {
			return true
		}
	}
	return false
}

// LayoutFor returns the struct layout of release v: the generated layout of
// its minor version, corrected for the patch releases known to differ.
func LayoutFor(v Version) (*Layout, error) {
	if !IsSupported(v) {
		return nil, &UnsupportedError{Version: v, Supported: SupportedRange()}
	}
	for i := range generated {
		g := &generated[i]
		if g.Version.Major != v.Major || g.Version.Minor != v.Minor {
			continue
		}
		l := *g
		for _, p := range patches {
			if p.applies(v) {
				p.apply(&l)
			}
		}
		return &l, nil
	}
	return nil, fmt.Errorf("no layout generated for python %s", v.MinorString())
}

// Generated returns the generated layouts, for tests and tools.
func Generated() []Layout { return append([]Layout(nil), generated...) }

// patch records how releases in [from, to] of one minor version differ from
// the release the table was generated from.
type patch struct {
	major, minor int
	from, to     int // patch numbers, inclusive
	why          string
	apply        func(*Layout)
}

func (p patch) applies(v Version) bool {
	return v.Major == p.major && v.Minor == p.minor && v.Patch >= p.from && v.Patch <= p.to
}

// PatchNotes lists the recorded patch-release differences, for docs.
func PatchNotes() []string {
	var out []string
	for _, p := range patches {
		out = append(out, fmt.Sprintf("%d.%d.%d–%d.%d.%d: %s", p.major, p.minor, p.from, p.major, p.minor, p.to, strings.TrimSpace(p.why)))
	}
	return out
}

// DebugOffsetsSupported reports whether release v is read when it
// describes itself in a valid _Py_DebugOffsets: a supported minor, or one
// newer than every minor with a generated layout. The latter is read with
// the newest generated layout under the descriptor's offsets, and with the
// newest minor's code paths.
func DebugOffsetsSupported(v Version) bool {
	if IsSupported(v) {
		return true
	}
	for _, g := range generated {
		if !minorBefore(g.Version, v) {
			return false
		}
	}
	return len(generated) > 0
}
