// Command recordbench measures what profiling costs a gunicorn service: it
// runs gunicorn with 3 sync workers under load from wrk on loopback, and
// compares the request rate with no profiler, with pyprof record in each
// mode, and with austin (Debian's package), all in the same run and
// interleaved over several rounds; pyprof top runs on the same service, so
// that its CPU use can be set beside record's. It prints medians: requests per second,
// the slowdown against no profiler, the profiler's CPU use, and the share
// of stacks that could not be read.
//
// austin 1.0.1 reads CPython up to 3.8 only, so the comparison runs a
// second gunicorn on pyenv's 3.8 (gunicorn and Flask are pure Python, so
// Debian's packages import there); pyprof is measured on both.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

var (
	rounds  = flag.Int("rounds", 3, "interleaved rounds")
	seconds = flag.Int("seconds", 10, "load duration per measurement")
	pyprof  = flag.String("pyprof", "bin/pyprof", "pyprof binary")
	py38    = flag.String("py38", filepath.Join(os.Getenv("HOME"), ".pyenv/versions/3.8.18/bin/python3.8"), "a Python austin supports, for the comparison")
	rate    = flag.Int("rate", 100, "sampling rate, Hz")
	only    = flag.String("only", "", "run only this part: service or torn")
)

type setup struct {
	name string
	argv []string
	env  []string
}

type config struct {
	name string
	// start launches the profiler on the gunicorn master and returns it.
	start func(master int, out string) *exec.Cmd
}

type result struct {
	rps     []float64
	cpu     []float64
	samples []float64
	errors  []float64
	retries []float64
	paused  []float64
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	root, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	app := filepath.Join(root, "testdata", "targets")
	setups := []setup{{name: "Debian python3.11", argv: []string{"/usr/bin/gunicorn"}}}
	if _, err := os.Stat(*py38); err == nil {
		setups = append(setups, setup{name: "pyenv 3.8.18", argv: []string{*py38, "-m", "gunicorn"}, env: []string{"PYTHONPATH=/usr/lib/python3/dist-packages"}})
	}
	r := strconv.Itoa(*rate)
	interval := strconv.Itoa(1000000 / *rate)
	configs := []config{
		{"none", nil},
		{"pyprof (auto)", func(m int, out string) *exec.Cmd {
			return exec.Command(*pyprof, "record", "-p", strconv.Itoa(m), "-s", "-r", r, "-f", "collapsed", "-o", out)
		}},
		{"pyprof nonblocking", func(m int, out string) *exec.Cmd {
			return exec.Command(*pyprof, "record", "--nonblocking", "-p", strconv.Itoa(m), "-s", "-r", r, "-f", "collapsed", "-o", out)
		}},
		{"pyprof blocking", func(m int, out string) *exec.Cmd {
			return exec.Command(*pyprof, "record", "--blocking", "-p", strconv.Itoa(m), "-s", "-r", r, "-f", "collapsed", "-o", out)
		}},
		// top samples as record does but also redraws its table every
		// second; piped, it prints the whole table each time.
		{"pyprof top (auto)", func(m int, out string) *exec.Cmd {
			c := exec.Command(*pyprof, "top", "-p", strconv.Itoa(m), "-s", "-r", r)
			c.Stdout = io.Discard
			return c
		}},
		{"austin", func(m int, out string) *exec.Cmd {
			return exec.Command("austin", "-C", "-i", interval, "-o", out, "-p", strconv.Itoa(m))
		}},
	}
	tmp, err := os.MkdirTemp("", "recordbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	if *only == "torn" {
		torn(app)
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "setup\tprofiler\treq/s\tslowdown\tprofiler CPU\tstacks/s\tunreadable stacks\tre-read\tpaused\t\n")
	for _, s := range setups {
		port := freePort()
		g := exec.Command(s.argv[0], append(s.argv[1:], "-w", "3", "-k", "sync", "-b", "127.0.0.1:"+strconv.Itoa(port), "--timeout", "120", "--chdir", app, "webapp:app")...)
		g.Env = append(os.Environ(), s.env...)
		var glog bytes.Buffer
		g.Stdout, g.Stderr = &glog, &glog
		if err := g.Start(); err != nil {
			log.Fatal(err)
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/work"
		if err := waitUp(url); err != nil {
			g.Process.Kill()
			log.Fatalf("%s: %v\n%s", s.name, err, glog.String())
		}
		load(url, 2) // warm up
		results := map[string]*result{}
		for round := 0; round < *rounds; round++ {
			for _, c := range configs {
				if c.name == "austin" && !strings.Contains(s.name, "3.8") {
					continue
				}
				res := results[c.name]
				if res == nil {
					res = &result{}
					results[c.name] = res
				}
				measure(c, g.Process.Pid, url, filepath.Join(tmp, fmt.Sprintf("%d.out", round)), res)
			}
		}
		g.Process.Signal(syscall.SIGTERM)
		g.Wait()
		base := median(results["none"].rps)
		for _, c := range configs {
			res := results[c.name]
			if res == nil {
				continue
			}
			rps := median(res.rps)
			row := fmt.Sprintf("%s\t%s\t%.0f\t%s\t", s.name, c.name, rps, pct(1-rps/base, c.name == "none"))
			if c.name == "none" {
				row += "\t\t\t\t\t"
			} else {
				row += fmt.Sprintf("%.1f%% of a core\t", median(res.cpu))
				if len(res.samples) > 0 {
					row += fmt.Sprintf("%.0f\t%.2f%%\t%.1f%%\t%.1f%%\t", median(res.samples), median(res.errors), median(res.retries), median(res.paused))
				} else {
					row += "\t\t\t\t"
				}
			}
			fmt.Fprintln(w, row)
		}
	}
	w.Flush()
	if *only != "service" {
		torn(app)
	}
}

// torn records churn.py, whose stack changes constantly, in each mode, and
// counts the stacks whose shape is impossible for it: the rate at which a
// mode returns torn stacks, beyond those it could tell were unreadable.
func torn(app string) {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "target\tmode\tstacks\ttorn (impossible shape)\tunreadable\t\n")
	for _, py := range []string{"/usr/bin/python3.11", *py38} {
		for _, mode := range []string{"--nonblocking", "--blocking", ""} {
			var bad, total, unreadable []float64
			for round := 0; round < *rounds; round++ {
				c := exec.Command(py, filepath.Join(app, "churn.py"))
				if err := c.Start(); err != nil {
					log.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond)
				out := filepath.Join(os.TempDir(), "churn.txt")
				var stderr bytes.Buffer
				args := []string{"record", "-p", strconv.Itoa(c.Process.Pid), "-d", strconv.Itoa(*seconds), "-f", "collapsed", "-o", out}
				if mode != "" {
					args = append(args, mode)
				}
				p := exec.Command(*pyprof, args...)
				p.Stderr = &stderr
				if err := p.Run(); err != nil {
					log.Fatalf("%v\n%s", err, stderr.String())
				}
				c.Process.Kill()
				c.Wait()
				b, n := checkChurn(out)
				bad, total = append(bad, float64(b)), append(total, float64(n))
				if m := summaryRE.FindStringSubmatch(stderr.String()); m != nil {
					e, _ := strconv.ParseFloat(m[2], 64)
					unreadable = append(unreadable, 100*e/(float64(n)+e))
				}
				os.Remove(out)
			}
			name := mode
			if name == "" {
				name = "(auto)"
			}
			fmt.Fprintf(w, "%s\t%s\t%.0f\t%.3f%%\t%.3f%%\t\n", filepath.Base(py), name, median(total), 100*median(bad)/median(total), median(unreadable))
		}
	}
	w.Flush()
}

var (
	churnFrame = regexp.MustCompile(`^(\S+) \(([^:]*):(\d+)\)$`)
)

// checkChurn counts the samples in a collapsed file whose stack is not
// <module>;main;level...;[leaf] with every outer level frame on its
// recursive call, and the total.
func checkChurn(path string) (bad, total int) {
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "targets", "churn.py"))
	if err != nil {
		log.Fatal(err)
	}
	recurse, callLeaf := 0, 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "# RECURSE") {
			recurse = i + 1
		}
		if strings.Contains(l, "# LEAF") {
			callLeaf = i + 1
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		n, _ := strconv.Atoi(line[i+1:])
		total += n
		frames := strings.Split(line[:i], ";")
		ok := len(frames) >= 2 && strings.HasPrefix(frames[0], "<module> (") && strings.HasPrefix(frames[1], "main (")
		for j := 2; ok && j < len(frames); j++ {
			m := churnFrame.FindStringSubmatch(frames[j])
			if m == nil {
				ok = false
				break
			}
			// main draws the depth from random: those stacks are
			// main;random.py frames only.
			if strings.HasSuffix(m[2], "random.py") {
				ok = j == 2 || strings.HasSuffix(frames[j-1], "random.py)") || strings.Contains(frames[j-1], "random.py:")
				continue
			}
			last := j == len(frames)-1
			switch {
			case m[1] == "leaf":
				ok = last
			case m[1] == "level":
				ln, _ := strconv.Atoi(m[3])
				// Outer levels sit on the recursive call, the one
				// above leaf on the call of leaf; the innermost may
				// be anywhere in level.
				next := ""
				if !last {
					next = frames[j+1]
				}
				ok = last || ln == recurse && strings.HasPrefix(next, "level (") || ln == callLeaf && strings.HasPrefix(next, "leaf (")
			default:
				ok = false
			}
		}
		if !ok {
			bad += n
		}
	}
	return bad, total
}

func pct(x float64, none bool) string {
	if none {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*x)
}

var summaryRE = regexp.MustCompile(`: (\d+) samples, (\d+) errors \((\d+) torn samples read again, (\d+) paused\).*?([\d.]+) s,`)

func measure(c config, master int, url, out string, res *result) {
	var prof *exec.Cmd
	var stderr bytes.Buffer
	var start time.Time
	if c.start != nil {
		prof = c.start(master, out)
		prof.Stderr = &stderr
		if err := prof.Start(); err != nil {
			log.Fatalf("%s: %v", c.name, err)
		}
		start = time.Now()
		time.Sleep(500 * time.Millisecond)
	}
	rps := load(url, *seconds)
	res.rps = append(res.rps, rps)
	if prof == nil {
		return
	}
	ticks := cpuTicks(prof.Process.Pid)
	wall := time.Since(start)
	prof.Process.Signal(syscall.SIGINT)
	prof.Wait()
	// CPU time over the profiler's whole life, as a share of one core.
	res.cpu = append(res.cpu, 100*float64(ticks)/100/wall.Seconds())
	if m := summaryRE.FindStringSubmatch(stderr.String()); m != nil {
		n, _ := strconv.ParseFloat(m[1], 64)
		e, _ := strconv.ParseFloat(m[2], 64)
		rt, _ := strconv.ParseFloat(m[3], 64)
		paused, _ := strconv.ParseFloat(m[4], 64)
		secs, _ := strconv.ParseFloat(m[5], 64)
		res.paused = append(res.paused, 100*paused/(n+e))
		res.samples = append(res.samples, n/secs)
		res.errors = append(res.errors, 100*e/(n+e))
		res.retries = append(res.retries, 100*rt/(n+e))
	}
	os.Remove(out)
}

// cpuTicks is utime+stime of pid in clock ticks (100 per second on Linux).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

var rpsRE = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)

func load(url string, secs int) float64 {
	out, err := exec.Command("wrk", "-t2", "-c6", "-d"+strconv.Itoa(secs)+"s", url).Output()
	if err != nil {
		log.Fatalf("wrk: %v", err)
	}
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		log.Fatalf("wrk output: %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func waitUp(url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
