package pyversions

import (
	"fmt"
	"strings"
)

// supported lists the minor versions pyprof reads. A version outside it is
// refused with an UnsupportedError rather than read with a guessed layout.
var supported = []string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"}

// Supported returns the supported minor versions, oldest first.
func Supported() []string { return append([]string(nil), supported...) }

// SupportedRange describes the supported window for messages, as
// "2.7, 3.6–3.15".
func SupportedRange() string { return describeRange(supported) }

// describeRange joins runs of consecutive minors of one major with an en
// dash and separates the runs with commas: a window with a hole (3.5 is
// not supported) must not read as if it had none.
func describeRange(minors []string) string {
	if len(minors) == 0 {
		return "none"
	}
	var parts []string
	first, last := minors[0], minors[0]
	flush := func() {
		if first == last {
			parts = append(parts, first)
		} else {
			parts = append(parts, first+"–"+last)
		}
	}
	for _, m := range minors[1:] {
		if follows(last, m) {
			last = m
			continue
		}
		flush()
		first, last = m, m
	}
	flush()
	return strings.Join(parts, ", ")
}

// follows reports whether minor b comes right after a in the same major.
func follows(a, b string) bool {
	va, errA := Parse(a)
	vb, errB := Parse(b)
	return errA == nil && errB == nil && va.Major == vb.Major && vb.Minor == va.Minor+1
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
		to := fmt.Sprintf("–%d.%d.%d", p.major, p.minor, p.to)
		if p.to == maxPatch {
			to = " and later"
		}
		out = append(out, fmt.Sprintf("%d.%d.%d%s: %s", p.major, p.minor, p.from, to, strings.TrimSpace(p.why)))
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
