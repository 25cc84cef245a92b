package pyversions_test

import (
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/layoutgen"
	"github.com/pyprof/pyprof/pyversions"
)

// TestGeneratedTableIsCurrent regenerates every layout from the interpreters
// on this machine and fails if the committed table differs, so a changed
// spec or a new interpreter cannot go unnoticed.
func TestGeneratedTableIsCurrent(t *testing.T) {
	builds, err := layoutgen.FindBuilds()
	if err != nil {
		t.Fatal(err)
	}
	if len(builds) == 0 {
		if os.Getenv("PYPROF_REQUIRE_PYTHONS") != "" {
			t.Fatalf("no pyenv builds under %s", layoutgen.PyenvRoot())
		}
		t.Skipf("no pyenv builds under %s", layoutgen.PyenvRoot())
	}
	committed := map[string]pyversions.Layout{}
	for _, l := range pyversions.Generated() {
		committed[l.Version.MinorString()] = l
	}
	committedFormats := map[string]pyversions.DebugOffsetsFormat{}
	for _, f := range pyversions.GeneratedDebugOffsetsFormats() {
		committedFormats[f.Version.MinorString()] = f
	}
	var fresh []*pyversions.Layout
	var freshFormats []*pyversions.DebugOffsetsFormat
	for _, b := range builds {
		t.Run(b.Version.String(), func(t *testing.T) {
			got, err := layoutgen.Extract(b.Path, b.Version)
			if err != nil {
				t.Fatal(err)
			}
			fresh = append(fresh, got)
			want, ok := committed[b.Version.MinorString()]
			if !ok {
				t.Fatalf("layouts_gen.go has no %s; run go generate ./pyversions", b.Version.MinorString())
			}
			// The committed entry may come from another patch release;
			// patches.go is where such differences belong, so the
			// offsets themselves must agree.
			want.Version = got.Version
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("layout drift for %s (committed from %s); run go generate ./pyversions\n got: %+v\nwant: %+v",
					b.Version, committed[b.Version.MinorString()].Version, *got, want)
			}
			f, ok, err := layoutgen.ExtractDebugFormat(b.Path, b.Version)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			freshFormats = append(freshFormats, f)
			wantF, ok := committedFormats[b.Version.MinorString()]
			if !ok {
				t.Fatalf("debugoffsets_gen.go has no %s; run go generate ./pyversions", b.Version.MinorString())
			}
			wantF.Version = f.Version
			if !reflect.DeepEqual(*f, wantF) {
				t.Errorf("_Py_DebugOffsets format drift for %s; run go generate ./pyversions\n got: %+v\nwant: %+v", b.Version, *f, wantF)
			}
		})
	}
	if len(fresh) == len(committed) && !t.Failed() {
		src, err := layoutgen.Render(fresh)
		if err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile("layouts_gen.go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, old) {
			t.Errorf("layouts_gen.go is not what go generate writes; run go generate ./pyversions")
		}
	}
	if len(freshFormats) == len(committedFormats) && !t.Failed() {
		src, err := layoutgen.RenderDebugFormats(freshFormats)
		if err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile("debugoffsets_gen.go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, old) {
			t.Errorf("debugoffsets_gen.go is not what go generate writes; run go generate ./pyversions")
		}
	}
}

// TestDetectBuilds checks that each installed interpreter's version is read
// from the binary rather than guessed from its name.
func TestDetectBuilds(t *testing.T) {
	builds, err := layoutgen.FindBuilds()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range builds {
		t.Run(b.Version.String(), func(t *testing.T) {
			// pyenv's directory name is the version pyenv installed.
			dir := b.Path[:strings.Index(b.Path, "/lib/")]
			want := dir[strings.LastIndex(dir, "/")+1:]
			if b.Version.String() != want {
				t.Errorf("detected %s, pyenv says %s", b.Version, want)
			}
		})
	}
	if _, err := exec.LookPath("/usr/bin/python3.11"); err == nil {
		t.Run("debian", func(t *testing.T) {
			v, src, err := layoutgen.DetectFile("/usr/bin/python3.11")
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("/usr/bin/python3.11", "-c", "import platform; print(platform.python_version())").Output()
			if err != nil {
				t.Fatal(err)
			}
			if v.String() != strings.TrimSpace(string(out)) || src != pyversions.FromPyVersion {
				t.Errorf("detected %s from %s, python says %s from Py_Version", v, src, out)
			}
		})
	}
}
