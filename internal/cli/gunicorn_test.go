package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/proctree"
	"github.com/pyprof/pyprof/internal/testenv"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/procmem"
)

const gunicornBin = "/usr/bin/gunicorn"

// needGunicorn skips without Debian's gunicorn, unless the run requires
// every dependency (CI installs it).
func needGunicorn(t *testing.T) {
	if _, err := os.Stat(gunicornBin); err != nil {
		testenv.SkipOrFail(t, testenv.Pythons, "gunicorn", "%s missing: install gunicorn python3-flask python3-gevent", gunicornBin)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type gunicorn struct {
	cmd  *exec.Cmd
	url  string
	logs bytes.Buffer
}

// startGunicorn runs testdata/targets/webapp.py under Debian's gunicorn
// with 3 workers of the given class and waits until it answers.
func startGunicorn(t *testing.T, class string) *gunicorn {
	t.Helper()
	root, err := testpython.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(gunicornBin, gunicornArgs(class, port, filepath.Join(root, "testdata", "targets"))...)
	return runGunicorn(t, cmd, port)
}

// gunicornArgs serve webapp:app from dir on loopback with 3 workers.
func gunicornArgs(class string, port int, dir string) []string {
	// A long worker timeout: a worker paused for sampling must not be
	// taken for a hung one.
	return []string{"-w", "3", "-k", class, "-b", "127.0.0.1:" + strconv.Itoa(port),
		"--timeout", "120", "--chdir", dir, "webapp:app"}
}

// runGunicorn starts cmd, which must become the gunicorn master itself
// (exec, no fork), and waits until it answers on port with 3 workers. The
// master and every worker are gone when the test ends.
func runGunicorn(t *testing.T, cmd *exec.Cmd, port int) *gunicorn {
	t.Helper()
	g := &gunicorn{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port)}
	g.cmd.Stdout, g.cmd.Stderr = &g.logs, &g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(g.url + "/")
		if err == nil {
			resp.Body.Close()
			if len(g.workers(t)) == 3 {
				g.checkWork(t)
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn did not come up: %v\n%s", err, g.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkWork fails unless /work answers: the load generator ignores
// errors, and a profile of failing requests would lack the hot function.
func (g *gunicorn) checkWork(t *testing.T) {
	t.Helper()
	resp, err := http.Get(g.url + "/work")
	if err != nil {
		t.Fatalf("GET /work: %v\n%s", err, g.logs.String())
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, perr := strconv.Atoi(string(body)); err != nil || resp.StatusCode != http.StatusOK || perr != nil {
		t.Fatalf("GET /work: %s %q (%v), want 200 and a number\n%s", resp.Status, body, err, g.logs.String())
	}
}

// stop asks the master to shut down, then kills it and whatever workers
// outlive it: a worker orphaned by a killed master would otherwise serve
// on until it noticed.
func (g *gunicorn) stop(t *testing.T) {
	kids, _ := proctree.Descendants(procmem.DefaultFS, g.cmd.Process.Pid)
	testenv.Stop(g.cmd, 5*time.Second)
	for _, k := range kids {
		if running(k) {
			syscall.Kill(k.Pid, syscall.SIGKILL)
		}
	}
	for _, k := range kids {
		for deadline := time.Now().Add(10 * time.Second); running(k); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("gunicorn worker %d still runs after SIGKILL", k.Pid)
				break
			}
		}
	}
	if t.Failed() {
		t.Logf("gunicorn log:\n%s", g.logs.String())
	}
}

// running reports whether p still runs: its pid has not exited, nor been
// reused by another process since.
func running(p proctree.Proc) bool {
	now, err := proctree.Get(procmem.DefaultFS, p.Pid)
	return err == nil && now.StartTime == p.StartTime && now.State != 'Z'
}

func (g *gunicorn) workers(t *testing.T) []int {
	kids, err := proctree.Descendants(procmem.DefaultFS, g.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, k := range kids {
		if k.PPid == g.cmd.Process.Pid {
			pids = append(pids, k.Pid)
		}
	}
	return pids
}

// load keeps n clients requesting /work until ctx ends.
func (g *gunicorn) load(ctx context.Context, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := client.Get(g.url + "/work")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	return &wg
}

// topProcRow matches a process line of top's header: PID CPU% RSS Samples Command.
var topProcRow = regexp.MustCompile(`^\s*(\d+) +([\d.]+) +[\d.]+[KMG] +\d+  \S`)

var processFrame = regexp.MustCompile(`^process (\d+): `)

// TestGunicorn records a gunicorn master found by name, with sync and then
// gevent workers under load, while one worker is killed and replaced:
// every worker, the replacement included, must appear, and the hot
// function must dominate.
func TestGunicorn(t *testing.T) {
	needGunicorn(t)
	for _, class := range []string{"sync", "gevent"} {
		t.Run(class, func(t *testing.T) {
			g := startGunicorn(t, class)
			ctx, cancel := context.WithCancel(context.Background())
			wg := g.load(ctx, 6)
			defer func() { cancel(); wg.Wait() }()
			original := g.workers(t)

			out := filepath.Join(t.TempDir(), "p.txt")
			cmd := pyprofCmd(t, "record", "--pgrep", "gunicorn", "-d", "8", "-f", "collapsed", "-o", out)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2500 * time.Millisecond)
			victim := original[0]
			syscall.Kill(victim, syscall.SIGKILL)
			// gunicorn notices and forks a replacement.
			var replacement int
			for deadline := time.Now().Add(4 * time.Second); replacement == 0 && time.Now().Before(deadline); {
				for _, w := range g.workers(t) {
					if w != original[0] && w != original[1] && w != original[2] {
						replacement = w
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("record: %v\n%s", err, stderr.String())
			}
			if replacement == 0 {
				t.Fatal("gunicorn did not replace the killed worker")
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
			// Every worker was sampled; one that served no request
			// (the kernel hands connections to whichever accepts
			// first) has no active thread to record.
			if got, want := sampledProcesses(t, stderr.String()), len(original)+2; got < want {
				t.Errorf("%d processes sampled, want the master and %d workers", got, want-1)
			}
			inProfile := 0
			for _, w := range append(original, replacement) {
				if seen[w] > 0 {
					inProfile++
				}
			}
			if inProfile < 2 {
				t.Errorf("%d workers in the profile (seen %v)", inProfile, seen)
			}
			got, n := share(stacks, regexp.MustCompile(`;parse_tokens \(`))
			leaves := leafShares(stacks)
			if top := topLeaf(leaves); top != "parse_tokens" || got < 0.4 {
				t.Errorf("parse_tokens in %.0f%% of %d samples and the top leaf is %s (%v); want parse_tokens to dominate", 100*got, n, top, leaves)
			}
			t.Logf("%s: %d samples, parse_tokens %.0f%%, per process %v (killed %d, replacement %d)\n%s",
				class, n, 100*got, seen, victim, replacement, stderr.String())

			// dump takes the same target options: the master and
			// every worker, one JSON object each.
			js, errOut, code := runPyprof(t, "dump", "--pgrep", "gunicorn", "--json")
			var ds []dumpJSON
			if code != 0 || json.Unmarshal([]byte(js), &ds) != nil {
				t.Fatalf("dump --pgrep: exit %d: %s", code, errOut)
			}
			dumped := map[int]bool{}
			for _, d := range ds {
				dumped[d.Pid] = true
			}
			for _, p := range append(g.workers(t), g.cmd.Process.Pid) {
				if !dumped[p] {
					t.Errorf("dump --pgrep gunicorn lacks pid %d (has %v)", p, dumped)
				}
			}

			// top -s lists the master and every worker in its header,
			// each with its CPU, memory and samples, and the hot
			// function leads the table.
			table, errOut, code := runPyprof(t, "top", "-p", itoa(g.cmd.Process.Pid), "-s", "--once", "--delay", "2")
			if code != 0 {
				t.Fatalf("top -s: exit %d: %s", code, errOut)
			}
			listed := map[int]bool{}
			busy := 0.0
			for _, l := range strings.Split(table, "\n") {
				if m := topProcRow.FindStringSubmatch(l); m != nil {
					pid, _ := strconv.Atoi(m[1])
					cpu, _ := strconv.ParseFloat(m[2], 64)
					listed[pid] = true
					busy += cpu
				}
			}
			// The workers serve the load: their CPU shows in the
			// first table already.
			if busy < 10 {
				t.Errorf("top -s: processes use %.1f%% CPU in all under load:\n%s", busy, table)
			}
			for _, p := range append(g.workers(t), g.cmd.Process.Pid) {
				if !listed[p] {
					t.Errorf("top -s header lacks pid %d:\n%s", p, table)
				}
			}
			if ts := tables(table); len(ts) != 1 || len(ts[0]) == 0 || ts[0][0].fn != "parse_tokens" {
				t.Errorf("top -s: parse_tokens does not lead the table:\n%s", table)
			}
		})
	}
}

// leafShares counts samples by innermost function name.
func leafShares(stacks map[string]int) map[string]int {
	out := map[string]int{}
	for s, n := range stacks {
		leaf := s[strings.LastIndexByte(s, ';')+1:]
		if i := strings.Index(leaf, " ("); i >= 0 {
			leaf = leaf[:i]
		}
		out[leaf] += n
	}
	return out
}

func topLeaf(m map[string]int) string {
	best, n := "", -1
	for k, v := range m {
		if v > n {
			best, n = k, v
		}
	}
	return best
}
