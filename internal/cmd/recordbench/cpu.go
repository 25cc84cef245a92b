package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// A profiler's CPU time is read from a cgroup of its own where the kernel
// offers cgroup v1's cpuacct: its usage is the scheduler's own count of
// the time every thread of the group ran, to the nanosecond. The rusage of
// a child is no substitute on kernels built with tick-based accounting
// (CONFIG_TICK_CPU_ACCOUNTING, as on the CI machines): it charges a whole
// 4 ms tick to whichever task runs when the tick fires, which for a
// process that wakes 100 times a second for a few microseconds is mostly
// noise.
const cpuacctRoot = "/sys/fs/cgroup/cpuacct"

type cpuGroup struct{ dir string }

var cpuGroups atomic.Int64

// newCPUGroup has cmd move itself into a fresh cpuacct group before it
// execs, or returns nil (rusage is used then).
func newCPUGroup(cmd *exec.Cmd) *cpuGroup {
	dir := filepath.Join(cpuacctRoot, fmt.Sprintf("recordbench-%d-%d", os.Getpid(), cpuGroups.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	argv := append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir, cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = "/bin/sh", append([]string{"sh"}, argv...)
	procs.AtExit(func() { os.Remove(dir) })
	return &cpuGroup{dir: dir}
}

// usage returns the CPU time the group's processes used.
func (g *cpuGroup) usage() (time.Duration, bool) {
	if g == nil {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(g.dir, "cpuacct.usage"))
	if err != nil {
		return 0, false
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(ns), err == nil
}

// remove deletes the group, which its processes must have left (exited).
func (g *cpuGroup) remove() {
	if g != nil {
		os.Remove(g.dir)
	}
}
