package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyversions"
)

// TestSupportedWindow keeps the supported versions one list: README's
// table, `pyprof --version` and the versions the oracle tests require all
// say exactly what pyversions supports.
func TestSupportedWindow(t *testing.T) {
	want := pyversions.Supported()

	root, err := testpython.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Supported Python versions\n")
	if !ok {
		t.Fatal("README has no Supported Python versions section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+\.\d+) \|`).FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	if !slices.Equal(documented, want) {
		t.Errorf("README's table lists %v, pyversions supports %v", documented, want)
	}

	out, _, code := runPyprof(t, "--version")
	if code != 0 || !strings.Contains(out, "(CPython "+strings.Join(want, ", ")+")") {
		t.Errorf("pyprof --version = %q (exit %d), want it to list %v", out, code, want)
	}

	if !slices.Equal(testpython.DumpMinors, want) {
		t.Errorf("the oracle tests require %v, pyversions supports %v", testpython.DumpMinors, want)
	}
}
