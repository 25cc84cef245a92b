package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"time"
)

// profiler is one row of the tables: a profiler in one mode.
type profiler struct {
	name string
	tool string // pyprof, py-spy or austin
	bin  string
	// args is the command line that samples pid (and, with follow, its
	// subprocesses) at rate for secs seconds into out.
	args func(pid, rate, secs int, out string, follow bool) []string
	// reads says which Python minor versions the tool reads.
	reads func(major, minor int) bool
	// serviceOnly rows run on the gunicorn workload only.
	serviceOnly bool
	// noStacks: the tool writes no stacks to count (pyprof top).
	noStacks bool
	// parse reads what the run recorded.
	parse func(out string, stdout, stderr []byte, r *run) error
}

func allProfilers(pyprof, pyspy, austin string) []*profiler {
	pyprofReads := func(major, minor int) bool {
		return major == 2 && minor == 7 || major == 3 && minor >= 6 && minor <= 13
	}
	record := func(mode string) func(pid, rate, secs int, out string, follow bool) []string {
		return func(pid, rate, secs int, out string, follow bool) []string {
			a := []string{"record", "-p", strconv.Itoa(pid), "-r", strconv.Itoa(rate), "-d", strconv.Itoa(secs), "-f", "collapsed", "-o", out}
			if mode != "" {
				a = append(a, mode)
			}
			if follow {
				a = append(a, "-s")
			}
			return a
		}
	}
	pyspyRecord := func(mode string) func(pid, rate, secs int, out string, follow bool) []string {
		return func(pid, rate, secs int, out string, follow bool) []string {
			a := []string{"record", "-p", strconv.Itoa(pid), "-r", strconv.Itoa(rate), "-d", strconv.Itoa(secs), "--format", "raw", "-o", out}
			if mode != "" {
				a = append(a, mode)
			}
			if follow {
				a = append(a, "-s")
			}
			return a
		}
	}
	return []*profiler{
		{name: "pyprof", tool: "pyprof", bin: pyprof, args: record(""), reads: pyprofReads, parse: parsePyprof},
		{name: "pyprof --nonblocking", tool: "pyprof", bin: pyprof, args: record("--nonblocking"), reads: pyprofReads, parse: parsePyprof},
		{name: "pyprof --blocking", tool: "pyprof", bin: pyprof, args: record("--blocking"), reads: pyprofReads, parse: parsePyprof},
		// top samples as record does but also redraws its table every
		// second; piped, it prints the whole table each time.
		{name: "pyprof top", tool: "pyprof", bin: pyprof, serviceOnly: true, noStacks: true, reads: pyprofReads,
			args: func(pid, rate, secs int, out string, follow bool) []string {
				return []string{"top", "-p", strconv.Itoa(pid), "-s", "-r", strconv.Itoa(rate), "-d", strconv.Itoa(secs)}
			}},
		{name: "py-spy", tool: "py-spy", bin: pyspy, args: pyspyRecord(""), reads: pyprofReads, parse: parsePyspy},
		{name: "py-spy --nonblocking", tool: "py-spy", bin: pyspy, args: pyspyRecord("--nonblocking"), reads: pyprofReads, parse: parsePyspy},
		// -s (sleepless) drops idle threads' samples, as pyprof and
		// py-spy do by default; without it austin records every
		// thread at every sample.
		{name: "austin -s", tool: "austin", bin: austin, parse: parseAustinRun,
			reads: func(major, minor int) bool { return major == 3 && minor >= 8 && minor <= 13 },
			args: func(pid, rate, secs int, out string, follow bool) []string {
				a := []string{"-s", "-i", strconv.Itoa(1000000/rate) + "us", "-x", strconv.Itoa(secs), "-o", out, "-p", strconv.Itoa(pid)}
				if follow {
					a = append(a, "-C")
				}
				return a
			}},
	}
}

// pyprofSummary is record's last line on stderr.
var pyprofSummary = regexp.MustCompile(`: (\d+) samples(?: in \d+ rounds)?, (\d+) errors \((\d+) torn samples read again, (\d+) paused(?:, target stopped ([\d.]+) ms)?\)`)

func parsePyprof(out string, stdout, stderr []byte, r *run) error {
	stacks, err := parseCollapsed(out)
	if err != nil {
		return err
	}
	r.stacks = stacks
	m := pyprofSummary.FindSubmatch(stderr)
	if m == nil {
		return fmt.Errorf("no summary line in pyprof's stderr:\n%s", stderr)
	}
	r.errors, _ = strconv.Atoi(string(m[2]))
	r.retries, _ = strconv.Atoi(string(m[3]))
	r.paused, _ = strconv.Atoi(string(m[4]))
	if ms, err := strconv.ParseFloat(string(m[5]), 64); err == nil {
		r.stopped = time.Duration(ms * float64(time.Millisecond))
	}
	r.pyprofStats = true
	return nil
}

var pyspySummary = regexp.MustCompile(`Samples: (\d+) Errors: (\d+)`)

func parsePyspy(out string, stdout, stderr []byte, r *run) error {
	stacks, err := parseCollapsed(out)
	if err != nil {
		return err
	}
	r.stacks = stacks
	m := pyspySummary.FindSubmatch(append(append([]byte{}, stdout...), stderr...))
	if m == nil {
		return fmt.Errorf("no summary line in py-spy's output:\n%s%s", stdout, stderr)
	}
	r.errors, _ = strconv.Atoi(string(m[2]))
	return nil
}

func parseAustinRun(out string, stdout, stderr []byte, r *run) error {
	stacks, invalid, err := parseAustin(out)
	if err != nil {
		return err
	}
	r.stacks, r.errors = stacks, invalid
	return nil
}

// tail is the end of a child's output, for error messages.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 600 {
		b = append([]byte("..."), b[len(b)-600:]...)
	}
	return string(b)
}

func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
