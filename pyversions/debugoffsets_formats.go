package pyversions

import (
	"sort"
	"strings"
)

// DebugOffsetsFormat is the layout of _Py_DebugOffsets itself in one minor
// version: where each of its members sits. CPython only promises it stable
// across the patch releases of one minor.
type DebugOffsetsFormat struct {
	// Version is the release the format was read from; a format written
	// from a header carries the minor only.
	Version Version
	// Origin says what the format was read from, as Layout.Origin does.
	Origin string
	Size   int64 // sizeof(_Py_DebugOffsets)
	Fields []DebugOffsetsField
}

// DebugOffsetsField is one member of _Py_DebugOffsets, named by its C path
// ("thread_state.current_frame").
type DebugOffsetsField struct {
	Path   string
	Offset int64
	Size   int64
}

// DebugOffsetsFormats returns the known descriptor formats, oldest first.
func DebugOffsetsFormats() []DebugOffsetsFormat {
	return append([]DebugOffsetsFormat(nil), knownDebugFormats...)
}

var knownDebugFormats = sortedFormats(generatedDebugFormats)

func sortedFormats(fs []DebugOffsetsFormat) []DebugOffsetsFormat {
	out := append([]DebugOffsetsFormat(nil), fs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Version.Less(out[j].Version) })
	return out
}

// GeneratedDebugOffsetsFormats returns the formats read from DWARF, for
// tests and tools.
func GeneratedDebugOffsetsFormats() []DebugOffsetsFormat {
	return append([]DebugOffsetsFormat(nil), generatedDebugFormats...)
}

// DebugOffsetsMaxSize is how many bytes at _PyRuntime hold the largest
// known descriptor: a reader that fetches this much can try every format.
func DebugOffsetsMaxSize() int {
	n := int64(0)
	for _, f := range knownDebugFormats {
		n = max(n, f.Size)
	}
	return int(n)
}

func knownFormatNames() string {
	var names []string
	for _, f := range knownDebugFormats {
		names = append(names, f.Version.MinorString())
	}
	return strings.Join(names, ", ")
}
