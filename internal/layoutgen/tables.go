package layoutgen

import (
	"fmt"
	"reflect"

	"github.com/pyprof/pyprof/pyversions"
)

// Tables are the layouts and descriptor formats that go generate writes,
// one per minor version.
type Tables struct {
	Layouts map[string]*pyversions.Layout
	Formats map[string]*pyversions.DebugOffsetsFormat
	// Sources names the build each minor was read from, for messages.
	Sources map[string]string
}

// Fresh reads the tables from the builds on this machine: DWARF where a
// pyenv build has it, and the -dev headers of .ci/sid-pythons for the
// minors that have no such build. DWARF wins where both exist, since it
// is the build itself rather than a reconstruction of it; the tests show
// that the two agree where both exist.
func Fresh() (*Tables, error) {
	t := &Tables{
		Layouts: map[string]*pyversions.Layout{},
		Formats: map[string]*pyversions.DebugOffsetsFormat{},
		Sources: map[string]string{},
	}
	builds, err := FindBuilds()
	if err != nil {
		return nil, err
	}
	for _, b := range builds {
		minor := b.Version.MinorString()
		l, err := Extract(b.Path, b.Version)
		if err != nil {
			return nil, err
		}
		if old, ok := t.Layouts[minor]; ok {
			return nil, fmt.Errorf("two builds of %s: %s and %s", minor, old.Version, b.Version)
		}
		t.Layouts[minor] = l
		t.Sources[minor] = b.Path
		f, ok, err := ExtractDebugFormat(b.Path, b.Version)
		if err != nil {
			return nil, err
		}
		if ok {
			t.Formats[minor] = f
		}
	}
	headers, err := FindHeaderBuilds()
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		minor := h.Version.MinorString()
		if _, ok := t.Layouts[minor]; ok {
			continue
		}
		l, f, err := ExtractHeaders(h)
		if err != nil {
			return nil, err
		}
		t.Layouts[minor] = l
		t.Sources[minor] = h.Include[0]
		if f != nil {
			t.Formats[minor] = f
		}
	}
	return t, nil
}

// Merge folds the committed entries into t. A minor t lacks keeps its
// committed entry, so that generating on a machine with fewer builds never
// drops a layout; so does a minor whose fresh offsets equal the committed
// ones, so that another patch release of the same layout (sid moving from
// 3.14.10 to 3.14.11) does not churn the generated files.
func (t *Tables) Merge(layouts []pyversions.Layout, formats []pyversions.DebugOffsetsFormat) {
	for i := range layouts {
		minor := layouts[i].Version.MinorString()
		if fresh := t.Layouts[minor]; fresh == nil || SameOffsets(*fresh, layouts[i]) {
			t.Layouts[minor] = &layouts[i]
		}
	}
	for i := range formats {
		minor := formats[i].Version.MinorString()
		if fresh := t.Formats[minor]; fresh == nil || reflect.DeepEqual(fresh.Fields, formats[i].Fields) && fresh.Size == formats[i].Size {
			t.Formats[minor] = &formats[i]
		}
	}
}

// SameOffsets reports whether a and b agree in every member, whatever
// release and source each was read from.
func SameOffsets(a, b pyversions.Layout) bool {
	a.Version, a.Origin = b.Version, b.Origin
	return a == b
}

// Render returns the source of both generated files.
func (t *Tables) Render() (layouts, formats []byte, err error) {
	var ls []*pyversions.Layout
	for _, l := range t.Layouts {
		ls = append(ls, l)
	}
	var fs []*pyversions.DebugOffsetsFormat
	for _, f := range t.Formats {
		fs = append(fs, f)
	}
	if layouts, err = Render(ls); err != nil {
		return nil, nil, err
	}
	if formats, err = RenderDebugFormats(fs); err != nil {
		return nil, nil, err
	}
	return layouts, formats, nil
}
