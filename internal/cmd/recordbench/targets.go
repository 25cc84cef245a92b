package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pyprof/pyprof/internal/benchproc"
	"golang.org/x/sys/unix"
)

// workload is one target program.
type workload struct {
	name   string
	script string // in testdata/targets; its annotations are the oracle
	about  string
	// service: gunicorn serving webapp.py under wrk; progress is its
	// request rate and profilers follow the workers.
	service bool
	busy    int  // threads that are always busy: samples due per tick
	idle    bool // has idle threads: report those recorded as active
	unit    string
}

var workloads = []*workload{
	{name: "hotleaf", script: "hotleaf.py", busy: 1, unit: "fib/s",
		about: "main thread 41 frames deep in descend() over fib(14), whose innermost frame changes every µs"},
	{name: "callpaths", script: "callpaths.py", busy: 1, idle: true, unit: "rounds/s",
		about: "main thread switching between a recursion, sum(gen()) and method calls, beside 40 threads parked in Event.wait()"},
	{name: "gunicorn", script: "webapp.py", service: true, busy: 3, idle: true, unit: "req/s",
		about: "webapp.py under gunicorn, 3 sync workers, wrk -t2 -c6 on loopback; profilers follow the workers"},
	{name: "churn", script: "churn.py", busy: 1, unit: "calls/s",
		about: "main thread recursing to a random depth (1-40) over a short leaf, again and again"},
}

// version is one interpreter to run the workloads on.
type version struct {
	name         string
	major, minor int
	python       string
	gunicorn     []string // argv prefix that runs gunicorn
	env          []string
}

// findVersion resolves "3.11" to pyenv's newest 3.11.x and "debian3.11" to
// Debian's /usr/bin/python3.11 (stripped, static) and its gunicorn.
func findVersion(name string) (*version, error) {
	v := &version{name: name}
	minorName := strings.TrimPrefix(name, "debian")
	if _, err := fmt.Sscanf(minorName, "%d.%d", &v.major, &v.minor); err != nil {
		return nil, fmt.Errorf("version %q: want a minor version such as 3.11 or debian3.11", name)
	}
	if strings.HasPrefix(name, "debian") {
		v.python = "/usr/bin/python" + minorName
		v.gunicorn = []string{"/usr/bin/gunicorn"}
		if !executable(v.python) {
			return nil, fmt.Errorf("version %s: no %s", name, v.python)
		}
		return v, nil
	}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if out, err := exec.Command("pyenv", "root").Output(); err == nil {
			root = strings.TrimSpace(string(out))
		} else {
			root = filepath.Join(os.Getenv("HOME"), ".pyenv")
		}
	}
	matches, _ := filepath.Glob(filepath.Join(root, "versions", minorName+".*", "bin", "python"+minorName))
	sort.Slice(matches, func(i, j int) bool { return patch(matches[i]) > patch(matches[j]) })
	if len(matches) == 0 {
		return nil, fmt.Errorf("version %s: no %s/versions/%s.*/bin/python%s", name, root, minorName, minorName)
	}
	v.python = matches[0]
	v.name = filepath.Base(filepath.Dir(filepath.Dir(v.python)))
	// Debian's gunicorn and Flask are pure Python and import here.
	v.gunicorn = []string{v.python, "-m", "gunicorn"}
	v.env = []string{"PYTHONPATH=/usr/lib/python3/dist-packages"}
	return v, nil
}

func patch(path string) int {
	dir := filepath.Base(filepath.Dir(filepath.Dir(path)))
	n, _ := strconv.Atoi(dir[strings.LastIndexByte(dir, '.')+1:])
	return n
}

// target is a running workload.
type target struct {
	c        *benchproc.Child
	progress *progress // script targets
	url      string    // gunicorn
	log      syncBuffer
}

// syncBuffer is a child's output, which may be read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}

func (t *target) stop() { t.c.Kill() }

// startScript runs a script that prints PROGRESS lines and waits until it
// has printed its first and warmed up for a second.
func startScript(v *version, path string) (*target, error) {
	cmd := exec.Command(v.python, path)
	t := &target{progress: &progress{eof: make(chan struct{})}}
	cmd.Stderr = &t.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if t.c, err = procs.Spawn(cmd); err != nil {
		return nil, err
	}
	go t.progress.read(out)
	deadline := time.Now().Add(30 * time.Second)
	for t.progress.count() == 0 {
		select {
		case <-t.progress.eof:
			t.stop()
			return nil, fmt.Errorf("%s exited: %s", filepath.Base(path), tail(t.log.Bytes()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("%s printed no progress in 30 s: %s", filepath.Base(path), tail(t.log.Bytes()))
		}
	}
	time.Sleep(time.Second)
	return t, nil
}

// startGunicorn runs webapp.py under gunicorn with 3 sync workers and
// warms it up under load.
func startGunicorn(v *version, dir string) (*target, error) {
	port := procs.FreePort()
	argv := append(append([]string{}, v.gunicorn...), "-w", "3", "-k", "sync", "-b", "127.0.0.1:"+strconv.Itoa(port),
		"--timeout", "120", "--chdir", dir, "webapp:app")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), v.env...)
	t := &target{url: "http://127.0.0.1:" + strconv.Itoa(port) + "/work"}
	cmd.Stdout, cmd.Stderr = &t.log, &t.log
	var err error
	if t.c, err = procs.Spawn(cmd); err != nil {
		return nil, err
	}
	if err := benchproc.WaitUp(t.url, t.c); err != nil {
		t.stop()
		return nil, fmt.Errorf("gunicorn: %v: %s", err, tail(t.log.Bytes()))
	}
	if _, err := load(t.url, 2); err != nil { // warm up
		t.stop()
		return nil, err
	}
	return t, nil
}

var rpsRE = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)

// load runs wrk on url for secs seconds and returns requests per second.
func load(url string, secs int) (float64, error) {
	cmd := exec.Command("wrk", "-t2", "-c6", "-d"+strconv.Itoa(secs)+"s", url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	c, err := procs.Spawn(cmd)
	if err != nil {
		return 0, fmt.Errorf("wrk: %v (apt-get install wrk)", err)
	}
	if !c.Exited(time.Duration(secs+30) * time.Second) {
		c.Kill()
		return 0, fmt.Errorf("wrk did not finish")
	}
	m := rpsRE.FindSubmatch(out.Bytes())
	if c.Err() != nil || m == nil {
		return 0, fmt.Errorf("wrk: %v: %s", c.Err(), tail(out.Bytes()))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// progress collects a script's "PROGRESS COUNT SECONDS" lines: how much
// work it had done at that CLOCK_MONOTONIC time.
type progress struct {
	mu  sync.Mutex
	pts []point
	eof chan struct{}
}

type point struct {
	t float64
	n int64
}

func (p *progress) read(r io.Reader) {
	defer close(p.eof)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "PROGRESS" {
			continue
		}
		n, err1 := strconv.ParseInt(f[1], 10, 64)
		t, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		p.mu.Lock()
		p.pts = append(p.pts, point{t, n})
		p.mu.Unlock()
	}
}

func (p *progress) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pts)
}

// rate is the work done per second between the first report at or after
// t0 and the last at or before t1; NaN without two such reports.
func (p *progress) rate(t0, t1 float64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := sort.Search(len(p.pts), func(i int) bool { return p.pts[i].t >= t0 })
	b := sort.Search(len(p.pts), func(i int) bool { return p.pts[i].t > t1 }) - 1
	if a >= b {
		return math.NaN()
	}
	return float64(p.pts[b].n-p.pts[a].n) / (p.pts[b].t - p.pts[a].t)
}

// monotonic is CLOCK_MONOTONIC in seconds, the clock of Python's
// time.monotonic().
func monotonic() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		procs.Fatalf("clock_gettime: %v", err)
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
