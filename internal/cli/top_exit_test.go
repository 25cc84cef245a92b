package cli_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pyprof/pyprof/internal/testpython"
)

// checkLastTable checks how top left a terminal: it left the alternate
// screen, and then printed its last table on the normal screen, plainly
// (no cursor moves), followed by msg if any.
func checkLastTable(t *testing.T, out, msg string) {
	t.Helper()
	const leave = "\x1b[?25h\x1b[?1049l"
	i := strings.LastIndex(out, leave)
	if i < 0 || strings.Count(out, leave) != 1 {
		t.Fatalf("the alternate screen was left %d times; output ends %q", strings.Count(out, leave), out[max(0, len(out)-200):])
	}
	after := strings.ReplaceAll(out[i+len(leave):], "\r\n", "\n")
	if strings.Contains(after, "\x1b[") {
		t.Errorf("escape codes after leaving the alternate screen: %q", after)
	}
	lines := strings.Split(strings.TrimRight(after, "\n"), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "pyprof top — ") {
		t.Fatalf("no table after leaving the alternate screen: %q", after)
	}
	rows := 0
	for _, l := range lines {
		if topRow.MatchString(l) {
			rows++
		}
	}
	if rows == 0 {
		t.Errorf("the table has no rows: %q", after)
	}
	if msg != "" && lines[len(lines)-1] != msg {
		t.Errorf("last line %q, want %q after the table", lines[len(lines)-1], msg)
	}
}

// TestTopTargetExits runs top in a terminal on a program that ends: the
// last table stays on the screen, followed by the message saying so.
func TestTopTargetExits(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 120})
	top := pyprofCmd(t, "top", "--delay", "0.5") // built before the target starts
	cmd := exec.Command(py.Path, "-c", "import time\nend = time.time() + 2.5\nwhile time.time() < end: pass")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	top.Args = append(top.Args, "-p", itoa(cmd.Process.Pid))
	top.Stdin, top.Stdout, top.Stderr = tty, tty, tty
	if err := top.Start(); err != nil {
		t.Fatal(err)
	}
	defer top.Process.Kill()
	var out ptyOutput
	go out.read(ptmx)
	done := make(chan error, 1)
	go func() { done <- top.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("top did not end with its target")
	}
	time.Sleep(100 * time.Millisecond)
	checkLastTable(t, out.String(), "pyprof: the target exited")
}

// TestTopOnceTerminal: --once in a terminal leaves its one table there.
func TestTopOnceTerminal(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 120})
	top := pyprofCmd(t, "top", "-p", itoa(tg.Pid), "--once", "--delay", "0.5")
	top.Stdin, top.Stdout, top.Stderr = tty, tty, tty
	if err := top.Start(); err != nil {
		t.Fatal(err)
	}
	defer top.Process.Kill()
	var out ptyOutput
	go out.read(ptmx)
	if err := top.Wait(); err != nil {
		t.Errorf("top --once: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	checkLastTable(t, out.String(), "")
}
