package proctree

import (
	"github.com/pyprof/pyprof/procmem"

	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// start runs cmd in its own process group and kills the whole group when
// the test ends, so no sleep outlives a failed test.
func start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// nonce is a name no other process on the machine has, so that live
// pattern matches are not disturbed by whatever else runs.
func nonce() string {
	return fmt.Sprintf("proctree%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
}

func TestLiveTree(t *testing.T) {
	sh := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	start(t, sh)
	var kids []Proc
	waitFor(t, "two sleeps under sh", func() bool {
		var err error
		kids, err = Descendants(procmem.DefaultFS, sh.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		// Comm changes early in execve, the command line only once the
		// new image's stack is set up.
		sleeping := func(p Proc) bool { return slices.Equal(p.Cmdline, []string{"sleep", "30"}) }
		return len(kids) == 2 && sleeping(kids[0]) && sleeping(kids[1])
	})
	root, err := Get(procmem.DefaultFS, sh.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(root.Cmdline, sh.Args) {
		t.Errorf("sh cmdline = %q, want %q", root.Cmdline, sh.Args)
	}
	for _, k := range kids {
		if k.PPid != root.Pid || !slices.Equal(k.Cmdline, []string{"sleep", "30"}) || k.StartTime < root.StartTime {
			t.Errorf("child %+v of %+v", k, root)
		}
		if !slices.Contains(k.Names(), "sleep") {
			t.Errorf("child names %q", k.Names())
		}
	}

	chain, err := Ancestors(procmem.DefaultFS, kids[0].Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) < 4 || chain[0] != root.Pid || chain[1] != os.Getpid() || chain[2] != os.Getppid() || chain[len(chain)-1] != 1 {
		t.Errorf("Ancestors(%d) = %v, want [%d %d %d ... 1]", kids[0].Pid, chain, root.Pid, os.Getpid(), os.Getppid())
	}
}

func TestLiveSelf(t *testing.T) {
	self, err := Get(procmem.DefaultFS, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if self.Exe != exe || self.Comm != strings.TrimSuffix(string(comm), "\n") || self.PPid != os.Getppid() ||
		!slices.Equal(self.Cmdline, os.Args) {
		t.Errorf("Get(self) = %+v; want exe %q, comm %q, ppid %d, argv %q", self, exe, comm, os.Getppid(), os.Args)
	}
	procs, err := List(procmem.DefaultFS)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(procs, func(p Proc) bool { return p.Pid == os.Getpid() && p.StartTime == self.StartTime }) {
		t.Errorf("List() lacks the test process")
	}
	for _, p := range procs {
		if p.kernelThread() || p.State == 'Z' {
			t.Errorf("List() has %+v", p)
		}
	}
}

// TestLiveExecA finds a process by a renamed argv[0], the name shown by ps.
func TestLiveExecA(t *testing.T) {
	name := nonce()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sleep, "30")
	cmd.Args[0] = name
	start(t, cmd)
	m, err := Pgrep(procmem.DefaultFS, "^"+name+"$", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.Root.Pid != cmd.Process.Pid || !m.ByName || len(m.Matched) != 1 {
		t.Errorf("Pgrep = root %d, byName %v, matched %v; want %d by name", m.Root.Pid, m.ByName, pids(m.Matched), cmd.Process.Pid)
	}
}

// helperResult is what TestHelperProcess reports to its parent.
type helperResult struct {
	Self, Wrapper, Target int
	Root                  int // Pgrep with self excluded
	ByName                bool
	Matched               []int
	Err                   string
	RootNoSelf            int // Pgrep with self = 0
	ErrNoSelf             string
}

// TestLiveExcludesOwnAncestors runs the test binary under a shell whose
// command line, like the binary's own, contains the pattern: as with
// `sudo pyprof record --pgrep NAME`, neither may be chosen, and the
// binary's child with the pattern in its command line must be.
func TestLiveExcludesOwnAncestors(t *testing.T) {
	marker := nonce()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := exec.Command("sh", "-c", `"$0" -test.run='^TestHelperProcess$' -- "$1"; :`, exe, marker)
	wrapper.Env = append(os.Environ(), "PROCTREE_HELPER="+marker)
	var out strings.Builder
	wrapper.Stdout = &out
	wrapper.Stderr = &out
	start(t, wrapper)
	if err := wrapper.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	var r helperResult
	line := out.String()
	if i := strings.Index(line, "{"); i >= 0 {
		line = line[i:]
	}
	if err := json.NewDecoder(strings.NewReader(line)).Decode(&r); err != nil {
		t.Fatalf("helper output %q: %v", out.String(), err)
	}
	t.Logf("%+v", r)
	if r.Wrapper != wrapper.Process.Pid {
		t.Errorf("helper's parent is %d, want the wrapper %d", r.Wrapper, wrapper.Process.Pid)
	}
	if r.Err != "" || r.Root != r.Target || r.ByName || !slices.Equal(r.Matched, []int{r.Target}) {
		t.Errorf("Pgrep excluding self = root %d, byName %v, matched %v, err %q; want only the target %d, by command line",
			r.Root, r.ByName, r.Matched, r.Err, r.Target)
	}
	// Without self, the wrapper tops every match: the exclusion, not
	// some accident of the tree, is what picked the target.
	if r.ErrNoSelf != "" || r.RootNoSelf != r.Wrapper {
		t.Errorf("Pgrep without self = root %d, err %q; want the wrapper %d", r.RootNoSelf, r.ErrNoSelf, r.Wrapper)
	}
}

// TestHelperProcess is the child of TestLiveExcludesOwnAncestors; it does
// nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	marker := os.Getenv("PROCTREE_HELPER")
	if marker == "" {
		return
	}
	r := helperResult{Self: os.Getpid(), Wrapper: os.Getppid()}
	target := exec.Command("sh", "-c", "sleep 30; : "+marker)
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	r.Target = target.Process.Pid
	// Until the shell's child has exec'd sleep, it is a copy of the
	// shell, command line and all, and would match too.
	waitFor(t, "the target's sleep", func() bool {
		kids, err := Descendants(procmem.DefaultFS, target.Process.Pid)
		return err == nil && len(kids) == 1 && slices.Equal(kids[0].Cmdline, []string{"sleep", "30"})
	})
	pattern := regexp.QuoteMeta(marker)
	if m, err := Pgrep(procmem.DefaultFS, pattern, os.Getpid()); err != nil {
		r.Err = err.Error()
	} else {
		r.Root, r.ByName, r.Matched = m.Root.Pid, m.ByName, pids(m.Matched)
	}
	if m, err := Pgrep(procmem.DefaultFS, pattern, 0); err != nil {
		r.ErrNoSelf = err.Error()
	} else {
		r.RootNoSelf = m.Root.Pid
	}
	target.Process.Kill()
	target.Wait()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s\n", b)
	os.Exit(0)
}

// TestLivePython is the gunicorn shape with a real interpreter: a script
// that starts two copies of itself. All three match by script name, and
// the parent is chosen.
func TestLivePython(t *testing.T) {
	// Any interpreter will do; the system one saves probing them all.
	py := testpython.SystemPython
	if _, err := os.Stat(py); err != nil {
		py = testpython.For(t)[0].Path
	}
	name := nonce()
	script := filepath.Join(t.TempDir(), name+".py")
	src := `import subprocess, sys, time
if sys.argv[1:] == ["child"]:
    time.sleep(60)
    sys.exit()
kids = [subprocess.Popen([sys.executable, "-u", __file__, "child"]) for _ in range(2)]
print(" ".join(str(k.pid) for k in kids))
sys.stdout.flush()
time.sleep(60)
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-B", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, cmd)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v\n%s", py, err, stderr.String())
	}
	var kids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad output %q", line)
		}
		kids = append(kids, pid)
	}
	parent := cmd.Process.Pid

	m, err := Pgrep(procmem.DefaultFS, regexp.QuoteMeta(name+".py"), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want := append([]int{parent}, kids...)
	slices.Sort(want)
	if m.Root.Pid != parent || !m.ByName || !slices.Equal(pids(m.Matched), want) {
		t.Errorf("Pgrep = root %d, byName %v, matched %v; want %d by name, matched %v", m.Root.Pid, m.ByName, pids(m.Matched), parent, want)
	}
	if names := m.Root.Names(); !slices.Contains(names, name+".py") {
		t.Errorf("Names() = %q, want the script name", names)
	}
	desc, err := Descendants(procmem.DefaultFS, parent)
	if err != nil {
		t.Fatal(err)
	}
	got := pids(desc)
	slices.Sort(got)
	if !slices.Equal(got, kids) {
		t.Errorf("Descendants(%d) = %v, want %v", parent, got, kids)
	}
}

// BenchmarkList measures the scan a recording repeats every second to
// find new children, on however many processes this machine runs. CPU time
// is reported besides wall time because the scan competes with sampling
// for the CPU, and because wall time on a loaded machine says little.
func BenchmarkList(b *testing.B) {
	var n int
	cpu0 := cpuTime(b)
	for b.Loop() {
		procs, err := List(procmem.DefaultFS)
		if err != nil {
			b.Fatal(err)
		}
		n = len(procs)
	}
	b.ReportMetric(float64(n), "procs")
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkDescendants is the same scan for a recording that follows
// subprocesses: it reads every stat but the rest only under the root.
func BenchmarkDescendants(b *testing.B) {
	cpu0 := cpuTime(b)
	for b.Loop() {
		if _, err := Descendants(procmem.DefaultFS, os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPgrep is --pgrep's resolution, once per run: a pattern that
// matches nothing by name, so that every process's names and then every
// command line are tried, the most work a pattern can cost.
func BenchmarkPgrep(b *testing.B) {
	cpu0 := cpuTime(b)
	for b.Loop() {
		if _, err := Pgrep(procmem.DefaultFS, "^no-such-process-[0-9]+$", os.Getpid()); !errors.Is(err, ErrNoMatch) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the user and system time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
