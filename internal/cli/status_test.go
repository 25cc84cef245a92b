package cli_test

import (
	"bytes"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestRecordStatusLine: on a terminal, stderr carries a live status line
// redrawn in place, unless --hideprogress; on a pipe it does not.
func TestRecordStatusLine(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	args := []string{"record", "-p", strconv.Itoa(tg.Pid), "-d", "1.5", "-f", "collapsed"}

	onTerminal := func(extra ...string) string {
		cmd := pyprofCmd(t, append(append(args, "-o", filepath.Join(t.TempDir(), "a.txt")), extra...)...)
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer ptmx.Close()
		cmd.Stderr = tty
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		var out bytes.Buffer
		io.Copy(&out, ptmx) // ends with EIO once pyprof exits
		cmd.Wait()
		return out.String()
	}
	s := onTerminal()
	if strings.Count(s, "\r\x1b[K") < 3 || !strings.Contains(s, "samples") || !strings.Contains(s, "lag") {
		t.Errorf("no live status line on a terminal:\n%q", s)
	}
	// py-spy's --hideprogress hides it on a terminal too.
	if s := onTerminal("--hideprogress"); strings.Contains(s, "\x1b") || !strings.Contains(s, "Hz achieved") {
		t.Errorf("--hideprogress: a status line or no summary on a terminal:\n%q", s)
	}

	_, stderr, code := runPyprof(t, append(args, "-o", filepath.Join(t.TempDir(), "b.txt"))...)
	if code != 0 || strings.Contains(stderr, "\x1b") || strings.Contains(stderr, "\r") {
		t.Errorf("escape codes on a pipe (exit %d): %q", code, stderr)
	}
	if !strings.Contains(stderr, "press Ctrl-C") || !strings.Contains(stderr, "Hz achieved") {
		t.Errorf("start or summary line missing: %q", stderr)
	}
}
