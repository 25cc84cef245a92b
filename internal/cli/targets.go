package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/pyprof/pyprof/internal/proctree"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/procmem"
	"github.com/pyprof/pyprof/pyversions"
)

// targetOptions are the ways record, top and dump name their target.
type targetOptions struct {
	pid            int
	pgrep          string
	subprocesses   bool
	noSubprocesses bool
	command        []string
}

func (o *targetOptions) register(fs *pflag.FlagSet, follow bool) {
	fs.VarP(&pidFlag{&o.pid}, "pid", "p", "process id to profile, in decimal or hex (0x...)")
	fs.StringVar(&o.pgrep, "pgrep", "", "profile the process whose name (or else command line) matches this regular expression, and its subprocesses")
	if follow {
		fs.BoolVarP(&o.subprocesses, "subprocesses", "s", false, "include every descendant that is a Python process")
		fs.BoolVar(&o.noSubprocesses, "no-subprocesses", false, "with --pgrep, profile only the matched process")
	}
}

// resolved is a chosen target.
type resolved struct {
	root   int
	follow bool
	// launched is set when pyprof started the target itself.
	launched *launched
	// describe is how the start line names the target.
	describe string
}

// resolve picks the target from the flags and the arguments after "--".
func (o *targetOptions) resolve(fs *pflag.FlagSet) (*resolved, error) {
	n := 0
	if o.pid != 0 {
		n++
	}
	if o.pgrep != "" {
		n++
	}
	dash := fs.ArgsLenAtDash()
	if dash >= 0 {
		o.command = fs.Args()[dash:]
		if dash > 0 {
			return nil, usagef("unexpected arguments before --: %q", fs.Args()[:dash])
		}
		if len(o.command) == 0 {
			return nil, usagef("-- must be followed by a command")
		}
		n++
	} else if fs.NArg() > 0 {
		return nil, usagef("unexpected arguments %q (put a command to launch after --)", fs.Args())
	}
	if n != 1 {
		return nil, usagef("name one target: -p PID, --pgrep PATTERN, or -- COMMAND")
	}
	if o.pid < 0 {
		return nil, usagef("bad pid %d", o.pid)
	}
	switch {
	case o.pid != 0:
		return &resolved{root: o.pid, follow: o.subprocesses, describe: fmt.Sprintf("process %d", o.pid)}, nil
	case o.pgrep != "":
		m, err := proctree.Pgrep(procmem.DefaultFS, o.pgrep, os.Getpid())
		var pe *proctree.PatternError
		if errors.As(err, &pe) {
			return nil, usagef("--pgrep: %v", err)
		}
		if err != nil {
			return nil, err
		}
		return &resolved{root: m.Root.Pid, follow: !o.noSubprocesses, describe: fmt.Sprintf("process %d (%s)", m.Root.Pid, m.Root.CommandLine())}, nil
	default:
		l, err := launch(o.command)
		if err != nil {
			return nil, err
		}
		return &resolved{root: l.cmd.Process.Pid, follow: o.subprocesses, launched: l, describe: fmt.Sprintf("%q (pid %d)", o.command, l.cmd.Process.Pid)}, nil
	}
}

// launchError is a failure to start the program to profile. It is shown as
// it is: a permission error here is about the program, not about ptrace.
type launchError struct {
	name string
	err  error
}

func (e *launchError) Error() string { return fmt.Sprintf("cannot start %s: %v", e.name, e.err) }
func (e *launchError) Unwrap() error { return e.err }

// launched is a program pyprof started and profiles. A goroutine reaps it
// as soon as it exits: done is closed then, and err is its wait's result.
type launched struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// launch starts a command that keeps pyprof's stdin, stdout and stderr.
// Under sudo it runs as the invoking user, not as root.
func launch(argv []string) (*launched, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Should pyprof itself be killed, its program is not left behind.
	// (The signal comes when the thread that forked ends, and pyprof's
	// threads end only with it.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if cred, env, ok := sudoUser(); ok {
		cmd.SysProcAttr.Credential = cred
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, &launchError{argv[0], err}
	}
	l := &launched{cmd: cmd, done: make(chan struct{})}
	go func() {
		awaitExit(cmd.Process.Pid)
		l.err = cmd.Wait()
		close(l.done)
	}()
	return l, nil
}

// awaitExit returns once pid, a child of ours, has exited, without
// collecting its exit status. A wait call made earlier could collect the
// ptrace stops of the child while it is paused for a sample instead; the
// sampler's own waits leave its exit alone (see procmem), so that cmd.Wait
// gets it.
func awaitExit(pid int) {
	if pidfd, err := unix.PidfdOpen(pid, 0); err == nil {
		defer unix.Close(pidfd)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}
	// Before Linux 5.3, no pidfd: peek at its reports, which leaves
	// them in place, until one is an exit.
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		const cldExited, cldDumped = 1, 3
		switch {
		case err == unix.EINTR:
			continue
		case err != nil, info.Signo == int32(unix.SIGCHLD) && info.Code >= cldExited && info.Code <= cldDumped:
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *launched) pid() int { return l.cmd.Process.Pid }

// title is the command line, as messages quote it.
func (l *launched) title() string { return strings.Join(l.cmd.Args, " ") }

// exitCode is the launched program's exit status, as a shell reports it:
// 128+N when signal N killed it.
func (l *launched) exitCode() int {
	<-l.done
	if l.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(l.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

// howEnded says how the program ended: "exited with status 143 (killed
// by SIGTERM)".
func (l *launched) howEnded() string {
	code := l.exitCode()
	var ee *exec.ExitError
	if errors.As(l.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("exited with status %d (killed by %s)", code, unix.SignalName(ws.Signal()))
		}
	} else if l.err != nil {
		return fmt.Sprintf("exited, but its status is unknown (%v)", l.err)
	}
	return fmt.Sprintf("exited with status %d", code)
}

// exited reports whether the launched program has ended.
func (l *launched) exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the program to end.
func (l *launched) waitExit(d time.Duration) bool {
	select {
	case <-l.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stopGrace is how long a program has to exit after SIGTERM before it
// gets SIGKILL.
const stopGrace = 2 * time.Second

// stop ends the program if it still runs, with SIGTERM and, after
// stopGrace, SIGKILL, and then ends the same way the subprocesses it
// leaves running: a launcher that ignores SIGTERM (unshare --fork) would
// otherwise orphan them. It returns the signals it sent the program, ""
// if it had exited.
func (l *launched) stop() string {
	if l.exited() {
		return ""
	}
	kids := openProcs(l.pid())
	defer closeProcs(kids)
	l.cmd.Process.Signal(syscall.SIGTERM)
	sent := "SIGTERM"
	if !l.waitExit(stopGrace) {
		l.cmd.Process.Kill()
		sent = fmt.Sprintf("SIGTERM and, %v later, SIGKILL", stopGrace)
		// Only a process stuck in the kernel outlives SIGKILL.
		l.waitExit(stopGrace)
	}
	endProcs(kids)
	return sent
}

// end stops the program if it still runs, saying why and how it ended.
func (l *launched) end(stderr io.Writer, why string) {
	if sent := l.stop(); sent != "" {
		fmt.Fprintf(stderr, "pyprof: %s: sent %s to %q (pid %d); it %s\n", why, sent, l.title(), l.pid(), l.howEnded())
	}
}

// finish ends a run of the launched program and returns its status, which
// pyprof exits with. why says what ended the run; sig is the signal that
// stopped pyprof, if one did. A SIGINT is most often Ctrl-C, which the
// terminal sent the program as well, so it is given the time to exit on
// its own first.
func (l *launched) finish(stderr io.Writer, why string, sig os.Signal) int {
	if sig == syscall.SIGINT {
		l.waitExit(stopGrace)
	}
	l.end(stderr, why)
	return l.exitCode()
}

// notPythonGrace is how long a program that neither is Python nor runs
// another program is watched after its last exec before it is said not to
// be Python. Its executable is known then, and the interpreter, if it is
// one, is in it or in a libpython it needs (target.LinksLibpython), which
// its loader maps first; so this only covers programs that exec the
// interpreter without being known wrappers, which do so within
// milliseconds. py-spy gives a program 0.4 s.
const notPythonGrace = 500 * time.Millisecond

// wrapperExe matches the executables of programs that run another after a
// while: shells, whose scripts may compute for seconds before they exec
// (pyenv's shims take more than a second on a loaded machine), and tools
// that set something up and then exec or fork the program. Such a program
// is waited for until attachTimeout after its last exec, or until one of
// its subprocesses is Python.
var wrapperExe = regexp.MustCompile(`^(sh|bash|dash|ash|zsh|ksh|mksh|busybox|env|nice|nohup|ionice|chrt|taskset|setpriv|setsid|stdbuf|numactl|sudo|su|runuser|doas|timeout|time)$`)

// subprocessCheckEvery spaces the searches for a Python subprocess of a
// wrapper.
const subprocessCheckEvery = 250 * time.Millisecond

// execState is what is known of the program's current executable.
type execState struct {
	id      string // executable and argv: a new exec changes it
	proc    proctree.Proc
	since   time.Time
	wrapper bool // runs another program (wrapperExe)
	linked  bool // needs a libpython
	checked time.Time
}

// attach attaches a sampler to the launched program as soon as its
// interpreter can be read. Until then the program is watched: each exec
// starts the wait again, and a program that is not Python is said to be
// so once it cannot become Python any more (see notPythonGrace and
// wrapperExe). A program that exits first is said to have done so.
func (l *launched) attach(opts sampler.Options, sigs <-chan os.Signal) (*sampler.Sampler, error) {
	pid := l.pid()
	cur := execState{since: time.Now()}
	for {
		s, err := sampler.New(pid, opts)
		if err == nil || isPermanent(err) {
			return s, err
		}
		if errors.Is(err, syscall.ESRCH) {
			// Exited, and being reaped: say how it ended.
			l.waitExit(stopGrace)
		}
		if l.exited() {
			return nil, &exitedEarlyError{l}
		}
		now := time.Now()
		if p, err := proctree.Get(procmem.DefaultFS, pid); err == nil {
			id := p.Exe + "\x00" + strings.Join(p.Cmdline, "\x00")
			if id != cur.id {
				cur = execState{
					id: id, proc: p, since: now,
					wrapper: wrapperExe.MatchString(filepath.Base(p.Exe)),
					linked:  target.LinksLibpython(fmt.Sprintf("/proc/%d/exe", pid)),
				}
			}
		}
		waited := now.Sub(cur.since)
		if errors.Is(err, target.ErrNotPython) && !cur.linked && cur.id != "" {
			switch {
			case !cur.wrapper && waited >= notPythonGrace:
				return nil, notPython(pid, cur.proc)
			case cur.wrapper && now.Sub(cur.checked) >= subprocessCheckEvery:
				cur.checked = now
				if sub, ok := pythonSubprocess(pid); ok {
					return nil, &notPythonError{pid: pid, proc: cur.proc, sub: &sub}
				}
			}
		}
		if waited >= attachTimeout {
			if errors.Is(err, target.ErrNotPython) {
				return nil, notPython(pid, cur.proc)
			}
			return nil, err
		}
		select {
		case sig := <-sigs:
			if sig != syscall.SIGWINCH {
				return nil, fmt.Errorf("interrupted by %v", sig)
			}
		case <-l.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isPermanent reports whether an attach error is about the interpreter's
// build, which waiting does not change: its version, read from the binary.
func isPermanent(err error) bool {
	var ue *pyversions.UnsupportedError
	var de *pyversions.DebugOffsetsError
	return errors.As(err, &ue) || errors.As(err, &de) || errors.Is(err, pyversions.ErrFreeThreaded)
}

// notPython is the error for a launched program that is not Python,
// naming a Python subprocess if it has one.
func notPython(pid int, p proctree.Proc) error {
	e := &notPythonError{pid: pid, proc: p}
	if sub, ok := pythonSubprocess(pid); ok {
		e.sub = &sub
	}
	return e
}

// pythonSubprocess returns a descendant of pid that is Python.
func pythonSubprocess(pid int) (proctree.Proc, bool) {
	kids, err := proctree.Descendants(procmem.DefaultFS, pid)
	if err != nil {
		return proctree.Proc{}, false
	}
	for _, k := range kids {
		if _, err := target.Interpreter(k.Pid); err == nil {
			return k, true
		}
	}
	return proctree.Proc{}, false
}

// notPythonError is a launched program that is not Python, and that has
// had the time to become it.
type notPythonError struct {
	pid  int
	proc proctree.Proc
	sub  *proctree.Proc // a Python subprocess, if one was seen
}

func (e *notPythonError) Error() string {
	name, exe := e.proc.Comm, e.proc.Exe
	if name == "" {
		name = "the program"
	}
	msg := fmt.Sprintf("%s (pid %d) is not a Python program: no python interpreter in %s", name, e.pid, exe)
	if e.sub != nil {
		return msg + fmt.Sprintf("; its subprocess %s (pid %d) is: add -s to profile it", e.sub.Comm, e.sub.Pid)
	}
	return msg + " (with -s, pyprof follows Python subprocesses it starts)"
}

func (e *notPythonError) Is(t error) bool { return t == target.ErrNotPython }

// exitedEarlyError is a launched program that exited before its
// interpreter could be read. pyprof then exits with the program's status.
type exitedEarlyError struct{ l *launched }

func (e *exitedEarlyError) Error() string {
	return fmt.Sprintf("%q (pid %d) %s before a Python interpreter was found in it", e.l.title(), e.l.pid(), e.l.howEnded())
}

// signalName names a signal as kill -l does: "SIGTERM".
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}

// procHandle is a process held by a pidfd, so that a signal cannot reach
// another process that reused its pid.
type procHandle struct {
	pid, fd int
}

// openProcs holds the descendants of pid, as they are now.
func openProcs(pid int) []procHandle {
	kids, err := proctree.Descendants(procmem.DefaultFS, pid)
	if err != nil {
		return nil
	}
	var hs []procHandle
	for _, k := range kids {
		fd, err := unix.PidfdOpen(k.Pid, 0)
		if err != nil {
			continue
		}
		// The pidfd names the process that has the pid now: it is
		// the descendant if it started when the descendant did.
		if p, err := proctree.Get(procmem.DefaultFS, k.Pid); err != nil || p.StartTime != k.StartTime {
			unix.Close(fd)
			continue
		}
		hs = append(hs, procHandle{k.Pid, fd})
	}
	return hs
}

func closeProcs(hs []procHandle) {
	for _, h := range hs {
		unix.Close(h.fd)
	}
}

// running reports whether a held process has not exited.
func (h procHandle) running() bool {
	fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 0
}

// endProcs sends SIGTERM to the held processes still running, and SIGKILL
// to those still running stopGrace later.
func endProcs(hs []procHandle) {
	var left []procHandle
	for _, h := range hs {
		if h.running() && unix.PidfdSendSignal(h.fd, unix.SIGTERM, nil, 0) == nil {
			left = append(left, h)
		}
	}
	for deadline := time.Now().Add(stopGrace); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		left = slices.DeleteFunc(left, func(h procHandle) bool { return !h.running() })
	}
	for _, h := range left {
		unix.PidfdSendSignal(h.fd, unix.SIGKILL, nil, 0)
	}
}

// sudoUser returns the credentials of the user who ran sudo, when pyprof
// runs as root under sudo.
func sudoUser() (*syscall.Credential, []string, bool) {
	if os.Geteuid() != 0 {
		return nil, nil, false
	}
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid == 0 {
		return nil, nil, false
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	var env []string
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		env = append(env, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
		if gids, err := u.GroupIds(); err == nil {
			for _, g := range gids {
				if n, err := strconv.Atoi(g); err == nil {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	return cred, env, true
}

// sudoOwner returns who should own files pyprof writes under sudo.
func sudoOwner() (uid, gid int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	u, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	g, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return u, g, true
}
