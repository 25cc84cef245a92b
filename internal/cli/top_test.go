package cli_test

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/pyprof/pyprof/internal/testpython"
)

// topRow matches a table row: %Own %Total OwnTime TotalTime Function (where).
var topRow = regexp.MustCompile(`^\s*([\d.]+)% +([\d.]+)% +([\d.]+)s +([\d.]+)s  (\S+) \((.*)\)$`)

type row struct {
	own, total float64
	fn         string
}

// tables splits piped top output into tables of rows.
func tables(out string) [][]row {
	var all [][]row
	var cur []row
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "--- ") {
			if cur != nil {
				all = append(all, cur)
			}
			cur = []row{}
			continue
		}
		if m := topRow.FindStringSubmatch(l); m != nil {
			own, _ := strconv.ParseFloat(m[1], 64)
			total, _ := strconv.ParseFloat(m[2], 64)
			cur = append(cur, row{own, total, m[5]})
		}
	}
	if cur != nil {
		all = append(all, cur)
	}
	return all
}

// TestTopPiped runs top into a pipe on a 60/30/10 target for 3 s: plain
// tables with a timestamp line between them, no escape codes, and the
// three functions in the right order with the right shares, on 2.7 as on
// 3.15. Once per version: sid's build stands in where pyenv has none.
func TestTopPiped(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "2.7", "3.11", "3.12", "3.13", "3.14", "3.15")) {
		// The table on every version; refreshes and Ctrl-C on one.
		t.Run(py.Name, func(t *testing.T) { topPiped(t, py, py.MinorVersion() == "3.11") })
	}
}

func topPiped(t *testing.T, py testpython.Interpreter, full bool) {
	tg := testpython.Start(t, py, "busy.py", "--split", "60,30,10")
	pid := strconv.Itoa(tg.Pid)

	out, stderr, code := runPyprof(t, "top", "-p", pid, "--once", "--delay", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape codes in piped output: %q", out)
	}
	ts := tables(out)
	if len(ts) != 1 || len(ts[0]) < 3 {
		t.Fatalf("want one table, got:\n%s", out)
	}
	want := map[string]float64{"hot_a": 60, "hot_b": 30, "hot_c": 10}
	for i, name := range []string{"hot_a", "hot_b", "hot_c"} {
		r := ts[0][i]
		if r.fn != name || r.own < want[name]-5 || r.own > want[name]+5 {
			t.Errorf("row %d: %s %.1f%%, want %s %.0f%% ± 5\n%s", i, r.fn, r.own, name, want[name], out)
		}
	}
	t.Logf("%s %.1f%%, %s %.1f%%, %s %.1f%%", ts[0][0].fn, ts[0][0].own, ts[0][1].fn, ts[0][1].own, ts[0][2].fn, ts[0][2].own)
	if !strings.Contains(out, "Python "+tg.Expect.Version) || !strings.Contains(out, "GIL: ") {
		t.Errorf("header lacks version or GIL share:\n%s", out)
	}
	if !full {
		return
	}

	out, _, code = runPyprof(t, "top", "-p", pid, "-d", "3.5", "--delay", "1")
	if n := len(tables(out)); code != 0 || n < 3 {
		t.Errorf("exit %d, %d tables in 3.5 s at 1 s:\n%s", code, n, out)
	}

	// Ctrl-C ends top cleanly, even while it pauses the target for
	// every sample, and leaves the target running and untraced.
	cmd := pyprofCmd(t, "top", "-p", pid, "--blocking", "-r", "1000", "--delay", "0.2")
	var piped ptyOutput
	cmd.Stdout = &piped
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a table", func() bool { return strings.Contains(piped.String(), "--- ") })
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("top after Ctrl-C: %v", err)
	}
	testpython.CheckResumed(t, tg.Pid)
}

// ptyOutput collects what a program writes to a pty.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *ptyOutput) read(r io.Reader) {
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		p.mu.Lock()
		p.buf.Write(b[:n])
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTopTerminal runs top in a real terminal (a pty): it redraws in
// place, 2 re-sorts by %Total, and q exits with the terminal restored.
func TestTopTerminal(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py", "--split", "60,30,10")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 120})
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := pyprofCmd(t, "top", "-p", strconv.Itoa(tg.Pid), "--delay", "0.5")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var out ptyOutput
	go out.read(ptmx)

	waitFor(t, "two redraws", func() bool { return strings.Count(out.String(), "\x1b[H") >= 2 })
	s := out.String()
	if !strings.Contains(s, "\x1b[?1049h") || !strings.Contains(s, "▼%Own") {
		t.Errorf("no alternate screen or default sort in:\n%q", s)
	}
	// In place: frames start at home, not on new lines below the old.
	if strings.Contains(s, "--- ") {
		t.Errorf("terminal output looks like piped output")
	}

	ptmx.Write([]byte("2"))
	waitFor(t, "re-sort by %Total", func() bool { return strings.Contains(out.String(), "▼%Total") })
	// The rows of the last frame drawn after the key are in %Total order.
	waitFor(t, "a full frame sorted by %Total", func() bool {
		s := out.String()
		last := s[strings.LastIndex(s, "\x1b[H"):]
		if !strings.Contains(last, "▼%Total") || !strings.Contains(last, "\x1b[J") {
			return false
		}
		var totals []float64
		for _, l := range strings.Split(last, "\r\n") {
			l = strings.ReplaceAll(strings.ReplaceAll(l, "\x1b[K", ""), "\x1b[J", "")
			if m := topRow.FindStringSubmatch(l); m != nil {
				v, _ := strconv.ParseFloat(m[2], 64)
				totals = append(totals, v)
			}
		}
		for i := 1; i < len(totals); i++ {
			if totals[i] > totals[i-1] {
				t.Fatalf("rows not sorted by %%Total: %v", totals)
			}
		}
		return len(totals) >= 3
	})

	ptmx.Write([]byte("q"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not exit top")
	}
	time.Sleep(100 * time.Millisecond)
	checkLastTable(t, out.String(), "")
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal modes not restored: lflag %#x→%#x iflag %#x→%#x oflag %#x→%#x",
			before.Lflag, after.Lflag, before.Iflag, after.Iflag, before.Oflag, after.Oflag)
	}
}
