package sampler

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

// attachWhenReady retries New while a just-started interpreter initialises.
func attachWhenReady(t *testing.T, pid int, opts Options) *Sampler {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := New(pid, opts)
		if err == nil {
			t.Cleanup(s.Close)
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("attach %d: %v", pid, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procState reads a process's state letter, 0 if it is gone.
func procState(pid int) byte {
	st, err := procmem.DefaultFS.Stat(pid)
	if err != nil {
		return 0
	}
	return st.State
}

// TestZombieRootEndsRun: a root that exits while its parent does not reap
// it ends the run as a root that is gone does, with or without
// subprocesses. The run is given a minute; it must end long before.
func TestZombieRootEndsRun(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	for _, subprocesses := range []bool{false, true} {
		t.Run("subprocesses="+strconv.FormatBool(subprocesses), func(t *testing.T) {
			root, _ := testpython.StartUnreaped(t, py.Path, "-c", "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass")
			s := attachWhenReady(t, root, Options{Rate: 100, Subprocesses: subprocesses})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx, func(Sample) {}) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrTargetExited) {
					t.Errorf("Run: %v, want ErrTargetExited", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("still sampling 30 s after a 1.5 s target started (state %c)", procState(root))
			}
			// The run may end as soon as the root's memory is gone, while
			// the kernel is still tearing the process down (state R) before
			// it becomes a zombie: give that a few seconds on a loaded machine.
			st := procState(root)
			for deadline := time.Now().Add(5 * time.Second); st != 'Z' && time.Now().Before(deadline); st = procState(root) {
				time.Sleep(10 * time.Millisecond)
			}
			if st != 'Z' {
				t.Errorf("the root is in state %q, not a zombie: the test did not test one", st)
			}
		})
	}
}

// TestZombieSubprocessDropped: a subprocess that exits while its parent
// does not reap it is no longer sampled, and the root still is.
func TestZombieSubprocessDropped(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	// The child lives 4 s: a child met before its interpreter is up is
	// tried again only after retryNotPython.
	cmd := exec.Command(py.Path, "-c", `
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 4\nwhile time.time() < end: pass"])
print(child.pid, flush=True)
time.sleep(3600)  # child is never waited for
`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	child, cerr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || cerr != nil {
		t.Fatalf("no child pid: %q %v", line, err)
	}
	var mu sync.Mutex
	var seen, dropped bool
	var s *Sampler
	opts := Options{Rate: 100, Subprocesses: true, Tick: func(Stats) {
		cur := s.Current()
		mu.Lock()
		defer mu.Unlock()
		_, has := cur[child]
		_, root := cur[cmd.Process.Pid]
		seen = seen || has
		dropped = dropped || seen && !has && root && procState(child) == 'Z'
	}}
	s = attachWhenReady(t, cmd.Process.Pid, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(Sample) {}) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		ok := dropped
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("child %d (state %c) seen %v, never dropped as a zombie", child, procState(child), seen)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
