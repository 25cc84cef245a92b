package layoutgen_test

import (
	"reflect"
	"testing"

	"github.com/pyprof/pyprof/internal/layoutgen"
	"github.com/pyprof/pyprof/internal/testenv"
	"github.com/pyprof/pyprof/pyversions"
)

// skipOrFail skips a test that lacks builds, or fails it when
// PYPROF_REQUIRE_PYTHONS asks for any interpreter at all.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.SkipOrFail(t, testenv.Pythons, "", format, args...)
}

// diffLayouts lists the members where a and b differ, ignoring where
// each was read from.
func diffLayouts(a, b pyversions.Layout) []string {
	var out []string
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < av.NumField(); i++ {
		g := av.Field(i)
		if g.Kind() != reflect.Struct || av.Type().Field(i).Name == "Version" {
			continue
		}
		for j := 0; j < g.NumField(); j++ {
			if x, y := g.Field(j).Int(), bv.Field(i).Field(j).Int(); x != y {
				out = append(out, av.Type().Field(i).Name+"."+g.Type().Field(j).Name)
			}
		}
	}
	return out
}

// TestHeadersMatchDWARF compiles the headers that pyenv's 3.11+ builds
// installed and checks that they give the same layout, and the same
// _Py_DebugOffsets format, as those builds' own DWARF: the evidence that a
// table generated from a -dev package (3.14 and 3.15) is what the build
// itself would say.
func TestHeadersMatchDWARF(t *testing.T) {
	hs, err := layoutgen.PyenvHeaderBuilds("3.11")
	if err != nil {
		t.Fatal(err)
	}
	builds, err := layoutgen.FindBuilds()
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[pyversions.Version]string{}
	for _, b := range builds {
		byVersion[b.Version] = b.Path
	}
	minors := map[string]bool{}
	for _, h := range hs {
		minors[h.Version.MinorString()] = true
		t.Run(h.Version.String(), func(t *testing.T) {
			t.Parallel()
			got, gotF, err := layoutgen.ExtractHeaders(h)
			if err != nil {
				t.Fatal(err)
			}
			lib := byVersion[h.Version]
			want, err := layoutgen.Extract(lib, h.Version)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffLayouts(*got, *want); len(d) > 0 {
				t.Errorf("headers and DWARF of %s differ in %v\nheaders: %+v\n  DWARF: %+v", h.Version, d, *got, *want)
			}
			wantF, ok, err := layoutgen.ExtractDebugFormat(lib, h.Version)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (gotF != nil) {
				t.Fatalf("descriptor format from headers: %v, from DWARF: %v", gotF != nil, ok)
			}
			if ok {
				gotF.Origin, wantF.Origin = "", ""
				if !reflect.DeepEqual(gotF, wantF) {
					t.Errorf("_Py_DebugOffsets format differs:\nheaders: %+v\n  DWARF: %+v", *gotF, *wantF)
				}
			}
		})
	}
	for _, m := range []string{"3.11", "3.12", "3.13"} {
		if !minors[m] {
			skipOrFail(t, "no pyenv build of %s with headers", m)
		}
	}
}

// TestPatchReleases compiles the headers of every patch release
// .ci/sid-pythons fetched, sid's own included, and checks that LayoutFor
// gives each exactly: any difference from the release a minor's table was
// read from must be recorded in pyversions/patches.go.
func TestPatchReleases(t *testing.T) {
	patchHeaders, err := layoutgen.FindPatchHeaderBuilds()
	if err != nil {
		t.Fatal(err)
	}
	sid, err := layoutgen.FindHeaderBuilds()
	if err != nil {
		t.Fatal(err)
	}
	all := append(patchHeaders, sid...)
	perMinor := map[string]int{}
	for _, h := range all {
		perMinor[h.Version.MinorString()]++
		t.Run(h.Version.String(), func(t *testing.T) {
			t.Parallel()
			got, _, err := layoutgen.ExtractHeaders(h)
			if err != nil {
				t.Fatal(err)
			}
			want, err := pyversions.LayoutFor(h.Version)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffLayouts(*got, *want); len(d) > 0 {
				t.Errorf("%s differs from LayoutFor (table of %s with patches.go) in %v; record it in patches.go\nheaders: %+v\n  table: %+v",
					h.Version, want.Version, d, *got, *want)
			}
		})
	}
	// Two releases of a minor besides the table's own make the check
	// mean something.
	for _, m := range []string{"3.13", "3.14", "3.15"} {
		if perMinor[m] < 2 {
			skipOrFail(t, "headers of %d %s releases under %s; run .ci/sid-pythons", perMinor[m], m, layoutgen.SidCache())
		}
	}
}
