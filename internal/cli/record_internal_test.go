package cli

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestRecordSecondInterruptAbandons: a Ctrl-C while the output is being
// written abandons it; nothing is left at the output path.
func TestRecordSecondInterruptAbandons(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	out := filepath.Join(t.TempDir(), "p.svg")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	defer func() { testHookWriting = nil }()
	testHookWriting = func() {
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		time.Sleep(300 * time.Millisecond)
	}
	var stderr strings.Builder
	code := Run([]string{"record", "-p", strconv.Itoa(tg.Pid), "-d", "1", "-o", out}, io.Discard, &stderr)
	if code != 130 || !strings.Contains(stderr.String(), "abandoned") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // let the abandoned writer finish
	if _, err := os.Stat(out); err == nil {
		t.Error("output written despite the second interrupt")
	}
	// Neither a temporary file nor a fallback is left.
	for _, dir := range []string{filepath.Dir(out), tmp} {
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("left in %s: %v", dir, ents)
		}
	}
}
