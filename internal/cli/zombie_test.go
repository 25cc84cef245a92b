package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

// TestUnreadableTargets: every command says plainly that a zombie or a
// kernel thread has no program to read, and nothing else: no advice about
// ptrace, containers or missing pids, which would send the user the
// wrong way.
func TestUnreadableTargets(t *testing.T) {
	zombie, parent := testpython.StartUnreaped(t, "true")
	testpython.WaitZombie(t, zombie)
	for _, tc := range []struct {
		name string
		pid  func(t *testing.T) int
		want string
	}{
		{"zombie", func(*testing.T) int { return zombie },
			fmt.Sprintf("pyprof: process %d is a zombie: it has exited and its parent (pid %d: sleep) has not reaped it\n", zombie, parent)},
		{"kernel thread", func(t *testing.T) int {
			p, err := procmem.Open(2)
			if err == nil {
				defer p.Close()
				if st, err := p.Stat(); err == nil && st.KernelThread {
					return 2
				}
			}
			t.Skip("no kernel thread at pid 2 in this pid namespace (kthreadd is outside it)")
			return 0
		}, "pyprof: process 2 (kthreadd) is a kernel thread, not a Python process\n"},
	} {
		for _, cmd := range []string{"dump", "record", "top"} {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				args := []string{cmd, "-p", strconv.Itoa(tc.pid(t))}
				switch cmd {
				case "record":
					args = append(args, "-o", filepath.Join(t.TempDir(), "p.svg"))
				case "top":
					args = append(args, "--once")
				}
				_, stderr, code, _ := runWithin(t, 30*time.Second, nil, args...)
				if code != 1 || stderr != tc.want {
					t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, tc.want)
				}
			})
		}
	}
}

// TestZombieRootEnds: a root that exits while its parent does not reap it
// ends record and top as a root that is gone does, with -s too. -d 60 is
// a bound the run must end well before.
func TestZombieRootEnds(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	for _, args := range [][]string{
		{"record", "-s"},
		{"record"},
		{"top", "-s", "--delay", "0.5"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			root, _ := testpython.StartUnreaped(t, py.Path, "-c",
				"import sys, time\nopen(sys.argv[1], 'w').close()\nend = time.time() + 3\nwhile time.time() < end: pass", ready)
			waitFor(t, "the target to start", func() bool { _, err := os.Stat(ready); return err == nil })
			out := filepath.Join(t.TempDir(), "p.txt")
			if args[0] == "record" {
				args = append(args, "-f", "collapsed", "-o", out)
			}
			args = append(args, "-p", strconv.Itoa(root), "-d", "60")
			_, stderr, code, took := runWithin(t, 40*time.Second, nil, args...)
			t.Logf("ended after %.1f s of a 3 s target", took.Seconds())
			if code != 0 || !strings.Contains(stderr, "pyprof: the target exited") {
				t.Errorf("exit %d; stderr:\n%s", code, stderr)
			}
			if args[0] == "record" {
				if _, n := share(collapsed(t, out), regexp.MustCompile(`.`)); n < 50 {
					t.Errorf("%d samples written", n)
				}
			}
			testpython.WaitZombie(t, root)
		})
	}
}
