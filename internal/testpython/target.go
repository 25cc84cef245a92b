package testpython

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pyprof/pyprof/procmem"
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
	// Cmd is the process the test started: the interpreter, or for
	// StartInNamespace the unshare that runs it.
	Cmd *exec.Cmd
	// Pid is the interpreter's pid in the test's pid namespace.
	Pid int
	// OwnPid is its pid in its own pid namespace, as the report gives it:
	// Pid, except for StartInNamespace.
	OwnPid int
	// Root is, for StartInNamespace, where the private copy of the
	// interpreter is mounted: a directory that is empty outside the
	// target's mount namespace.
	Root   string
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
//
// On Python 2 a script "X.py" is replaced by its twin "X27.py" when there
// is one, since 2.7 cannot even parse most Python 3 targets; Script names
// the file that ran.
func Start(t testing.TB, py Interpreter, script string, args ...string) *Target {
	t.Helper()
	return StartWithEnv(t, py, nil, script, args...)
}

// StartWithEnv is Start with env added to the target's environment.
func StartWithEnv(t testing.TB, py Interpreter, env []string, script string, args ...string) *Target {
	t.Helper()
	path := scriptPath(t, py, script)
	cmd := exec.Command(py.Path, append([]string{path}, args...)...)
	cmd.Env = env
	return start(t, py, path, cmd, "")
}

// StartInNamespace runs script as Start does, but as a container would: in
// new mount and pid namespaces, as the init (pid 1) of its pid namespace,
// and from a private copy of the interpreter (and of its libpython) on a
// tmpfs that only the target's mount namespace has, at Root. Outside the
// namespace nothing is at that path, so the interpreter's files can be
// reached only through /proc/PID/root. The script and the standard library
// are the machine's own; so are the loader and C library of a sid build,
// which its copy still names by their absolute paths in the prefix.
//
// The report's pid and native thread ids are the target's own; Pid is the
// test's view, and HostTID translates thread ids. Creating namespaces needs
// root: without it the test is skipped.
func StartInNamespace(t testing.TB, py Interpreter, script string, args ...string) *Target {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting a target in new namespaces needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("namespace targets need unshare from util-linux: %v", err)
	}
	path := scriptPath(t, py, script)
	lib, err := libpython(py.Path)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	// --kill-child makes the target die with unshare, and so with the
	// test binary through Pdeathsig.
	argv := []string{"--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
		"/bin/sh", "-c", namespaceScript, "sh", root, py.Path, lib, path}
	cmd := exec.Command(unshare, append(argv, args...)...)
	if home := pythonHome(py); home != "" {
		cmd.Env = []string{"PYTHONHOME=" + home}
	}
	return start(t, py, path, cmd, root)
}

// pythonHome returns the PYTHONHOME a copy of py needs to find its
// standard library, or "" if it finds it unaided. pyenv's and the system's
// builds fall back on their configured prefix, which holds the library; a
// sid build was configured for /usr, where this machine has another
// Debian's, so its copy must be pointed back at the prefix it came from.
func pythonHome(py Interpreter) string {
	if !py.Sid {
		return ""
	}
	return filepath.Dir(filepath.Dir(py.Path))
}

// namespaceScript runs inside the namespaces: it mounts a tmpfs over the
// (empty) root directory, copies the interpreter and its libpython there
// and runs the script on the copy, which replaces the shell as pid 1.
// Arguments: root, interpreter, libpython or "", script, script arguments.
const namespaceScript = `set -e
root=$1 exe=$2 lib=$3
shift 3
mount -t tmpfs -o mode=0755 pyprof-testpython "$root"
mkdir "$root/bin" "$root/lib"
cp "$exe" "$root/bin/"
if [ -n "$lib" ]; then cp "$lib" "$root/lib/"; fi
export LD_LIBRARY_PATH="$root/lib"
exec "$root/bin/${exe##*/}" "$@"
`

// libpython returns the shared libpython that the interpreter at path
// needs, from the lib directory beside its bin, or "" for an interpreter
// that links libpython statically.
func libpython(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	for _, l := range libs {
		if strings.HasPrefix(l, "libpython") {
			lib := filepath.Join(filepath.Dir(filepath.Dir(path)), "lib", l)
			if _, err := os.Stat(lib); err != nil {
				return "", fmt.Errorf("%s needs %s: %w", path, l, err)
			}
			return lib, nil
		}
	}
	return "", nil
}

func scriptPath(t testing.TB, py Interpreter, script string) string {
	t.Helper()
	path := script
	if !filepath.IsAbs(path) {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, "testdata", "targets", script)
	}
	path = ScriptFor(py, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("target script: %v", err)
	}
	return path
}

// start runs cmd, which runs the script at path on py: directly, or in
// namespaces under a private root.
func start(t testing.TB, py Interpreter, path string, cmd *exec.Cmd, root string) *Target {
	t.Helper()
	// A pipe of our own rather than StdoutPipe: Wait closes StdoutPipe's
	// reader, which would race with reading the report of a target that
	// exits right after printing it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &output{}
	// What the caller put in cmd.Env is added to our environment.
	cmd.Env = append(append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"), cmd.Env...)
	cmd.Stdout = w
	cmd.Stderr = &out.stderr
	// Targets park forever; if the test binary dies without running its
	// cleanups they must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("start %s %s: %v", py.Name, filepath.Base(path), err)
	}
	w.Close()
	tg := &Target{Cmd: cmd, Pid: cmd.Process.Pid, Root: root, Interp: py, Script: path, out: out}
	desc := fmt.Sprintf("%s on %s (pid %d)", filepath.Base(path), py.Name, tg.Pid)
	if root != "" {
		desc = fmt.Sprintf("%s on %s in namespaces (unshare pid %d)", filepath.Base(path), py.Name, tg.Pid)
	}

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
	tg.OwnPid = exp.Pid
	if root != "" {
		pid, err := namespaceChild(tg.Pid, exp.Pid)
		if err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		tg.Pid = pid
		// Cleanups run last-in first-out: the target goes first, and
		// unshare, which waits for it, follows.
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	} else if exp.Pid != tg.Pid {
		t.Fatalf("%s: report is from pid %d", desc, exp.Pid)
	}
	tg.Expect = &exp

	if err := waitThreads(tg.Pid, len(exp.Threads), exited); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", desc, err, tg.Stderr())
	}
	return tg
}

// namespaceChild returns the pid, in our namespace, of the child that
// unshare forked into the new pid namespace, checking that the child's own
// pid there is ownPid.
func namespaceChild(unshare, ownPid int) (int, error) {
	kids, err := children(unshare)
	if err != nil {
		return 0, fmt.Errorf("children of unshare: %w", err)
	}
	if len(kids) != 1 {
		return 0, fmt.Errorf("unshare %d has children %v, want one", unshare, kids)
	}
	pid := kids[0]
	ids, err := nsPids(pid, pid)
	if err != nil {
		return 0, err
	}
	if len(ids) < 2 || ids[len(ids)-1] != ownPid {
		return 0, fmt.Errorf("process %d has NSpid %v, but reported pid %d from a nested namespace", pid, ids, ownPid)
	}
	return pid, nil
}

// children lists the children of pid.
func children(pid int) ([]int, error) {
	stats, err := procmem.DefaultFS.Stats()
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, st := range stats {
		if st.PPid == pid {
			kids = append(kids, st.Pid)
		}
	}
	return kids, nil
}

// HostTID returns the id in the test's pid namespace of the target's thread
// whose id in the target's own namespace is tid (a native id from the
// report), from the NSpid lines in /proc/PID/task/*/status.
func (tg *Target) HostTID(tid int) (int, error) {
	tids, err := Tasks(tg.Pid)
	if err != nil {
		return 0, err
	}
	for _, host := range tids {
		ids, err := nsPids(tg.Pid, host)
		if err != nil {
			continue // exited
		}
		if len(ids) > 0 && ids[len(ids)-1] == tid {
			return host, nil
		}
	}
	return 0, fmt.Errorf("no thread of process %d has id %d in its namespace", tg.Pid, tid)
}

// nsPids returns the NSpid field of a thread's status: its id in each pid
// namespace, outermost first.
func nsPids(pid, tid int) ([]int, error) {
	p, err := procmem.Open(pid)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	st, err := p.ThreadStatus(tid)
	if err != nil {
		return nil, err
	}
	if st.NSpid == nil {
		return nil, fmt.Errorf("no NSpid in /proc/%d/task/%d/status", pid, tid)
	}
	return st.NSpid, nil
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

// Tasks returns the kernel thread ids of pid, sorted.
func Tasks(pid int) ([]int, error) {
	p, err := procmem.Open(pid)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Threads()
}

func describeTasks(pid int, tids []int) string {
	p, err := procmem.Open(pid)
	if err != nil {
		return err.Error()
	}
	defer p.Close()
	var parts []string
	for _, tid := range tids {
		var name string
		if st, err := p.ThreadStatus(tid); err == nil {
			name = st.Name
		}
		parts = append(parts, fmt.Sprintf("%d(%s)", tid, name))
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

// ScriptFor returns the target script that runs on py in place of path: its
// Python 2 twin ("stacks.py" → "stacks27.py") if py is a Python 2 and the
// twin exists, and path itself otherwise.
func ScriptFor(py Interpreter, path string) string {
	if py.Major != 2 || !strings.HasSuffix(path, ".py") {
		return path
	}
	twin := strings.TrimSuffix(path, ".py") + "27.py"
	if _, err := os.Stat(twin); err != nil {
		return path
	}
	return twin
}
