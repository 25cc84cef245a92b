package testpython

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testenv"
)

// GreenletReport is what testdata/targets/greenlets.py says of itself:
// every started, live greenlet but its reporter, as a forked child of it
// saw them.
type GreenletReport struct {
	Pid        int    `json:"pid"`
	Lib        string `json:"lib"`
	Greenlet   string `json:"greenlet"` // greenlet.__version__
	MainThread struct {
		Name string `json:"name"`
	} `json:"main_thread"`
	Greenlets []ExpectGreenlet `json:"greenlets"`
}

// ExpectGreenlet is one greenlet as the target saw it.
type ExpectGreenlet struct {
	Address uint64  `json:"address"` // id()
	Name    *string `json:"name"`    // gevent's name, where set or cached
	// Shape is what it parks in: "hub" and "main" for those greenlets.
	Shape string `json:"shape"`
	Main  bool   `json:"main"`
	// Thread is the ident of the OS thread the greenlet belongs to,
	// when not the main thread (greenlets.py --thread).
	Thread *uint64       `json:"thread"`
	Frames []ExpectFrame `json:"frames"` // gr_frame's chain, innermost first
}

// GreenletPythons are the interpreters with greenlet, gevent and eventlet
// installed by the distribution: Debian 12's python3.11 (greenlet 2.0.2)
// and the sid root's (3.3.2). A missing one is skipped or fails (see
// testenv) in a subtest of its own.
func GreenletPythons(t *testing.T) []Interpreter {
	t.Helper()
	var out []Interpreter
	for _, py := range All() {
		if py.Path == SystemPython {
			out = append(out, py)
		}
	}
	if len(out) == 0 {
		t.Run("system", func(t *testing.T) {
			testenv.SkipOrFail(t, testenv.Pythons, "system", "no %s", SystemPython)
		})
	}
	t.Run("sid-root", func(t *testing.T) { out = append(out, SidRootPython(t)) })
	return out
}

// StartGreenlets starts greenlets.py with lib (gevent or eventlet) on py,
// or skips when py lacks lib.
func StartGreenlets(t *testing.T, py Interpreter, lib string, args ...string) (*Target, *GreenletReport) {
	t.Helper()
	if !HasModules(py, lib, "greenlet") {
		testenv.SkipOrFail(t, testenv.Pythons, "greenlet", "%s has no %s", py, lib)
	}
	tg := Start(t, py, "greenlets.py", append([]string{"--lib", lib}, args...)...)
	var rep GreenletReport
	for _, line := range tg.Stdout() {
		if rest, ok := strings.CutPrefix(line, ReadyPrefix); ok {
			if err := json.Unmarshal([]byte(rest), &rep); err != nil {
				t.Fatalf("bad report: %v", err)
			}
		}
	}
	if len(rep.Greenlets) == 0 {
		t.Fatalf("no greenlets in the report:\n%s", strings.Join(tg.Stdout(), "\n"))
	}
	return tg, &rep
}
