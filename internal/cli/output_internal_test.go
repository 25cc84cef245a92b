package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pyprof/pyprof/internal/outfile"
	"github.com/pyprof/pyprof/internal/testpython"
)

// TestExplainOutputError: an output error is shown as it is, without the
// advice about reading a process that its EACCES would otherwise get.
func TestExplainOutputError(t *testing.T) {
	for _, err := range []error{
		&outfile.Error{Path: "/root/x.svg", Err: syscall.EACCES},
		&outfile.Error{Path: "/x/p.svg", Err: syscall.ENOENT},
	} {
		// As record returns it after a fallback, too.
		wrapped := fmt.Errorf("%w; the profile was saved to /tmp/pyprof-1.svg instead", err)
		for _, e := range []error{err, wrapped} {
			if got := explain(e); got != e.Error() {
				t.Errorf("explain(%v) = %q", e, got)
			}
		}
	}
}

// TestRecordOutputDescriptorsExhausted records in a subprocess whose
// RLIMIT_NOFILE is low and uses up every descriptor during sampling, as a
// descriptor leak would: the profile must still be written.
func TestRecordOutputDescriptorsExhausted(t *testing.T) {
	if pid := os.Getenv("PYPROF_EXHAUST_PID"); pid != "" {
		recordExhausted(t, pid, os.Getenv("PYPROF_EXHAUST_OUT"))
		return
	}
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	dir := t.TempDir()
	for _, name := range []string{"p.txt", "p.svg"} {
		out := filepath.Join(dir, name)
		cmd := exec.Command(os.Args[0], "-test.run=^TestRecordOutputDescriptorsExhausted$", "-test.v")
		cmd.Env = append(os.Environ(), "PYPROF_EXHAUST_PID="+strconv.Itoa(tg.Pid), "PYPROF_EXHAUST_OUT="+out, "TMPDIR="+dir)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), "--- PASS") {
			t.Fatalf("%v\n%s", err, b)
		}
		t.Logf("%s", b)
		if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", out, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("want only the two profiles in %s: %v", dir, ents)
	}
}

func recordExhausted(t *testing.T, pid, out string) {
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 128, Max: 128}); err != nil {
		t.Fatal(err)
	}
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	// Once the start line is out, the target is attached: every
	// descriptor goes, for the whole of sampling.
	stderr := &startWatcher{started: func() {
		for {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return
			}
			held = append(held, fd)
		}
	}}
	code := Run([]string{"record", "-p", pid, "-d", "1", "-o", out}, os.Stdout, stderr)
	t.Logf("held %d descriptors; stderr:\n%s", len(held), stderr.String())
	if len(held) == 0 || code != 0 || !strings.Contains(stderr.String(), "wrote "+out) {
		t.Errorf("exit %d", code)
	}
}

// startWatcher is record's stderr; it calls started when record says it
// has begun sampling.
type startWatcher struct {
	strings.Builder
	started func()
}

func (w *startWatcher) Write(p []byte) (int, error) {
	if w.started != nil && strings.Contains(string(p), "pyprof: sampling") {
		w.started()
		w.started = nil
	}
	return w.Builder.Write(p)
}
