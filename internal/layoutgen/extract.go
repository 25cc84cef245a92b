package layoutgen

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pyprof/pyprof/pyversions"
)

// Extract builds the layout of the CPython build whose DWARF is in path
// (a libpython or a python executable with debug info).
func Extract(path string, v pyversions.Version) (*pyversions.Layout, error) {
	t, err := Open(path)
	if err != nil {
		return nil, err
	}
	l := &pyversions.Layout{Version: v}
	root := reflect.ValueOf(l).Elem()
	for _, s := range specs {
		val := int64(pyversions.Absent)
		if inRange(v, s.min, s.max) {
			got, ok, err := s.resolve(t)
			if err != nil {
				return nil, fmt.Errorf("%s in %s: %w", s.field, path, err)
			}
			switch {
			case ok:
				val = got
			case s.def != nil:
				val = *s.def
			}
		}
		f := root.FieldByName(strings.Split(s.field, ".")[0]).FieldByName(strings.Split(s.field, ".")[1])
		if !f.IsValid() {
			return nil, fmt.Errorf("spec names unknown field %s", s.field)
		}
		f.SetInt(val)
	}
	if err := checkComplete(root); err != nil {
		return nil, err
	}
	return l, nil
}

// checkComplete catches a Layout field that no spec fills, which would
// otherwise be silently zero.
func checkComplete(root reflect.Value) error {
	seen := map[string]bool{}
	for _, s := range specs {
		seen[s.field] = true
	}
	rt := root.Type()
	for i := 0; i < rt.NumField(); i++ {
		g := rt.Field(i)
		if g.Type.Kind() != reflect.Struct || g.Name == "Version" {
			continue
		}
		for j := 0; j < g.Type.NumField(); j++ {
			if name := g.Name + "." + g.Type.Field(j).Name; !seen[name] {
				return fmt.Errorf("no spec for layout field %s", name)
			}
		}
	}
	return nil
}

// resolve reports ok=false when none of the paths exists in this build.
func (s spec) resolve(t *Types) (int64, bool, error) {
	for _, p := range s.c {
		switch s.what {
		case sizeOf:
			if n, err := t.Sizeof(p); err == nil {
				return n, true, nil
			}
		case offsetOf:
			if f, err := t.Lookup(p); err == nil {
				if f.BitSize != 0 {
					return 0, false, fmt.Errorf("%s is a bitfield", p)
				}
				return f.Offset, true, nil
			}
		case bitOf:
			if f, err := t.Lookup(p); err == nil {
				if f.BitSize == 0 {
					return 0, false, fmt.Errorf("%s is not a bitfield", p)
				}
				// Relative to the containing word named by the parent
				// path, which is where the reader loads it from.
				parent, err := t.Lookup(p[:strings.LastIndex(p, ".")])
				if err != nil {
					return 0, false, err
				}
				return (f.Offset-parent.Offset)*8 + f.BitOff, true, nil
			}
		}
	}
	return 0, false, nil
}

func inRange(v pyversions.Version, min, max string) bool {
	if min != "" {
		m, _ := pyversions.Parse(min)
		if !v.AtLeast(m.Major, m.Minor) {
			return false
		}
	}
	if max != "" {
		m, _ := pyversions.Parse(max)
		if v.Major > m.Major || v.Major == m.Major && v.Minor > m.Minor {
			return false
		}
	}
	return true
}

// debugOffsetsType is the descriptor at the start of _PyRuntime (3.13+).
const debugOffsetsType = "_Py_DebugOffsets"

// ExtractDebugFormat reads the layout of _Py_DebugOffsets from the DWARF in
// path. ok is false for builds that predate the descriptor.
func ExtractDebugFormat(path string, v pyversions.Version) (f *pyversions.DebugOffsetsFormat, ok bool, err error) {
	if !v.AtLeast(3, 13) {
		return nil, false, nil
	}
	t, err := Open(path)
	if err != nil {
		return nil, false, err
	}
	leaves, size, err := t.Leaves(debugOffsetsType)
	if err != nil {
		return nil, false, fmt.Errorf("%s in %s: %w", debugOffsetsType, path, err)
	}
	f = &pyversions.DebugOffsetsFormat{Version: v, Size: size}
	for _, l := range leaves {
		f.Fields = append(f.Fields, pyversions.DebugOffsetsField{Path: l.Path, Offset: l.Offset, Size: l.Size})
	}
	return f, true, nil
}
