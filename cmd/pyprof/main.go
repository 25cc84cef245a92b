// Command pyprof samples the Python stacks of running CPython processes.
//
//	pyprof dump -p PID [--locals] [--json]
//
// See README.md for the full set of commands.
package main

import (
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/pyprof/pyprof/internal/cli"
)

func main() {
	// PYPROF_HEAPPROFILE=FILE rewrites FILE with a profile of pyprof's
	// live heap every heapEvery, for finding what a long recording
	// retains (see internal/cmd/leakbench).
	if path := os.Getenv("PYPROF_HEAPPROFILE"); path != "" {
		go writeHeapProfiles(path)
	}
	// PYPROF_CPUPROFILE=FILE profiles pyprof itself, for work on its own
	// cost (see README, Performance).
	if path := os.Getenv("PYPROF_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				code := cli.Run(os.Args[1:], os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
		}
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}

const heapEvery = 30 * time.Second

func writeHeapProfiles(path string) {
	for range time.Tick(heapEvery) {
		// The profile shows the heap as of the last collection.
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			return
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
}
