package procmem

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testenv"
)

const (
	systemPython  = "/usr/bin/python3.11" // Debian: stripped, non-PIE, libpython linked in
	pyenvRoot     = "/root/.pyenv/versions"
	pyenvPython   = pyenvRoot + "/3.11.7/bin/python3.11" // PIE, shared libpython
	pyenvLib311   = pyenvRoot + "/3.11.7/lib/libpython3.11.so.1.0"
	pyenvLib36    = pyenvRoot + "/3.6.15/lib/libpython3.6m.so.1.0"
	startDeadline = 20 * time.Second
)

// needFile returns path if it exists. Otherwise it skips the test, unless
// PYPROF_REQUIRE_PYTHONS=all says the machine must have every interpreter,
// so that CI cannot pass by skipping.
func needFile(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		testenv.SkipOrFail(t, testenv.Pythons, path, "%v", err)
	}
	return path
}

// pyChild is a Python process started by a test. Its script prints one JSON
// object describing itself (addresses, expected values) and then runs until
// the test ends.
type pyChild struct {
	cmd   *exec.Cmd
	pid   int
	info  map[string]uint64
	stdin io.WriteCloser
}

func startPython(t testing.TB, python, script string) *pyChild {
	t.Helper()
	return startPythonVia(t, python, script, false)
}

// startPythonVia with viaShell runs the interpreter as a grandchild, under
// a shell, like a target the profiler did not start: then we are only its
// tracer, not also its parent. The script must report its "pid".
func startPythonVia(t testing.TB, python, script string, viaShell bool) *pyChild {
	t.Helper()
	needFile(t, python)
	cmd := exec.Command(python, "-c", script)
	if viaShell {
		cmd = exec.Command("/bin/sh", "-c", `"$0" -c "$1" & wait`, python, script)
	}
	c := startReporting(t, cmd, python)
	c.pid = cmd.Process.Pid
	if viaShell {
		c.pid = int(c.info["pid"])
	}
	return c
}

// startReporting starts cmd, a Python child that prints one JSON line about
// itself and then waits, and returns once it has reported. The child is
// killed when the test ends: c.pid once set, and cmd's own process.
func startReporting(t testing.TB, cmd *exec.Cmd, name string) *pyChild {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &pyChild{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		if c.pid != 0 {
			syscall.Kill(c.pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatalf("%s exited before reporting", name)
		}
		if err := json.Unmarshal([]byte(l), &c.info); err != nil {
			t.Fatalf("child said %q: %v", l, err)
		}
	case <-time.After(startDeadline):
		t.Fatalf("%s did not start", name)
	}
	return c
}

func (c *pyChild) open(t testing.TB) *Process {
	t.Helper()
	p, err := Open(c.pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// memScript lays out memory with known contents: a 64 KiB buffer, and three
// pages of which the middle one is unmapped, to have a readable page
// followed by a hole.
const memScript = `
import ctypes, json, mmap, sys
PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
base = libc.mmap(None, 3 * PAGE, 3, 0x22, -1, 0)
assert base and base != ctypes.c_void_p(-1).value
assert libc.munmap(base + PAGE, PAGE) == 0
ctypes.memmove(base, bytes((i * 7 + 3) & 0xff for i in range(PAGE)), PAGE)
ctypes.memmove(base + 2 * PAGE, bytes((i * 5 + 1) & 0xff for i in range(PAGE)), PAGE)
big = ctypes.create_string_buffer(bytes(i * 13 & 0xff for i in range(65536)), 65536)
print(json.dumps({"page": base, "page_size": PAGE, "big": ctypes.addressof(big), "hexversion": sys.hexversion}), flush=True)
sys.stdin.read()
`

// Contents memScript wrote, for comparison.
func pagePattern(i int) byte  { return byte(i*7 + 3) }
func page3Pattern(i int) byte { return byte(i*5 + 1) }
func bigPattern(i int) byte   { return byte(i * 13) }

// spinScript runs three threads that each increment their own counter, and
// a main thread that increments another between short sleeps and counts
// SIGUSR1 deliveries, so a test can watch every thread make progress.
const spinScript = `
import ctypes, json, os, signal, sys, threading, time
counters = (ctypes.c_uint64 * 8)()
def spin(i):
    while True:
        counters[i] += 1
def on_usr1(signum, frame):
    counters[7] += 1
signal.signal(signal.SIGUSR1, on_usr1)
for i in range(3):
    threading.Thread(target=spin, args=(i,), daemon=True).start()
print(json.dumps({"counters": ctypes.addressof(counters), "pid": os.getpid()}), flush=True)
while True:
    counters[6] += 1
    time.sleep(0.001)
`

// Counter slots of spinScript.
var spinSlots = []int{0, 1, 2, 6}

const usr1Slot = 7

func readCounters(t testing.TB, p *Process, addr uint64) [8]uint64 {
	t.Helper()
	var b [64]byte
	if _, err := p.ReadAt(b[:], int64(addr)); err != nil {
		t.Fatal(err)
	}
	var c [8]uint64
	for i := range c {
		for j := 7; j >= 0; j-- {
			c[i] = c[i]<<8 | uint64(b[i*8+j])
		}
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	// Generous: the machine may be busy with other tests.
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// threadStates returns the state letter of every thread of p.
func threadStates(t testing.TB, p *Process) map[int]byte {
	t.Helper()
	tids, err := p.Threads()
	if err != nil {
		t.Fatal(err)
	}
	states := make(map[int]byte)
	for _, tid := range tids {
		st, err := p.ThreadStat(tid)
		if err != nil {
			continue // exited meanwhile
		}
		states[tid] = st
	}
	return states
}

func anyTraced(states map[int]byte) bool {
	for _, st := range states {
		if st == 't' {
			return true
		}
	}
	return false
}

func statesString(states map[int]byte) string {
	var parts []string
	for tid, st := range states {
		parts = append(parts, fmt.Sprintf("%d:%c", tid, st))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
