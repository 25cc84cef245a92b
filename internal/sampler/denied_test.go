package sampler

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

// deniedEnv carries the target's pid to TestPtraceDenied's child, which
// runs under a seccomp filter that denies ptrace.
const deniedEnv = "PYPROF_SAMPLER_DENIED_PID"

// TestPtraceDenied samples a target whose stacks tear often (churn.py on
// 3.7, where the default mode pauses tens of times a second) with ptrace
// denied: Blocking must stop at its first pause with the denial, and Auto
// must say so once and never try again, dropping the torn stacks.
func TestPtraceDenied(t *testing.T) {
	if pid := os.Getenv(deniedEnv); pid != "" {
		deniedChild(t, pid)
		return
	}
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.7")) {
		t.Run(py.Name, func(t *testing.T) {
			pid := testpython.StartProgress(t, py, "churn.py")
			cmd := testpython.NoPtrace(t, os.Args[0], "-test.run=^TestPtraceDenied$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), deniedEnv+"="+strconv.Itoa(pid))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestPtraceDenied/") {
				t.Errorf("child under seccomp: %v\n%s", err, out)
			} else {
				t.Logf("child under seccomp:\n%s", out)
			}
			testpython.CheckResumed(t, pid)
		})
	}
}

func deniedChild(t *testing.T, pidStr string) {
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := os.ReadFile("/proc/self/status"); !strings.Contains(string(status), "Seccomp:\t2") {
		t.Fatal("the child must run under noptrace's seccomp filter")
	}
	t.Run("blocking", func(t *testing.T) {
		s, err := New(pid, Options{Rate: 1000, Mode: Blocking})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = s.Run(ctx, func(Sample) { t.Error("a sample without a pause") })
		st := s.Stats()
		if !errors.Is(err, procmem.ErrPtraceDenied) || !strings.Contains(err.Error(), "pause process "+pidStr) {
			t.Errorf("Run = %v, want the denial of the first pause of process %d", err, pid)
		}
		if st.Rounds != 1 || st.Stacks != 0 || st.Stopped != 0 {
			t.Errorf("%d rounds, %d stacks, stopped %v; want one round and nothing stopped", st.Rounds, st.Stacks, st.Stopped)
		}
	})
	t.Run("auto", func(t *testing.T) {
		var denials []error
		s, err := New(pid, Options{Rate: 1000, Mode: Auto, PauseDenied: func(p int, err error) {
			if p != pid {
				t.Errorf("PauseDenied for process %d, want %d", p, pid)
			}
			denials = append(denials, err)
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stacks := 0
		emit := func(smp Sample) { stacks += len(smp.Threads) }
		for i := 0; i < 20000 && len(denials) == 0; i++ {
			s.Round(emit)
		}
		if len(denials) == 0 {
			t.Fatalf("no pause needed in 20000 samples (%+v)", s.Stats())
		}
		if !errors.Is(denials[0], procmem.ErrPtraceDenied) {
			t.Errorf("PauseDenied(%v), want a denial", denials[0])
		}
		// From now on torn stacks are only read again and dropped: a
		// new attempt to pause would be reported again.
		before := s.Stats()
		for range 5000 {
			s.Round(emit)
		}
		st := s.Stats()
		t.Logf("after the denial: %d torn samples read again, %d errors, %d stacks", st.Retries-before.Retries, st.Errors-before.Errors, st.Stacks-before.Stacks)
		if len(denials) != 1 || st.Paused != 0 || st.Stopped != 0 {
			t.Errorf("%d denials reported, %d samples paused, stopped %v; want one, none and nothing", len(denials), st.Paused, st.Stopped)
		}
		if st.Retries == before.Retries || st.Stacks == before.Stacks {
			t.Errorf("after the denial no stack was torn or none kept: %+v", st)
		}
	})
}
