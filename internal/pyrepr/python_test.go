package pyrepr

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testenv"
)

// requiredPythons are the pyenv minors that PYPROF_REQUIRE_PYTHONS=all
// (or a list naming them) insists on, so that CI cannot pass by silently skipping one.
var requiredPythons = []string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"}

type interpreter struct {
	name    string // for subtest names: the pyenv version or "system-pythonX.Y"
	path    string
	version Version
}

var pythonName = regexp.MustCompile(`^python([23])\.(\d+)$`)

func pyenvRoot() string {
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		return r
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".pyenv")
}

func findInterpreters(t *testing.T) []interpreter {
	t.Helper()
	var found []interpreter
	pyenv := map[string]bool{}
	var paths []string
	if root := pyenvRoot(); root != "" {
		paths, _ = filepath.Glob(filepath.Join(root, "versions", "*", "bin", "python*"))
	}
	system, _ := filepath.Glob("/usr/bin/python*")
	for i, p := range append(paths, system...) {
		m := pythonName.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		name := "system-" + filepath.Base(p)
		if i < len(paths) {
			pyenv[m[1]+"."+m[2]] = true
			name = filepath.Base(filepath.Dir(filepath.Dir(p)))
		}
		found = append(found, interpreter{name, p, Version{major, minor}})
	}
	for _, want := range requiredPythons {
		if pyenv[want] {
			continue
		}
		if testenv.Required(testenv.Pythons, want) {
			t.Fatalf("python%s not found under %s/versions, but %s requires it", want, pyenvRoot(), testenv.Pythons)
		}
		t.Logf("python%s not found under %s/versions; not comparing against it", want, pyenvRoot())
	}
	return found
}

// pyCorpus is what testdata/repr.py reads. Floats travel as bit patterns
// and ints as decimal so that no JSON number conversion can alter them;
// bytes travel as number lists because Go would encode []byte as base64.
type pyCorpus struct {
	Floats []string `json:"floats"`
	Ints   []string `json:"ints"`
	Strs   [][]rune `json:"strs"`
	Bytes  [][]int  `json:"bytes"`
}

type pyResult struct {
	Version    []int    `json:"version"`
	Floats     []string `json:"floats"`
	Ints       []string `json:"ints"`
	Strs       []string `json:"strs"`
	Bytes      []string `json:"bytes"`
	Containers []string `json:"containers"`
}

// ourContainers builds, with the package's helpers, the containers that
// container_reprs in testdata/repr.py prints.
func ourContainers(v Version) []string {
	set := func(name string, n int) string {
		var b strings.Builder
		b.WriteString(SetOpen(name, n, v))
		for i := range n {
			if i > 0 {
				b.WriteString(Sep)
			}
			b.WriteString(strconv.Itoa(i + 1))
		}
		b.WriteString(SetClose(name, n, v))
		return b.String()
	}
	return []string{
		"(" + TupleClose(0), "(1" + TupleClose(1), "(1" + Sep + "2" + TupleClose(2),
		"[]", "[1]", "[1" + Sep + "2]",
		"{}", "{1" + KeySep + "2}", "{1" + KeySep + "2" + Sep + "3" + KeySep + "4}",
		set("set", 0), set("set", 1), set("set", 2),
		set("frozenset", 0), set("frozenset", 1), set("frozenset", 2),
		"[" + RecursiveList + "]", "{1" + KeySep + RecursiveDict + "}", "([" + RecursiveTuple + "]" + TupleClose(1),
	}
}

// TestAgainstInterpreters compares every function with repr() computed by
// each installed CPython on the same corpus.
func TestAgainstInterpreters(t *testing.T) {
	pythons := findInterpreters(t)
	if len(pythons) == 0 {
		return
	}
	floats := corpusFloats()
	ints := corpusInts()
	strs := corpusStrs()
	bytess := corpusBytes()
	c := pyCorpus{Strs: strs, Bytes: intLists(bytess)}
	for _, f := range floats {
		c.Floats = append(c.Floats, fmt.Sprintf("%016x", math.Float64bits(f)))
	}
	for _, x := range ints {
		c.Ints = append(c.Ints, x.String())
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "corpus.json")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "repr.py"))
	if err != nil {
		t.Fatal(err)
	}

	for i, py := range pythons {
		t.Run(py.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(dir, fmt.Sprintf("out%d.json", i))
			cmd := exec.Command(py.path, script, in, out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", py.path, err, msg)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var res pyResult
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Version) != 2 || res.Version[0] != py.version.Major || res.Version[1] != py.version.Minor {
				t.Fatalf("%s reports version %v", py.path, res.Version)
			}
			v := py.version
			py2 := v.Major == 2
			cmp := newComparer(t, py.path)
			for i, f := range floats {
				cmp.check("Float", fmt.Sprintf("%016x", math.Float64bits(f)), Float(f), res.Floats[i])
			}
			for i, x := range ints {
				mag, neg := digitsOf(x)
				want := Int(mag, neg)
				if py2 {
					want += LongSuffix
				}
				cmp.check("Int", x.String(), want, res.Ints[i])
			}
			for i, s := range strs {
				cmp.check("Str", describeRunes(s), Str(s, v), res.Strs[i])
			}
			for i, b := range bytess {
				cmp.check("Bytes", fmt.Sprintf("%x", b), Bytes(b, py2), res.Bytes[i])
			}
			for i, want := range ourContainers(v) {
				cmp.check("containers", strconv.Itoa(i), want, res.Containers[i])
			}
			cmp.done()
		})
	}
}

func intLists(bs [][]byte) [][]int {
	out := make([][]int, len(bs))
	for i, b := range bs {
		out[i] = make([]int, len(b))
		for j, c := range b {
			out[i][j] = int(c)
		}
	}
	return out
}

func describeRunes(s []rune) string {
	if len(s) > 4 {
		return fmt.Sprintf("%d code points from U+%04X", len(s), s[0])
	}
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = fmt.Sprintf("U+%04X", c)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// comparer reports the first few mismatches of each kind and a count, so
// a systematic error does not flood the log.
type comparer struct {
	t      *testing.T
	who    string
	counts map[string]int
}

func newComparer(t *testing.T, who string) *comparer {
	return &comparer{t: t, who: who, counts: map[string]int{}}
}

func (c *comparer) check(kind, input, got, want string) {
	c.t.Helper()
	if got == want {
		return
	}
	c.counts[kind]++
	if c.counts[kind] <= 10 {
		c.t.Errorf("%s(%s): got %s, %s says %s%s", kind, input, clip(got), c.who, clip(want), firstDiff(got, want))
	}
}

func (c *comparer) done() {
	for kind, n := range c.counts {
		c.t.Errorf("%s: %d mismatches in total", kind, n)
	}
}

func clip(s string) string {
	if len(s) > 120 {
		return strconv.Quote(s[:120]) + "..."
	}
	return strconv.Quote(s)
}

func firstDiff(a, b string) string {
	if len(a) <= 120 && len(b) <= 120 {
		return ""
	}
	ra, rb := []rune(a), []rune(b)
	i := 0
	for i < len(ra) && i < len(rb) && ra[i] == rb[i] {
		i++
	}
	end := func(r []rune) string { return strconv.Quote(string(r[i:min(len(r), i+30)])) }
	return fmt.Sprintf(" (first difference at rune %d: %s vs %s)", i, end(ra), end(rb))
}
