package target

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyversions"
)

// LayoutSource says where a Process's struct layout came from.
type LayoutSource uint8

const (
	// LayoutGenerated is pyversions' table, generated from DWARF.
	LayoutGenerated LayoutSource = iota
	// LayoutDebugOffsets is the target's own _Py_DebugOffsets (3.13+).
	LayoutDebugOffsets
)

// String names the source as dump shows it.
func (s LayoutSource) String() string {
	switch s {
	case LayoutGenerated:
		return "generated"
	case LayoutDebugOffsets:
		return "_Py_DebugOffsets"
	}
	return fmt.Sprintf("LayoutSource(%d)", uint8(s))
}

// chooseLayout returns the layout of release v, whose _PyRuntime is at
// runtime (0 if unknown), and the descriptor it came from, if any. From
// 3.13 the target's _Py_DebugOffsets is read and preferred; it also admits
// minors newer than any generated layout. A binary whose descriptor cannot
// be read gets the generated layout, or the UnsupportedError LayoutFor
// gives. A descriptor that is there but fits no known format is refused
// even for a minor with a table: the build then differs from the one the
// table describes, and reading it anyway would give wrong stacks.
func chooseLayout(mem pyspy.Memory, v pyversions.Version, runtime uint64) (*pyversions.Layout, *pyversions.DebugOffsets, error) {
	if !v.AtLeast(3, 13) || runtime == 0 {
		l, err := pyversions.LayoutFor(v)
		return l, nil, err
	}
	b := make([]byte, pyversions.DebugOffsetsMaxSize())
	var l *pyversions.Layout
	var d *pyversions.DebugOffsets
	_, err := mem.ReadAt(b, int64(runtime))
	if err != nil {
		err = fmt.Errorf("read _Py_DebugOffsets at %#x: %w", runtime, err)
	} else {
		l, d, err = pyversions.LayoutFromDebugOffsets(b)
	}
	eligible := pyversions.DebugOffsetsSupported(v)
	switch {
	case err == nil:
		if d.Version.Major != v.Major || d.Version.Minor != v.Minor {
			return nil, nil, fmt.Errorf("_Py_DebugOffsets at %#x describes python %s, but the binary is %s", runtime, d.Version, v)
		}
		if eligible {
			return l, d, nil
		}
	case errors.Is(err, pyversions.ErrFreeThreaded):
		return nil, nil, err
	case errors.As(err, new(*pyversions.DebugOffsetsError)):
		return nil, nil, err
	}
	// A supported minor still has its generated table. A minor that only
	// a descriptor could admit reports why the descriptor did not.
	gl, gerr := pyversions.LayoutFor(v)
	switch {
	case gerr == nil:
		return gl, nil, nil
	case !eligible || errors.Is(err, pyversions.ErrNoDebugOffsets):
		return nil, nil, gerr
	}
	return nil, nil, err
}
