package testpython

import (
	"testing"
	"time"

	"github.com/pyprof/pyprof/procmem"
)

// CheckResumed fails the test unless, within 5 s, no thread of pid is in
// tracing or job-control stop and nothing traces it: what every pyprof
// command must leave behind, however it ended.
func CheckResumed(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tracer, stopped, err := traceState(pid)
		if err != nil {
			t.Fatal(err)
		}
		if tracer == 0 && len(stopped) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("target %d not resumed: TracerPid %d, stopped threads %v", pid, tracer, stopped)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func traceState(pid int) (tracer int, stopped []int, err error) {
	p, err := procmem.Open(pid)
	if err != nil {
		return 0, nil, err
	}
	defer p.Close()
	status, err := p.Status()
	if err != nil {
		return 0, nil, err
	}
	tids, _ := p.Threads()
	for _, tid := range tids {
		st, err := p.ThreadStat(tid)
		if err != nil {
			continue // the thread exited
		}
		if st == 't' || st == 'T' {
			stopped = append(stopped, tid)
		}
	}
	return status.TracerPid, stopped, nil
}
