package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// collapsed reads a collapsed-stacks file into stack → count.
func collapsed(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		n, err := strconv.Atoi(line[i+1:])
		if i < 0 || err != nil {
			t.Fatalf("bad collapsed line %q", line)
		}
		out[line[:i]] += n
	}
	return out
}

// share returns the fraction of samples whose stack contains frame.
func share(stacks map[string]int, frame *regexp.Regexp) (float64, int) {
	total, hit := 0, 0
	for s, n := range stacks {
		total += n
		if frame.MatchString(s) {
			hit += n
		}
	}
	if total == 0 {
		return 0, 0
	}
	return float64(hit) / float64(total), total
}

// pyprofCmd prepares the built binary with a clean working directory.
func pyprofCmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(testpython.BuildPyprof(t), args...)
	cmd.Dir = t.TempDir()
	return cmd
}

// TestRecordAttribution records a target that spends 60/30/10 % of its
// wall time in three functions (a 50 ms cycle) for 6 s at 100 Hz: each
// share must be within 5 points and the sample count within 10 % of 600.
// Every build of each version runs, the distributions' stripped ones too.
func TestRecordAttribution(t *testing.T) {
	for _, py := range testpython.For(t, "2.7", "3.6", "3.9", "3.11", "3.12", "3.13", "3.14", "3.15") {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "busy.py", "--split", "60,30,10")
			out := filepath.Join(t.TempDir(), "p.txt")
			_, stderr, code := runPyprof(t, "record", "-p", strconv.Itoa(tg.Pid), "-d", "6", "-r", "100", "-f", "collapsed", "-o", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			stacks := collapsed(t, out)
			var total int
			var shares []string
			for i, want := range []float64{0.60, 0.30, 0.10} {
				name := []string{"hot_a", "hot_b", "hot_c"}[i]
				got, n := share(stacks, regexp.MustCompile(`(^|;)`+name+` \(`))
				total = n
				shares = append(shares, fmt.Sprintf("%s %.1f%%", name, 100*got))
				if got < want-0.05 || got > want+0.05 {
					t.Errorf("%s: %.1f%% of samples, want %.0f%% ± 5", name, 100*got, 100*want)
				}
			}
			t.Logf("%s: %s", py.Name, strings.Join(shares, ", "))
			if total < 540 || total > 660 {
				t.Errorf("%d samples in 6 s at 100 Hz, want 600 ± 10%%", total)
			}
			t.Logf("%d samples; %s", total, strings.TrimSpace(stderr))
		})
	}
}

// TestRecordFormats writes every format, by -f and by extension, and with
// the default file name, and checks each can be read back.
func TestRecordFormats(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py", "--split", "60,30,10")
	pid := strconv.Itoa(tg.Pid)
	dir := t.TempDir()
	rec := func(args ...string) {
		t.Helper()
		cmd := exec.Command(testpython.BuildPyprof(t), append([]string{"record", "-p", pid, "-d", "1.5"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("record %v: %v\n%s", args, err, out)
		}
	}
	rec() // svg, default name
	rec("-f", "pprof")
	rec("-o", "named.json")
	rec("-o", "stacks.folded")

	svg, err := os.ReadFile(filepath.Join(dir, "profile-"+pid+".svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("svg is not XML: %v", err)
		}
	}
	if !bytes.Contains(svg, []byte("hot_a")) {
		t.Error("svg lacks hot_a")
	}

	top, err := exec.Command("go", "tool", "pprof", "-top", filepath.Join(dir, "profile-"+pid+".pb.gz")).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, top)
	}
	if !regexp.MustCompile(`(?m)\bhot_a$`).Match(top) {
		t.Errorf("pprof -top does not list hot_a:\n%s", top)
	}

	var ss struct {
		Schema   string `json:"$schema"`
		Profiles []struct {
			Type    string  `json:"type"`
			Samples [][]int `json:"samples"`
		} `json:"profiles"`
		Shared struct {
			Frames []struct{ Name string } `json:"frames"`
		} `json:"shared"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "named.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ss); err != nil || len(ss.Profiles) == 0 || ss.Profiles[0].Type != "sampled" {
		t.Errorf("speedscope: %v %+v", err, ss)
	}
	stacks := collapsed(t, filepath.Join(dir, "stacks.folded"))
	if got, _ := share(stacks, regexp.MustCompile(`hot_a`)); got < 0.4 {
		t.Errorf("collapsed: hot_a only %.0f%%", 100*got)
	}
}

// TestRecordLaunch runs the program given after --: it keeps stdin and
// stdout, and pyprof exits with its status after writing the profile.
func TestRecordLaunch(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	script := `import sys, time
data = sys.stdin.read()
print("child read " + data.upper(), flush=True)
end = time.time() + 1.5
def spin():
    x = 0
    while time.time() < end:
        x += 1
spin()
sys.exit(3)
`
	out := filepath.Join(t.TempDir(), "p.txt")
	cmd := pyprofCmd(t, "record", "-o", out, "--", py.Path, "-c", script)
	cmd.Stdin = strings.NewReader("abc")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit %d (%v), want the program's 3; stderr:\n%s", code, err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "child read ABC") {
		t.Errorf("program's stdout lost: %q", stdout.String())
	}
	if got, n := share(collapsed(t, out), regexp.MustCompile(`(^|;)spin \(`)); got < 0.8 || n < 50 {
		t.Errorf("spin in %.0f%% of %d samples; stderr:\n%s", 100*got, n, stderr.String())
	}
}

// TestRecordTargetExits: the target ends during the recording; pyprof
// writes what it has and exits 0, saying so.
func TestRecordTargetExits(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	cmd := exec.Command(py.Path, "-c", "import time\nend = time.time() + 2\nwhile time.time() < end: pass")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	time.Sleep(300 * time.Millisecond)
	out := filepath.Join(t.TempDir(), "p.txt")
	_, stderr, code := runPyprof(t, "record", "-p", strconv.Itoa(cmd.Process.Pid), "-o", out)
	if code != 0 || !strings.Contains(stderr, "target exited") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, n := share(collapsed(t, out), regexp.MustCompile(`.`)); n < 50 {
		t.Errorf("only %d samples kept", n)
	}
}

// TestRecordSignals: the first SIGINT, or a SIGTERM, stops sampling and
// writes the output.
func TestRecordSignals(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py", "--split", "60,30,10")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "p.txt")
			cmd := pyprofCmd(t, "record", "-p", strconv.Itoa(tg.Pid), "-o", out)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			if err != nil {
				t.Errorf("exit %v; stderr:\n%s", err, stderr.String())
			}
			if _, n := share(collapsed(t, out), regexp.MustCompile(`hot_`)); n < 50 {
				t.Errorf("%d samples written", n)
			}
		})
	}
}

// TestRecordUnwritableOutput fails before sampling starts.
func TestRecordUnwritableOutput(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	_, stderr, code := runPyprof(t, "record", "-p", strconv.Itoa(tg.Pid), "-o", "/nonexistent/dir/p.svg")
	if code != 1 || !strings.Contains(stderr, "cannot write the output") || strings.Contains(stderr, "sampling") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	noStackTrace(t, stderr)
}

// TestRecordWriteFailureKeepsData removes the output's directory while
// recording: the profile goes to a temporary file whose path is printed.
func TestRecordWriteFailureKeepsData(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	dir := filepath.Join(t.TempDir(), "gone")
	os.Mkdir(dir, 0o755)
	cmd := pyprofCmd(t, "record", "-p", strconv.Itoa(tg.Pid), "-d", "2", "-f", "collapsed", "-o", filepath.Join(dir, "p.txt"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	os.RemoveAll(dir)
	cmd.Wait()
	m := regexp.MustCompile(`saved to (\S+) instead`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no fallback path in stderr:\n%s", stderr.String())
	}
	defer os.Remove(m[1])
	if _, n := share(collapsed(t, m[1]), regexp.MustCompile(`.`)); n < 50 {
		t.Errorf("fallback file holds %d samples", n)
	}
}

// TestRecordUnderSudo: the output belongs to the invoking user, and a
// launched program runs as that user.
func TestRecordUnderSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// The program must be reachable by the unprivileged user, which
	// pyenv's interpreters under /root are not.
	py := testpython.Interpreter{Path: testpython.SystemPython}
	if _, err := os.Stat(py.Path); err != nil {
		t.Skip("no system python")
	}
	dir, err := os.MkdirTemp("", "pyprof-sudo")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	out := filepath.Join(dir, "p.txt")
	cmd := pyprofCmd(t, "record", "-o", out, "--", py.Path, "-c",
		"import os, time\nprint('uid', os.getuid(), flush=True)\nend = time.time() + 1\nwhile time.time() < end: pass")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SUDO_UID=65534", "SUDO_GID=65534")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !strings.Contains(string(got), "uid 65534") {
		t.Errorf("program did not run as the sudo user:\n%s", got)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("output owned by %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

// TestRecordStall stops pyprof for a second: the ticks it missed are
// counted and reported, not taken in a burst afterwards.
func TestRecordStall(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	out := filepath.Join(t.TempDir(), "p.txt")
	cmd := pyprofCmd(t, "record", "-p", strconv.Itoa(tg.Pid), "-d", "3", "-f", "collapsed", "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`(\d+) rounds missed after stalls`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no missed samples reported:\n%s", stderr.String())
	}
	missed, _ := strconv.Atoi(m[1])
	_, n := share(collapsed(t, out), regexp.MustCompile(`.`))
	// The duration includes the stall, so about 2 s of samples remain;
	// a burst to catch up would have added about 100 more.
	if missed < 60 || missed > 140 || n > 230 {
		t.Errorf("missed %d, kept %d samples", missed, n)
	}
}

// TestRecordThreadOptions covers --idle, --gil, --threads, --nolineno and
// --function on a target with one spinning and one sleeping thread.
func TestRecordThreadOptions(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	script := `import threading, time
def spin():
    x = 0
    while True:
        x += 1
threading.Thread(target=spin, name="spinner", daemon=True).start()
def rest():
    time.sleep(3600)
rest()
`
	cmd := exec.Command(py.Path, "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(500 * time.Millisecond)
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, tc := range []struct {
		args     []string
		want     []*regexp.Regexp
		wantNone []*regexp.Regexp
	}{
		{nil, []*regexp.Regexp{regexp.MustCompile(`;spin \(<string>:[45]\)$`)}, []*regexp.Regexp{regexp.MustCompile(`rest`), regexp.MustCompile(`^thread `)}},
		{[]string{"--idle"}, []*regexp.Regexp{regexp.MustCompile(`spin`), regexp.MustCompile(`rest \(<string>:8\)$`)}, nil},
		{[]string{"--idle", "--gil"}, []*regexp.Regexp{regexp.MustCompile(`spin`)}, []*regexp.Regexp{regexp.MustCompile(`rest`)}},
		{[]string{"--threads"}, []*regexp.Regexp{regexp.MustCompile(`^thread \d+: spinner;`)}, nil},
		{[]string{"--nolineno"}, []*regexp.Regexp{regexp.MustCompile(`;spin \(<string>\)$`)}, []*regexp.Regexp{regexp.MustCompile(`:\d+\)`)}},
		{[]string{"--function"}, []*regexp.Regexp{regexp.MustCompile(`;spin \(<string>:2\)$`)}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "p.txt")
			_, stderr, code := runPyprof(t, append([]string{"record", "-p", pid, "-d", "1", "-f", "collapsed", "-o", out}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			stacks := collapsed(t, out)
			for _, re := range tc.want {
				if got, _ := share(stacks, re); got == 0 {
					t.Errorf("no stack matches %v in %v", re, keys(stacks))
				}
			}
			for _, re := range tc.wantNone {
				if got, _ := share(stacks, re); got > 0 {
					t.Errorf("a stack matches %v in %v", re, keys(stacks))
				}
			}
		})
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %d", k, v))
	}
	return out
}
