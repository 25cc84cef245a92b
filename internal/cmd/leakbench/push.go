package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pyprof/pyprof/internal/pyroscopetest"
)

var (
	pushFor      = flag.Duration("push-for", 10*time.Minute, "push benchmark: how long pyprof pushes")
	pushRate     = flag.Int("push-rate", 100, "push benchmark: sampling rate, Hz")
	pyroscopeBin = flag.String("pyroscope", "", "push benchmark: Grafana Pyroscope server binary (default $"+pyroscopetest.Env+" or "+pyroscopetest.DefaultBinary+")")
)

var (
	pushOKRE    = regexp.MustCompile(`^pyprof: pushed \d\d:`)
	pushRetryRE = regexp.MustCompile(`^pyprof: retrying `)
	pushDropRE  = regexp.MustCompile(`^pyprof: dropped `)
)

// pushRow is one reading of the push benchmark.
type pushRow struct {
	at                 time.Duration
	u                  usage
	cpu                time.Duration // since the last reading
	span               time.Duration // of the last reading
	ok, retried, drops int64
}

// benchPush runs `pyprof record --push` of a gunicorn with 3 sync workers
// under wrk to a real Pyroscope on loopback for -push-for, and reads
// pyprof's CPU, memory and fds every -every, with the uploads' fates so
// far from its stderr.
func benchPush(targets, tmp string) {
	bin := *pyroscopeBin
	if bin == "" {
		var err error
		if bin, err = pyroscopetest.Binary(); err != nil {
			procs.Fatalf("%v", err)
		}
	}
	dir := filepath.Join(tmp, "pyroscope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		procs.Fatalf("%v", err)
	}
	srv, err := pyroscopetest.Start(bin, dir)
	if err != nil {
		procs.Fatalf("pyroscope: %v", err)
	}
	procs.AtExit(srv.Stop)
	defer srv.Stop()

	addr, stop := startLoadedGunicorn(targets, &lineLog{}, *pushFor, "-w", "3", "-k", "sync")
	defer stop()

	var ok, retried, dropped atomic.Int64
	plog := &lineLog{onLine: func(line string) {
		switch {
		case pushOKRE.MatchString(line):
			ok.Add(1)
		case pushRetryRE.MatchString(line):
			retried.Add(1)
		case pushDropRE.MatchString(line):
			dropped.Add(1)
		}
	}}
	pattern := `gunicorn .*` + regexp.QuoteMeta(addr)
	rec := exec.Command(*pyprofBin, "record", "--pgrep", pattern, "-r", strconv.Itoa(*pushRate),
		"--push", srv.URL, "--app", "leakbench", "--tag", "bench=push")
	rec.Stdout, rec.Stderr = plog, plog
	p, err := procs.Spawn(rec)
	if err != nil {
		procs.Fatalf("pyprof: %v", err)
	}
	start := time.Now()
	var rows []pushRow
	lastCPU, lastAt := time.Duration(0), start
	read := func() error {
		u, err := readUsage(p.Pid())
		if err != nil {
			return fmt.Errorf("pyprof exited early: %v: %s", err, tail(plog.String()))
		}
		st, err := readStat(p.Pid())
		if err != nil {
			return err
		}
		now := time.Now()
		r := pushRow{at: now.Sub(start).Round(time.Second), u: u, cpu: st.cpu - lastCPU, span: now.Sub(lastAt),
			ok: ok.Load(), retried: retried.Load(), drops: dropped.Load()}
		lastCPU, lastAt = st.cpu, now
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "leakbench: push %v: %d fds, RSS %d kB (peak %d kB), CPU %.1f%%, %d pushed, %d retried, %d dropped\n",
			r.at, u.fds, u.rss, u.hwm, 100*r.cpu.Seconds()/r.span.Seconds(), r.ok, r.retried, r.drops)
		return nil
	}
	var werr error
	for next := *every; next <= *pushFor; next += *every {
		select {
		case <-p.Done():
			werr = fmt.Errorf("pyprof exited early: %s", tail(plog.String()))
		case <-time.After(time.Until(start.Add(next))):
			werr = read()
		}
		if werr != nil {
			break
		}
	}
	total, _ := readStat(p.Pid())
	elapsed := time.Since(start)
	syscall.Kill(p.Pid(), syscall.SIGINT)
	if !p.Exited(time.Minute) {
		p.Kill()
	}
	closing := lastLine(plog.String())
	if werr != nil || p.Err() != nil {
		closing = fmt.Sprintf("%s (FAILED: %v %v)", closing, werr, p.Err())
	}

	fmt.Printf("\npush: pyprof record --pgrep of %s -w 3 -k sync under wrk -t2 -c6 at %d Hz, --push to Grafana Pyroscope on loopback every 10 s, %v\n",
		*gunicornBin, *pushRate, *pushFor)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "time\tfds\tVmRSS MB\tVmHWM MB\tCPU %% of a core\tCPU ms per round\tpushed\tretried\tdropped\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.2f\t%.3f\t%d\t%d\t%d\t\n", fmtDur(r.at), r.u.fds, float64(r.u.rss)/1024, float64(r.u.hwm)/1024,
			100*r.cpu.Seconds()/r.span.Seconds(), 1000*r.cpu.Seconds()/(float64(*pushRate)*r.span.Seconds()), r.ok, r.retried, r.drops)
	}
	tw.Flush()
	fmt.Printf("whole run: CPU %.1f s over %.0f s = %.2f%% of a core, %.3f ms per round due\n", total.cpu.Seconds(), elapsed.Seconds(),
		100*total.cpu.Seconds()/elapsed.Seconds(), 1000*total.cpu.Seconds()/(float64(*pushRate)*elapsed.Seconds()))
	fmt.Printf("CPU: utime+stime of pyprof from /proc/PID/stat over each %v (USER_HZ resolution); per round: over the rounds due\n", *every)
	fmt.Println("at the rate. pushed/retried/dropped: pyprof's stderr lines so far.")
	fmt.Printf("pyprof at the end: %s\n", strings.TrimSpace(closing))
}
