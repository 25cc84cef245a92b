// Package testpython runs real CPython processes for pyprof's tests.
//
// Tests find the interpreters installed on the machine with [For], start a
// target script from testdata/targets with [Start], and compare what pyprof
// read against the expectations the target printed about itself, using
// [DiffThreads]. The expected stacks come from the target's own
// sys._current_frames, never from a hand-written list, so they stay right
// on every Python version without per-version tables in the tests.
//
// A missing interpreter skips only when nobody asked for it: setting
// PYPROF_REQUIRE_PYTHONS turns an absent Python into a failure, so a CI
// machine that lost an interpreter cannot pass by skipping.
package testpython

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testenv"
)

// DumpMinors are the Python versions on which tests of the dump issue must
// pass.
var DumpMinors = []string{"2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"}

// RequireEnv names the environment variable that turns missing interpreters
// into failures. Its value is "all", or a comma list of minors such as
// "3.6,3.11", optionally with "system" to require SystemPython.
const RequireEnv = testenv.Pythons

// SystemPython is the distribution's interpreter. It matters because it is
// stripped and links libpython statically, unlike the pyenv builds.
const SystemPython = "/usr/bin/python3.11"

// SidEnv names the environment variable holding the cache directory that
// .ci/sid-pythons fills with Debian unstable's interpreters.
const SidEnv = "PYPROF_SID_CACHE"

// SidMinors are the minors .ci/sid-pythons installs. With RequireEnv=all a
// test that wants one of them fails unless the sid build is there too: its
// stripped distribution build is what those releases' users run.
var SidMinors = []string{"3.13", "3.14", "3.15"}

// SidCache returns the directory .ci/sid-pythons installs into.
func SidCache() string {
	if d := os.Getenv(SidEnv); d != "" {
		return d
	}
	return "/var/cache/pyprof"
}

// SidRoot returns the sid userland that .ci/sid-pythons bootstraps (python3
// with gunicorn and gevent), or "" when it is not installed.
func SidRoot() string {
	root := filepath.Join(SidCache(), "sid-root")
	if _, err := os.Stat(filepath.Join(root, ".complete")); err != nil {
		return ""
	}
	return root
}

// Interpreter is one Python found on this machine.
type Interpreter struct {
	Path         string // absolute path of the executable
	Version      string // exact version reported by the interpreter, e.g. "3.11.7"
	Major, Minor int
	Name         string // short unique label for subtests, e.g. "pyenv-3.11.7"
	// System marks a distribution's build (Debian's /usr/bin, or sid's
	// from .ci/sid-pythons): stripped, libpython linked statically.
	System bool
	// Sid marks a build from Debian unstable, unpacked by .ci/sid-pythons.
	Sid bool
}

// MinorVersion returns the version without its patch level, e.g. "3.11".
func (py Interpreter) MinorVersion() string {
	return fmt.Sprintf("%d.%d", py.Major, py.Minor)
}

func (py Interpreter) String() string { return py.Name + " (" + py.Path + ")" }

// brokenInterpreter is an executable that looks like a Python but did not
// answer the version probe; it must fail the tests that want its minor
// rather than silently drop out of them.
type brokenInterpreter struct {
	path  string
	minor string
	err   error
}

var discovery struct {
	once   sync.Once
	found  []Interpreter
	broken []brokenInterpreter
}

// All returns every interpreter found, sorted by minor version, pyenv
// builds before system ones. Discovery runs each interpreter once per process.
func All() []Interpreter {
	discovery.once.Do(discover)
	return slices.Clone(discovery.found)
}

// For returns the interpreters whose minor version (e.g. "3.9") is in want,
// or all of them when want is empty.
//
// A wanted minor that is not installed is logged and left out, unless
// RequireEnv asks for it, in which case the test fails; with nothing at all
// to return, the test is skipped. An interpreter that is installed but does
// not run always fails the test.
func For(t testing.TB, want ...string) []Interpreter {
	t.Helper()
	for _, w := range want {
		if !minorPattern.MatchString(w) {
			t.Fatalf("testpython.For: %q is not a version like \"3.11\"", w)
		}
	}
	req, err := parseRequire(os.Getenv(RequireEnv))
	if err != nil {
		t.Fatalf("%s: %v", RequireEnv, err)
	}
	all := All()
	wanted := func(minor string) bool { return len(want) == 0 || slices.Contains(want, minor) }

	for _, b := range discovery.broken {
		if wanted(b.minor) {
			t.Fatalf("python %s at %s is installed but does not run: %v", b.minor, b.path, b.err)
		}
	}

	fatal, logs := checkMissing(want, all, req)
	for _, msg := range logs {
		t.Log(msg)
	}
	if len(fatal) > 0 {
		t.Fatal(strings.Join(fatal, "\n"))
	}

	var out []Interpreter
	for _, py := range all {
		if wanted(py.MinorVersion()) {
			out = append(out, py)
		}
	}
	if len(out) == 0 {
		t.Skipf("no Python interpreter found for %v (set %s=all to fail instead)", want, RequireEnv)
	}
	return out
}

// OnePerMinor keeps the first interpreter of each minor version in
// interps: the pyenv build where there is one, since For sorts those first.
// Tests that exercise a mechanism rather than a build use it to run once
// per version, the distribution's build standing in where pyenv has none.
func OnePerMinor(interps []Interpreter) []Interpreter {
	var out []Interpreter
	seen := map[string]bool{}
	for _, py := range interps {
		if !seen[py.MinorVersion()] {
			seen[py.MinorVersion()] = true
			out = append(out, py)
		}
	}
	return out
}

var minorPattern = regexp.MustCompile(`^\d+\.\d+$`)

type requirement struct {
	all    bool
	system bool
	minors map[string]bool
}

func (r requirement) minor(m string) bool { return r.all || r.minors[m] }

// parseRequire rejects unknown tokens, because a typo such as "3,11" would
// otherwise quietly require nothing.
func parseRequire(s string) (requirement, error) {
	r := requirement{minors: map[string]bool{}}
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		switch {
		case tok == "":
		case tok == "all":
			r.all = true
		case tok == "system":
			r.system = true
		case minorPattern.MatchString(tok):
			r.minors[tok] = true
		default:
			return r, fmt.Errorf("unknown entry %q: want \"all\", \"system\" or versions like \"3.11\"", tok)
		}
	}
	return r, nil
}

// checkMissing splits the complaints about absent interpreters into those
// that must fail the test and those that are only worth a log line.
func checkMissing(want []string, found []Interpreter, req requirement) (fatal, logs []string) {
	have := map[string]bool{}
	haveSid := map[string]bool{}
	haveSystem := false
	for _, py := range found {
		have[py.MinorVersion()] = true
		if py.Path == SystemPython {
			haveSystem = true
		}
		if py.Sid {
			haveSid[py.MinorVersion()] = true
		}
	}
	for _, w := range want {
		if have[w] {
			continue
		}
		if req.minor(w) {
			fatal = append(fatal, fmt.Sprintf("python %s not found, but %s requires it", w, RequireEnv))
		} else {
			logs = append(logs, fmt.Sprintf("python %s not found; testing without it (set %s=%s to fail instead)", w, RequireEnv, w))
		}
	}
	if req.all {
		for _, m := range SidMinors {
			if have[m] && !haveSid[m] && (len(want) == 0 || slices.Contains(want, m)) {
				fatal = append(fatal, fmt.Sprintf("Debian unstable's python %s not found under %s, but %s requires it (run .ci/sid-pythons)", m, SidCache(), RequireEnv))
			}
		}
	}
	if (req.all || req.system) && !haveSystem && (len(want) == 0 || slices.Contains(want, "3.11")) {
		fatal = append(fatal, fmt.Sprintf("%s not found, but %s requires it", SystemPython, RequireEnv))
	}
	if len(found) == 0 && len(want) == 0 && (req.all || req.system || len(req.minors) > 0) {
		fatal = append(fatal, fmt.Sprintf("no Python interpreter found, but %s is set", RequireEnv))
	}
	return fatal, logs
}

var executablePattern = regexp.MustCompile(`^python(\d+)\.(\d+)$`)

type candidate struct {
	path   string
	label  string // Name prefix, e.g. "pyenv" or "debian"
	system bool
	sid    bool
}

func discover() {
	var cands []candidate
	if root := pyenvRoot(); root != "" {
		paths, _ := filepath.Glob(filepath.Join(root, "versions", "*", "bin", "python*"))
		for _, p := range paths {
			cands = append(cands, candidate{path: p, label: "pyenv"})
		}
	}
	label := "system"
	if _, err := os.Stat("/etc/debian_version"); err == nil {
		label = "debian"
	}
	paths, _ := filepath.Glob("/usr/bin/python*")
	for _, p := range paths {
		cands = append(cands, candidate{path: p, label: label, system: true})
	}
	paths, _ = filepath.Glob(filepath.Join(SidCache(), "sid", "usr", "bin", "python*"))
	for _, p := range paths {
		cands = append(cands, candidate{path: p, label: "sid", system: true, sid: true})
	}

	// pyenv aliases such as versions/3.11 -> 3.11.7 would otherwise show up
	// as a second interpreter.
	seen := map[string]bool{}
	var unique []candidate
	for _, c := range cands {
		if !executablePattern.MatchString(filepath.Base(c.path)) {
			continue
		}
		real, err := filepath.EvalSymlinks(c.path)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		unique = append(unique, c)
	}

	found := make([]Interpreter, len(unique))
	errs := make([]error, len(unique))
	var wg sync.WaitGroup
	for i, c := range unique {
		wg.Go(func() { found[i], errs[i] = probe(c) })
	}
	wg.Wait()

	names := map[string]bool{}
	for i, c := range unique {
		if errs[i] != nil {
			m := executablePattern.FindStringSubmatch(filepath.Base(c.path))
			discovery.broken = append(discovery.broken, brokenInterpreter{path: c.path, minor: m[1] + "." + m[2], err: errs[i]})
			continue
		}
		py := found[i]
		if names[py.Name] {
			// Two pyenv directories holding the same release: the directory
			// name tells them apart.
			py.Name = c.label + "-" + filepath.Base(filepath.Dir(filepath.Dir(c.path)))
		}
		names[py.Name] = true
		discovery.found = append(discovery.found, py)
	}
	slices.SortStableFunc(discovery.found, compareInterpreters)
}

// compareInterpreters groups by minor version, pyenv builds first within a
// minor: for the same minor they are the better-instrumented ones.
func compareInterpreters(a, b Interpreter) int {
	if c := slices.Compare([]int{a.Major, a.Minor}, []int{b.Major, b.Minor}); c != 0 {
		return c
	}
	if a.System != b.System {
		if a.System {
			return 1
		}
		return -1
	}
	if c := slices.Compare(versionKey(a.Version), versionKey(b.Version)); c != 0 {
		return c
	}
	return strings.Compare(a.Path, b.Path)
}

func versionKey(v string) []int {
	var key []int
	for _, part := range strings.Split(v, ".") {
		n, _ := strconv.Atoi(part)
		key = append(key, n)
	}
	return key
}

func pyenvRoot() string {
	if root := os.Getenv("PYENV_ROOT"); root != "" {
		return root
	}
	if pyenv, err := exec.LookPath("pyenv"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, pyenv, "root").Output(); err == nil {
			if root := strings.TrimSpace(string(out)); root != "" {
				return root
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".pyenv")
	}
	return ""
}

// probeScript works on Python 2 as well, so an old interpreter is reported
// with its version rather than as broken.
const probeScript = `import sys; print("%d.%d.%d" % tuple(sys.version_info[:3]))`

func probe(c candidate) (Interpreter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, "-c", probeScript)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			return Interpreter{}, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return Interpreter{}, err
	}
	version := strings.TrimSpace(string(out))
	key := versionKey(version)
	if len(key) != 3 {
		return Interpreter{}, fmt.Errorf("unexpected version %q", version)
	}
	m := executablePattern.FindStringSubmatch(filepath.Base(c.path))
	if m[1] != strconv.Itoa(key[0]) || m[2] != strconv.Itoa(key[1]) {
		return Interpreter{}, fmt.Errorf("named %s but reports version %s", filepath.Base(c.path), version)
	}
	abs, err := filepath.Abs(c.path)
	if err != nil {
		return Interpreter{}, err
	}
	return Interpreter{
		Path:    abs,
		Version: version,
		Major:   key[0],
		Minor:   key[1],
		Name:    c.label + "-" + version,
		System:  c.system,
		Sid:     c.sid,
	}, nil
}
