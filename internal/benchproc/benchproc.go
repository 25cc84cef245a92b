// Package benchproc runs the child processes of the benchmark commands
// (leakbench, recordbench) so that none outlives them: targets, gunicorn
// and its workers, profilers and wrk each run in a process group of their
// own, and every group still registered gets SIGKILL when the command
// ends, fails or is interrupted; Pdeathsig kills the children if the
// command itself dies.
//
// A group is unregistered before its leader is reaped, so a group id that
// is killed can never be a reused one.
package benchproc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Group is the children of one benchmark command. Its methods that end the
// run (Exit, Fatalf) name the command by the prog given to New.
type Group struct {
	prog    string
	mu      sync.Mutex
	pgids   map[int]*Child
	cleanup []func()
}

// New returns the group of the command named prog.
func New(prog string) *Group {
	return &Group{prog: prog, pgids: map[int]*Child{}}
}

// Child is a started process whose exit is awaited in the background.
type Child struct {
	g    *Group
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
	err  error         // from Wait
}

// Spawn starts cmd in a new process group.
func (g *Group) Spawn(cmd *exec.Cmd) (*Child, error) {
	return g.SpawnThen(cmd, nil)
}

// SpawnThen starts cmd in a new process group; zombie, if not nil, runs
// once the child has exited and before it is reaped, while its
// /proc/PID/stat still has its CPU times. It has run by the time Done is
// closed.
func (g *Group) SpawnThen(cmd *exec.Cmd, zombie func(pid int)) (*Child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	g.mu.Lock()
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		return nil, err
	}
	pid := cmd.Process.Pid
	c := &Child{g: g, cmd: cmd, done: make(chan struct{})}
	g.pgids[pid] = c
	g.mu.Unlock()
	go func() {
		// Wait for the exit without reaping, so that the pid (and the
		// group id) stays taken while the group is unregistered, and
		// the zombie's stat still has its CPU times.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if zombie != nil {
			zombie(pid)
		}
		g.mu.Lock()
		delete(g.pgids, pid)
		g.mu.Unlock()
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Pid is the child's pid, also the id of its process group.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Done is closed once the child has been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is what Wait returned; it is set once Done is closed.
func (c *Child) Err() error { return c.err }

// ProcessState is the child's exit state; it is set once Done is closed.
func (c *Child) ProcessState() *os.ProcessState { return c.cmd.ProcessState }

// Exited waits up to d for the child to exit by itself.
func (c *Child) Exited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Kill kills the child's whole process group (gunicorn's workers too) and
// waits until the child is reaped.
func (c *Child) Kill() {
	c.g.mu.Lock()
	if c.g.pgids[c.Pid()] != nil {
		syscall.Kill(-c.Pid(), syscall.SIGKILL)
	}
	c.g.mu.Unlock()
	<-c.done
}

// AtExit registers f (removing a temporary directory, say) to run after
// the children are killed.
func (g *Group) AtExit(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cleanup = append(g.cleanup, f)
}

// Exit kills every registered process group, reaps the children, runs the
// cleanups and exits.
func (g *Group) Exit(code int) {
	g.mu.Lock()
	var left []*Child
	for _, c := range g.pgids {
		syscall.Kill(-c.Pid(), syscall.SIGKILL)
		left = append(left, c)
	}
	g.mu.Unlock()
	deadline := time.After(2 * time.Second)
	for _, c := range left {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
	// Held to the end: a cleanup runs once, even if a signal asks for a
	// second Exit meanwhile.
	g.mu.Lock()
	for i := len(g.cleanup) - 1; i >= 0; i-- {
		g.cleanup[i]()
	}
	os.Exit(code)
}

// Fatalf reports an error that ends the whole run.
func (g *Group) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, g.prog+": "+format+"\n", args...)
	g.Exit(1)
}

// HandleSignals kills the children on Ctrl-C, SIGTERM or SIGHUP. They run
// in groups of their own, so a terminal's Ctrl-C reaches the command only.
func (g *Group) HandleSignals() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\n%s: %v: killing every child\n", g.prog, sig)
		g.Exit(130)
	}()
}

// WaitUp waits up to 30 seconds for url to answer 200 OK, giving up early
// if c, the server, exits.
func WaitUp(url string, c *Child) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			return nil
		}
		if time.Now().After(deadline) || c.Exited(100*time.Millisecond) {
			return err
		}
	}
}

// FreePort returns a TCP port on loopback that was free a moment ago.
func (g *Group) FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
