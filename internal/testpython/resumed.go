package testpython

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0, nil, err
	}
	for _, l := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("TracerPid:")); ok {
			tracer, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	tasks, _ := filepath.Glob(dir + "/task/*/stat")
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 't' || b[i+2] == 'T') {
			tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			stopped = append(stopped, tid)
		}
	}
	return tracer, stopped, nil
}
