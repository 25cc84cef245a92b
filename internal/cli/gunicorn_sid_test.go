package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/pyprof/pyprof/internal/testenv"
	"github.com/pyprof/pyprof/internal/testpython"
)

// sidRootScript runs inside a mount namespace of its own, so that every
// mount dies with the service: it makes the root read-only, for the cache
// is shared and must stay as .ci/sid-pythons left it, mounts /proc, the
// host's /dev and a private /tmp, puts webapp.py on a tmpfs at /srv/app,
// and replaces itself with the command chrooted into the root.
// Arguments: root, webapp.py, command.
const sidRootScript = `set -e
root=$1 app=$2
shift 2
` + testpython.SidRootMounts + `mkdir "$root/srv/app"
cp "$app" "$root/srv/app/"
exec chroot "$root" "$@"
`

// needSidRoot returns the sid userland of .ci/sid-pythons, or skips the
// test without it (or without the root needed to chroot), unless the run
// requires every dependency.
func needSidRoot(t *testing.T) string {
	t.Helper()
	missing := ""
	root := testpython.SidRoot()
	switch {
	case root == "":
		missing = fmt.Sprintf("no sid root under %s (run .ci/sid-pythons)", testpython.SidCache())
	case os.Geteuid() != 0:
		missing = "chrooting into the sid root needs root"
	}
	if _, err := exec.LookPath("unshare"); missing == "" && err != nil {
		missing = "no unshare (util-linux)"
	}
	if missing == "" {
		return root
	}
	testenv.SkipOrFail(t, testenv.Pythons, "sid", "%s", missing)
	return ""
}

// startSidGunicorn runs the sid root's own gunicorn (Python 3.14 with its
// own C library, site-packages and setproctitle) on webapp.py with 3
// workers of class, serving on the host's loopback: the chroot shares the
// host's network and pid namespaces.
func startSidGunicorn(t *testing.T, root, class string) *gunicorn {
	t.Helper()
	mod, err := testpython.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	argv := []string{"--mount", "--propagation", "private", "/bin/sh", "-c", sidRootScript, "sh",
		root, filepath.Join(mod, "testdata", "targets", "webapp.py"),
		// The root's environment, not the test's; a writable home for
		// gunicorn's control socket.
		"/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1", "/usr/bin/gunicorn"}
	g := runGunicorn(t, exec.Command("unshare", append(argv, gunicornArgs(class, port, "/srv/app")...)...), port)
	checkInRoot(t, root, g)
	return g
}

// checkInRoot fails unless the master and every worker run the root's
// python3, through a root of their own: what makes pyprof read the
// service's files through /proc/PID/root.
func checkInRoot(t *testing.T, root string, g *gunicorn) {
	t.Helper()
	exe, err := filepath.EvalSymlinks(filepath.Join(root, "usr", "bin", "python3"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(g.workers(t), g.cmd.Process.Pid) {
		procRoot, err1 := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		procExe, err2 := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err1 != nil || err2 != nil || procRoot != root || procExe != exe {
			t.Fatalf("gunicorn process %d runs %s (%v) in root %s (%v), want %s in %s", pid, procExe, err2, procRoot, err1, exe, root)
		}
	}
}

// summaryProcesses matches the number of processes record's summary line
// says it sampled.
var summaryProcesses = regexp.MustCompile(`(?m)^pyprof: wrote .*?, (\d+) processes, `)

// sampledProcesses returns that number from record's stderr.
func sampledProcesses(t *testing.T, stderr string) int {
	t.Helper()
	m := summaryProcesses.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", stderr)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// sampling matches record's start line, which names the process it picked.
var sampling = regexp.MustCompile(`(?m)^pyprof: sampling process (\d+) `)

// TestGunicornSidRoot records, from the host, Debian unstable's gunicorn
// with gevent workers on Python 3.14, running in a root of its own under
// load: --pgrep must pick the master, every worker must be sampled, and
// the hot function must lead.
func TestGunicornSidRoot(t *testing.T) {
	root := needSidRoot(t)
	g := startSidGunicorn(t, root, "gevent")
	ctx, cancel := context.WithCancel(context.Background())
	wg := g.load(ctx, 6)
	defer func() { cancel(); wg.Wait() }()
	workers := g.workers(t)

	out := filepath.Join(t.TempDir(), "p.txt")
	cmd := pyprofCmd(t, "record", "--pgrep", "gunicorn", "-d", "8", "-f", "collapsed", "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("record: %v\n%s", err, stderr.String())
	}
	if m := sampling.FindStringSubmatch(stderr.String()); m == nil || m[1] != strconv.Itoa(g.cmd.Process.Pid) {
		t.Errorf("record picked %v, want the master %d:\n%s", m, g.cmd.Process.Pid, stderr.String())
	}
	stacks := collapsed(t, out)
	seen := map[int]int{}
	for s, n := range stacks {
		if m := processFrame.FindStringSubmatch(s); m != nil {
			pid, _ := strconv.Atoi(m[1])
			seen[pid] += n
		} else {
			t.Errorf("stack without a process frame: %s", s)
		}
	}
	// Every worker was sampled; one that served no request (gevent's
	// workers accept as many connections as they can) has no active
	// thread to record.
	if got, want := sampledProcesses(t, stderr.String()), len(workers)+1; got < want {
		t.Errorf("%d processes sampled, want the master and %d workers", got, want-1)
	}
	inProfile := 0
	for _, w := range workers {
		if seen[w] > 0 {
			inProfile++
		}
	}
	if inProfile == 0 {
		t.Errorf("no worker in the profile (seen %v)", seen)
	}
	got, n := share(stacks, regexp.MustCompile(`;parse_tokens \(`))
	leaves := leafShares(stacks)
	if top := topLeaf(leaves); top != "parse_tokens" || got < 0.4 {
		t.Errorf("parse_tokens in %.0f%% of %d samples and the top leaf is %s (%v); want parse_tokens to dominate", 100*got, n, top, leaves)
	}
	t.Logf("%d samples, parse_tokens %.0f%%, per process %v (master %d)\n%s", n, 100*got, seen, g.cmd.Process.Pid, stderr.String())
}
