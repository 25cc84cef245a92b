// Command pyprof samples the Python stacks of running CPython processes.
//
//	pyprof dump -p PID [--locals] [--json]
//
// See README.md for the full set of commands.
package main

import (
	"os"

	"github.com/pyprof/pyprof/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
