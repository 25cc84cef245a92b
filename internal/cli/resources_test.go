package cli_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/cli"
	"github.com/pyprof/pyprof/internal/testpython"
)

// TestRecordThreadChurnFdsFlat records, in this process, a target that
// starts and ends a thread every few milliseconds, and counts this
// process's open fds while it records: they must stay within a small
// constant of what they were before, however many threads come and go,
// and come back to it once the recording is written.
func TestRecordThreadChurnFdsFlat(t *testing.T) {
	const (
		seconds = 6
		// The target's live threads and those that ended since the
		// last sweep, the output, the target's mem file, the
		// interpreter's ELF (kept open for the life of pyprof, once per
		// binary) and the Go runtime's own.
		slack = 40
	)
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.9", "3.13")) {
		for _, mode := range []string{"auto", "blocking"} {
			t.Run(py.Name+"/"+mode, func(t *testing.T) {
				tg := testpython.Start(t, py, "threadchurn.py", "--every", "0.01", "--sleep", "0.01")
				out := filepath.Join(t.TempDir(), "churn.txt")
				args := []string{"record", "-p", strconv.Itoa(tg.Pid), "-d", strconv.Itoa(seconds), "-r", "200", "-o", out}
				if mode != "auto" {
					args = append(args, "--"+mode)
				}
				before := openFds(t)
				var stderr bytes.Buffer
				done := make(chan int)
				go func() { done <- cli.Run(args, io.Discard, &stderr) }()
				most := before
				var code int
			poll:
				for {
					select {
					case code = <-done:
						break poll
					case <-time.After(50 * time.Millisecond):
						most = max(most, openFds(t))
					}
				}
				after := openFds(t)
				if code != 0 {
					t.Fatalf("record exited %d: %s", code, stderr.String())
				}
				if most > before+slack {
					t.Errorf("%d fds open while recording, %d before: want at most %d more", most, before, slack)
				}
				if after > before+1 {
					t.Errorf("%d fds open after recording, %d before", after, before)
				}
				if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
					t.Errorf("no profile written: %v\n%s", err, stderr.String())
				}
				t.Logf("fds: %d before, up to %d while recording, %d after; %s", before, most, after, stderr.String())
			})
		}
	}
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
