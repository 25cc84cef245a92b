package testpython

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ReadyPrefix starts the one stdout line on which a target reports itself.
const ReadyPrefix = "PYPROF-READY "

const (
	readyTimeout   = 60 * time.Second
	threadsTimeout = 10 * time.Second
)

// Expect is a target's report about itself.
type Expect struct {
	Pid        int            `json:"pid"`
	Version    string         `json:"version"`
	Executable string         `json:"executable"`
	Threads    []ExpectThread `json:"threads"`
}

// ExpectThread is one thread as the target itself saw it.
type ExpectThread struct {
	ThreadID uint64 `json:"thread_id"` // the key of sys._current_frames, i.e. pthread_self
	// NativeID is the kernel's thread id, nil before Python 3.8.
	NativeID *int `json:"native_id,omitempty"`
	// Name is nil for a thread the threading module does not know.
	Name   *string       `json:"name"`
	Shape  string        `json:"shape"`  // which stack shape the thread parks in
	Frames []ExpectFrame `json:"frames"` // innermost first
}

// ExpectFrame is one Python frame.
type ExpectFrame struct {
	Function string        `json:"function"` // co_qualname where the code has one (3.11+), else co_name
	Filename string        `json:"filename"`
	Line     int           `json:"line"`
	Locals   []ExpectLocal `json:"locals,omitempty"`
}

// ExpectLocal is one local variable of a frame that records them.
type ExpectLocal struct {
	Name string `json:"name"`
	// Value is repr() for None, bool, int, float, str, bytes, tuple, list,
	// dict and set, and "<type at 0xaddr>" for anything else.
	Value string `json:"value"`
	// Repr is the real repr(), which differs from Value only for the other
	// types; kept so the rendering of those can be decided later.
	Repr     string `json:"repr,omitempty"`
	Argument bool   `json:"argument"`
}

// Shape returns the first thread parked in the named shape, or nil.
func (e *Expect) Shape(name string) *ExpectThread {
	for i := range e.Threads {
		if e.Threads[i].Shape == name {
			return &e.Threads[i]
		}
	}
	return nil
}

// Target is a running Python process started by a test. It is killed when
// the test ends, whether or not the test passed.
type Target struct {
	Cmd    *exec.Cmd
	Pid    int
	Interp Interpreter
	Script string  // absolute path of the script
	Expect *Expect // never nil once Start returns

	out *output
}

// Stdout returns the lines the target has printed so far, the report
// included.
func (tg *Target) Stdout() []string { return tg.out.lines() }

// Stderr returns what the target has written to stderr so far.
func (tg *Target) Stderr() string { return tg.out.stderrString() }

// Start runs script, a path relative to testdata/targets in the module (or
// an absolute path), on py, and returns once the target has reported
// itself and the reporting thread is gone, so that /proc/PID/task holds
// exactly the threads in the report.
func Start(t testing.TB, py Interpreter, script string, args ...string) *Target {
	t.Helper()
	return StartWithEnv(t, py, nil, script, args...)
}

// StartWithEnv is Start with env added to the target's environment.
func StartWithEnv(t testing.TB, py Interpreter, env []string, script string, args ...string) *Target {
	t.Helper()
	path := script
	if !filepath.IsAbs(path) {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, "testdata", "targets", script)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("target script: %v", err)
	}

	// A pipe of our own rather than StdoutPipe: Wait closes StdoutPipe's
	// reader, which would race with reading the report of a target that
	// exits right after printing it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &output{}
	cmd := exec.Command(py.Path, append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout = w
	cmd.Stderr = &out.stderr
	// Targets park forever; if the test binary dies without running its
	// cleanups they must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("start %s %s: %v", py.Name, script, err)
	}
	w.Close()
	tg := &Target{Cmd: cmd, Pid: cmd.Process.Pid, Interp: py, Script: path, out: out}
	desc := fmt.Sprintf("%s on %s (pid %d)", filepath.Base(path), py.Name, tg.Pid)

	// Wait only once the target has exited. Any wait call of this
	// process can consume a ptrace stop of a traced child, so a Wait
	// blocked for the whole test would steal the stops that a test
	// pausing the target waits for. A pidfd tells of the exit without
	// waiting.
	pidfd, err := unix.PidfdOpen(tg.Pid, 0)
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("pidfd of %s: %v", desc, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		defer unix.Close(pidfd)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit after SIGKILL", desc)
		}
		r.Close()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", desc, tg.Stderr())
		}
	})

	ready := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		out.read(r, ready)
		close(readDone)
	}()

	var line string
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case line = <-ready:
	case <-exited:
		// The report may still sit in the pipe behind the exit.
		select {
		case <-readDone:
		case <-time.After(time.Second):
		}
		select {
		case line = <-ready:
		default:
			t.Fatalf("%s exited before reporting: %v\nstderr:\n%s", desc, waitErr, tg.Stderr())
		}
	case <-timer.C:
		t.Fatalf("%s did not report within %v\nstdout:\n%s\nstderr:\n%s",
			desc, readyTimeout, strings.Join(tg.Stdout(), "\n"), tg.Stderr())
	}

	var exp Expect
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, ReadyPrefix)), &exp); err != nil {
		t.Fatalf("%s: bad report: %v\n%.2000s", desc, err, line)
	}
	if exp.Pid != tg.Pid {
		t.Fatalf("%s: report is from pid %d", desc, exp.Pid)
	}
	tg.Expect = &exp

	if err := waitThreads(tg.Pid, len(exp.Threads), exited); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", desc, err, tg.Stderr())
	}
	return tg
}

// waitThreads waits for the reporting thread to be gone: it has printed but
// may still be on its way out.
func waitThreads(pid, want int, exited <-chan struct{}) error {
	deadline := time.Now().Add(threadsTimeout)
	for {
		select {
		case <-exited:
			return errors.New("exited right after reporting")
		default:
		}
		tids, err := Tasks(pid)
		if err != nil {
			return err
		}
		if len(tids) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d threads in /proc/%d/task after %v, report lists %d: %s",
				len(tids), pid, threadsTimeout, want, describeTasks(pid, tids))
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Tasks returns the kernel thread ids of pid.
func Tasks(pid int) ([]int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

func describeTasks(pid int, tids []int) string {
	var parts []string
	for _, tid := range tids {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/comm", pid, tid))
		parts = append(parts, fmt.Sprintf("%d(%s)", tid, strings.TrimSpace(string(comm))))
	}
	return strings.Join(parts, " ")
}

var moduleRoot struct {
	once sync.Once
	dir  string
	err  error
}

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory, which go test sets to the package under test.
func ModuleRoot() (string, error) {
	moduleRoot.once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			moduleRoot.err = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				moduleRoot.dir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				moduleRoot.err = errors.New("no go.mod above the working directory")
				return
			}
			dir = parent
		}
	})
	return moduleRoot.dir, moduleRoot.err
}

// output collects a target's stdout lines and stderr; tests read both while
// the target runs.
type output struct {
	mu     sync.Mutex
	stdout []string
	stderr lockedBuffer
}

// read hands the first report line to ready and keeps every line.
func (o *output) read(r io.Reader, ready chan<- string) {
	br := bufio.NewReader(r)
	sent := false
	for {
		// Reports run to tens of kilobytes, past bufio.Scanner's default.
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(line, "\n")
			o.mu.Lock()
			o.stdout = append(o.stdout, line)
			o.mu.Unlock()
			if !sent && strings.HasPrefix(line, ReadyPrefix) {
				ready <- line
				sent = true
			}
		}
		if err != nil {
			return
		}
	}
}

func (o *output) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.stdout...)
}

func (o *output) stderrString() string { return o.stderr.String() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
