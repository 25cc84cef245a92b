package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/pyprof/pyprof/internal/proctree"
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
		m, err := proctree.Default.Pgrep(o.pgrep, os.Getpid())
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

// launched is a program pyprof started and profiles.
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
	if cred, env, ok := sudoUser(); ok {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Start(); err != nil {
		return nil, &launchError{argv[0], err}
	}
	l := &launched{cmd: cmd, done: make(chan struct{})}
	// Wait for the exit through a pidfd and reap only then: any wait
	// call of this process could consume the ptrace stops of the child
	// while it is paused for a sample.
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		go func() { l.err = cmd.Wait(); close(l.done) }()
		return l, nil
	}
	go func() {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		unix.Close(pidfd)
		l.err = cmd.Wait()
		close(l.done)
	}()
	return l, nil
}

// exitCode is the launched program's exit status, as a shell reports it.
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
