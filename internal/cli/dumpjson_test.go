package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestDumpJSONNoHTMLEscape: dump --json writes names such as <module> as
// they are, not as \u003cmodule\u003e, and the output still parses.
func TestDumpJSONNoHTMLEscape(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	out, errOut, code := runPyprof(t, "dump", "--json", "-p", itoa(tg.Pid))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, `\u003c`) || strings.Contains(out, `\u003e`) || strings.Contains(out, `\u0026`) {
		t.Errorf("HTML escapes in the JSON:\n%s", out)
	}
	if !strings.Contains(out, `"function": "<module>"`) {
		t.Errorf("no <module> frame in:\n%s", out)
	}
	var ds []dumpJSON
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("bad json: %v", err)
	}
	found := false
	for _, th := range ds[0].Threads {
		for _, f := range th.Frames {
			found = found || f.Function == "<module>"
		}
	}
	if !found {
		t.Error("<module> does not decode back")
	}
}
