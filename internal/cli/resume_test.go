package cli

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

// checkResumed fails unless every thread of pid has left tracing stop and
// nothing traces it any more.
func checkResumed(t *testing.T, pid int) { testpython.CheckResumed(t, pid) }

// TestDumpAlwaysResumes interrupts a dump while its target is paused, by an
// error, SIGINT, SIGTERM and a panic, and checks that the target runs on.
func TestDumpAlwaysResumes(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
	pid := strconv.Itoa(tg.Pid)
	defer func() { testHookPaused = nil }()
	for _, tc := range []struct {
		name    string
		hook    func() error
		wantErr string
		panics  bool
	}{
		{"error", func() error { return errors.New("injected failure") }, "injected failure", false},
		{"SIGINT", func() error {
			syscall.Kill(os.Getpid(), syscall.SIGINT)
			time.Sleep(100 * time.Millisecond)
			return nil
		}, "interrupted", false},
		{"SIGTERM", func() error {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
			time.Sleep(100 * time.Millisecond)
			return nil
		}, "interrupted", false},
		{"panic", func() error { panic("injected panic") }, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testHookPaused = func() error {
				// The target must really be paused when the hook runs.
				p, _ := procmem.Open(tg.Pid)
				defer p.Close()
				if st, err := p.Status(); err != nil || st.TracerPid == 0 {
					t.Errorf("target not traced in hook: %+v %v", st, err)
				}
				return tc.hook()
			}
			var stderr strings.Builder
			var code int
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				code = Run([]string{"dump", "-p", pid}, io.Discard, &stderr)
				return false
			}()
			if panicked != tc.panics {
				t.Errorf("panicked = %v", panicked)
			}
			if !tc.panics && (code != 1 || !strings.Contains(stderr.String(), tc.wantErr)) {
				t.Errorf("exit %d, stderr %q", code, stderr.String())
			}
			checkResumed(t, tg.Pid)
		})
	}
}
