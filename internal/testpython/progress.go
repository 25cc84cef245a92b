package testpython

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// StartProgress runs script, one of the benchmark targets that report
// PROGRESS lines rather than themselves (churn.py, callpaths.py,
// hotleaf.py), on py, and returns its pid once it has printed its first
// line: its interpreter is up and the work under way. It is killed when
// the test ends.
func StartProgress(t testing.TB, py Interpreter, script string) int {
	t.Helper()
	path := scriptPath(t, py, script)
	cmd := exec.Command(py.Path, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", py.Name, filepath.Base(path), err)
	}
	// Waited for only once killed: a wait of this process could take a
	// ptrace stop of the target that a pausing test waits for.
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	first := make(chan bool, 1)
	go func() {
		br := bufio.NewReader(out)
		_, err := br.ReadString('\n')
		first <- err == nil
		io.Copy(io.Discard, br)
	}()
	select {
	case ok := <-first:
		if !ok {
			t.Fatalf("%s on %s exited before its first line", filepath.Base(path), py.Name)
		}
	case <-time.After(readyTimeout):
		t.Fatalf("%s on %s printed nothing in %v", filepath.Base(path), py.Name, readyTimeout)
	}
	return cmd.Process.Pid
}
