package pyversions_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/layoutgen"
	"github.com/pyprof/pyprof/internal/testenv"
	"github.com/pyprof/pyprof/pyversions"
)

// TestGeneratedTableIsCurrent regenerates every layout from the builds on
// this machine, DWARF and headers, and fails if the committed files differ
// from what go generate would write, so a changed spec or a new
// interpreter cannot go unnoticed.
func TestGeneratedTableIsCurrent(t *testing.T) {
	fresh, err := layoutgen.Fresh()
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh.Layouts) == 0 {
		testenv.SkipOrFail(t, testenv.Pythons, "", "no pyenv builds under %s and no headers under %s", layoutgen.PyenvRoot(), layoutgen.SidCache())
	}
	committed := map[string]pyversions.Layout{}
	for _, l := range pyversions.Generated() {
		committed[l.Version.MinorString()] = l
	}
	for minor, l := range fresh.Layouts {
		want, ok := committed[minor]
		switch {
		case !ok:
			t.Errorf("layouts_gen.go has no %s (read from %s); run go generate ./pyversions", minor, fresh.Sources[minor])
		case !layoutgen.SameOffsets(*l, want):
			t.Errorf("layout drift for %s: %s gives\n %+v\ncommitted from %s:\n %+v\nrun go generate ./pyversions, or record a patch release in patches.go",
				minor, fresh.Sources[minor], *l, want.Version, want)
		}
	}
	fresh.Merge(pyversions.Generated(), pyversions.GeneratedDebugOffsetsFormats())
	layouts, formats, err := fresh.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		src  []byte
	}{{"layouts_gen.go", layouts}, {"debugoffsets_gen.go", formats}} {
		old, err := os.ReadFile(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.src, old) {
			t.Errorf("%s is not what go generate writes; run go generate ./pyversions", f.name)
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
