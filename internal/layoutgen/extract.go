package layoutgen

import (
	"fmt"
	"path/filepath"
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
	l, _, err := extract(t, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.Origin = dwarfOrigin(path)
	return l, nil
}

func dwarfOrigin(path string) string { return "DWARF of " + filepath.Base(path) }

// resolved records which C path gave a Layout field its value.
type resolved struct {
	field string
	what  int
	path  string
}

// extract resolves every spec in t and reports the C paths it used.
func extract(t *Types, v pyversions.Version) (*pyversions.Layout, []resolved, error) {
	l := &pyversions.Layout{Version: v}
	root := reflect.ValueOf(l).Elem()
	var used []resolved
	for _, s := range specs {
		val := int64(pyversions.Absent)
		if inRange(v, s.min, s.max) {
			got, path, err := s.resolve(t)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", s.field, err)
			}
			switch {
			case path != "":
				val = got
				used = append(used, resolved{field: s.field, what: s.what, path: path})
			case s.def != nil:
				val = *s.def
			}
		}
		f := layoutField(root, s.field)
		if !f.IsValid() {
			return nil, nil, fmt.Errorf("spec names unknown field %s", s.field)
		}
		f.SetInt(val)
	}
	if err := checkComplete(root); err != nil {
		return nil, nil, err
	}
	return l, used, nil
}

// layoutField returns the field of a Layout value named "Group.Member".
func layoutField(root reflect.Value, name string) reflect.Value {
	group, member, _ := strings.Cut(name, ".")
	g := root.FieldByName(group)
	if !g.IsValid() {
		return g
	}
	return g.FieldByName(member)
}

// fieldValue returns l's field named "Group.Member".
func fieldValue(l *pyversions.Layout, name string) int64 {
	return layoutField(reflect.ValueOf(l).Elem(), name).Int()
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

// resolve returns the value and the C path that gave it, or an empty path
// when none of the paths exists in this build.
func (s spec) resolve(t *Types) (int64, string, error) {
	for _, p := range s.c {
		switch s.what {
		case sizeOf:
			if n, err := t.Sizeof(p); err == nil {
				return n, p, nil
			}
		case offsetOf:
			if f, err := t.Lookup(p); err == nil {
				if f.BitSize != 0 {
					return 0, "", fmt.Errorf("%s is a bitfield", p)
				}
				return f.Offset, p, nil
			}
		case bitOf:
			if f, err := t.Lookup(p); err == nil {
				if f.BitSize == 0 {
					return 0, "", fmt.Errorf("%s is not a bitfield", p)
				}
				// Relative to the containing word named by the parent
				// path, which is where the reader loads it from.
				parent, err := t.Lookup(p[:strings.LastIndex(p, ".")])
				if err != nil {
					return 0, "", err
				}
				return (f.Offset-parent.Offset)*8 + f.BitOff, p, nil
			}
		}
	}
	return 0, "", nil
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
	f, ok, err = debugFormat(t, v)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	if ok {
		f.Origin = dwarfOrigin(path)
	}
	return f, ok, nil
}

// debugFormat lists the members of _Py_DebugOffsets in t; nil for a
// release before 3.13.
func debugFormat(t *Types, v pyversions.Version) (*pyversions.DebugOffsetsFormat, bool, error) {
	if !v.AtLeast(3, 13) {
		return nil, false, nil
	}
	leaves, size, err := t.Leaves(debugOffsetsType)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", debugOffsetsType, err)
	}
	f := &pyversions.DebugOffsetsFormat{Version: v, Size: size}
	for _, l := range leaves {
		f.Fields = append(f.Fields, pyversions.DebugOffsetsField{Path: l.Path, Offset: l.Offset, Size: l.Size})
	}
	return f, true, nil
}
