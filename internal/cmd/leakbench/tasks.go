package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

var (
	tasksPythons = flag.String("tasks-pythons", "/usr/bin/python3.11,/root/.pyenv/versions/3.12.1/bin/python3.12", "tasks benchmark: interpreters, comma-separated")
	tasksTotal   = flag.Int("tasks", 1000, "tasks benchmark: pending tasks in the target")
)

// benchTasks measures what record --async --idle costs on an event loop
// with -tasks pending tasks (manytasks.py: each parked in a 3-deep chain
// in asyncio.sleep, one busy task beside them), on each of -tasks-pythons:
// pyprof record --async --idle beside plain record and py-spy record
// --idle, in the same round and an order that rotates, over -rounds rounds
// of -seconds each at -rate; medians.
func benchTasks(targets, tmp string) {
	secs := strconv.Itoa(*seconds)
	r := strconv.Itoa(*rate)
	profs := []profiler{
		{"pyprof --async --idle", func(pid int, out string) []string {
			return []string{*pyprofBin, "record", "--async", "--idle", "-p", strconv.Itoa(pid), "-r", r, "-d", secs, "-f", "collapsed", "-o", out}
		}},
		{"pyprof", func(pid int, out string) []string {
			return []string{*pyprofBin, "record", "-p", strconv.Itoa(pid), "-r", r, "-d", secs, "-f", "collapsed", "-o", out}
		}},
		{"py-spy --idle", func(pid int, out string) []string {
			return []string{*pyspyBin, "record", "--idle", "--pid", strconv.Itoa(pid), "--rate", r, "-d", secs, "--format", "raw", "-o", out}
		}},
	}
	for _, py := range strings.Split(*tasksPythons, ",") {
		py = strings.TrimSpace(py)
		if _, err := os.Stat(py); err != nil {
			fmt.Printf("\ntasks: %v: skipped\n", err)
			continue
		}
		results := make([][]measurement, len(profs))
		for round := 0; round < *rounds; round++ {
			tg, err := startScript([]string{py, filepath.Join(targets, "manytasks.py"), strconv.Itoa(*tasksTotal)}, nil)
			if err != nil {
				procs.Fatalf("tasks target: %v", err)
			}
			time.Sleep(2 * time.Second)
			for k := range profs {
				i := (k + round) % len(profs)
				out := filepath.Join(tmp, fmt.Sprintf("tasks-%d-%d.txt", round, i))
				m := measure(profs[i].argv(tg.c.Pid(), out), out)
				fmt.Fprintf(os.Stderr, "leakbench: %s round %d %s: cpu %v, %d stacks, %.1f Hz %s\n", py, round+1, profs[i].name, m.cpu, m.stacks, m.rounds, m.failure)
				results[i] = append(results[i], m)
			}
			tg.c.Kill()
		}
		fmt.Printf("\ntasks: manytasks.py, %d pending tasks and a busy one on %s, %d Hz for %d s, %d rounds, medians\n",
			*tasksTotal, py, *rate, *seconds, *rounds)
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "profiler\trounds kept\twall s\tstacks/s\tCPU %% of a core\tCPU ms per round\tfailed\t\n")
		due := float64(*rate * *seconds)
		for i, p := range profs {
			var cpu, wall, stacks, kept, perRound []float64
			failed := 0
			for _, m := range results[i] {
				if m.failure != "" {
					failed++
					continue
				}
				cpu = append(cpu, m.cpu.Seconds())
				wall = append(wall, m.wall.Seconds())
				stacks = append(stacks, float64(m.stacks)/m.wall.Seconds())
				taken := due
				if m.rounds > 0 {
					taken = m.rounds * m.wall.Seconds()
					kept = append(kept, m.rounds/float64(*rate))
				} else {
					kept = append(kept, float64(*seconds)/m.wall.Seconds())
				}
				perRound = append(perRound, 1000*m.cpu.Seconds()/taken)
			}
			fmt.Fprintf(w, "%s\t%.1f%%\t%.1f\t%.0f\t%.1f%%\t%.2f\t%d\t\n", p.name, 100*median(kept), median(wall), median(stacks),
				100*median(cpu)/max(median(wall), 1e-9), median(perRound), failed)
		}
		w.Flush()
	}
	fmt.Println("rounds kept: pyprof's \"Hz achieved\" over the rate; py-spy's, the duration asked over its wall time (start-up included).")
	fmt.Println("CPU: utime+stime of the profiler at its exit (every thread and goroutine), per round over the rounds it took.")
}
