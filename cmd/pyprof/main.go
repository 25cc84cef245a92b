// Command pyprof samples the Python stacks of running CPython processes.
//
//	pyprof dump -p PID [--locals] [--json]
//
// See README.md for the full set of commands.
package main

import (
	"os"
	"runtime/pprof"

	"github.com/pyprof/pyprof/internal/cli"
)

func main() {
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
