package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

func TestPauseMessages(t *testing.T) {
	denied := fmt.Errorf("pause process 7: %w", &procmem.SeizeError{Tid: 8, Err: syscall.EPERM})
	traced := &procmem.SeizeError{Tid: 8, Tracer: 9, Err: syscall.EPERM}
	for _, tc := range []struct {
		name    string
		err     error
		refusal string
		// blocking is the start of what record and top report when Run
		// ends with err, "" if err itself.
		blocking string
	}{
		{"denied", denied, "ptrace: operation not permitted", "--blocking needs ptrace to pause the target, and ptrace was refused (pause process 7: seize thread 8: operation not permitted); run without --blocking"},
		{"traced", traced, "another program traces it: TracerPid 9", ""},
		{"other", syscall.ESRCH, "no such process", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pauseRefusal(tc.err); got != tc.refusal {
				t.Errorf("pauseRefusal = %q, want %q", got, tc.refusal)
			}
			got := samplingError(tc.err)
			if tc.blocking == "" {
				if got != tc.err {
					t.Errorf("samplingError = %v, want the error itself", got)
				}
				return
			}
			if !strings.HasPrefix(got.Error(), tc.blocking) {
				t.Errorf("samplingError = %q, want prefix %q", got, tc.blocking)
			}
			// Not a failure to read the target: no capability advice.
			if msg := explain(got); msg != got.Error() {
				t.Errorf("explained as %q", msg)
			}
		})
	}
}

// TestDumpWhileTraced dumps a target that another program holds paused:
// ptrace cannot pause it again, so dump reads it as it stands, says why on
// stderr, and prints the usual dump.
func TestDumpWhileTraced(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion")
	p, err := procmem.Open(tg.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pp, err := p.Pause()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := Run([]string{"dump", "--json", "-p", strconv.Itoa(tg.Pid)}, &stdout, &stderr)
	if err := pp.Resume(); err != nil {
		t.Fatal(err)
	}
	checkResumed(t, tg.Pid)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := fmt.Sprintf("pyprof: cannot pause process %d (another program traces it: TracerPid ", tg.Pid)
	if !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 || !strings.HasSuffix(stderr.String(), "); reading without pausing, so a stack may be inconsistent\n") {
		t.Errorf("stderr %q, want one line starting %q", stderr.String(), want)
	}
	var ds []processDump
	if err := json.Unmarshal([]byte(stdout.String()), &ds); err != nil || len(ds) != 1 || len(ds[0].Threads) != len(tg.Expect.Threads) {
		t.Errorf("stdout (%v):\n%s", err, stdout.String())
	}
}
