// Package cli implements pyprof's command line: argument parsing, the
// commands, and the translation of errors into messages a user can act on.
// It writes only to the streams it is given, so tests run it in-process.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pyprof/pyprof/pyversions"
)

// Version is pyprof's release, set at build time with -ldflags.
var Version = "dev"

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake on the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

const usage = `pyprof samples the Python stacks of running CPython processes.

Usage:
  pyprof record [-p PID | --pgrep PATTERN | -- COMMAND...] [-o FILE] [options]
  pyprof top [-p PID | --pgrep PATTERN | -- COMMAND...] [-s] [--delay SECONDS] [--sort own|total|owntime|totaltime] [--lines]
  pyprof dump [-p PID | --pgrep PATTERN] [-s] [--locals] [--json] [--full-filenames] [--nonblocking]

Commands:
  record   sample a process (and its subprocesses) into a flamegraph or profile
  top      show a live table of where a process spends its time
  dump     print every thread's Python stack once

Run "pyprof help COMMAND" (or "pyprof COMMAND --help") for a command's options.
`

// Run executes pyprof with args (without the program name) and returns the
// exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "dump":
		err = runDump(args[1:], stdout, stderr)
	case "record":
		var code int
		code, err = runRecord(args[1:], stdout, stderr)
		if err == nil {
			return code
		}
	case "top":
		var code int
		code, err = runTop(args[1:], stdout, stderr)
		if err == nil {
			return code
		}
	case "help":
		return help(args[1:], stdout, stderr)
	case "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "-V", "--version", "version":
		fmt.Fprintf(stdout, "pyprof %s (CPython %s)\n", Version, strings.Join(pyversions.Supported(), ", "))
		return exitOK
	default:
		err = usagef("unknown command %q", args[0])
	}
	return report(err, args[0], stderr)
}

// help prints the help of the command named in args, or pyprof's own, to
// stdout.
func help(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		fmt.Fprint(stdout, usage)
		return exitOK
	case len(args) > 1:
		return report(usagef("help takes one command, not %q", args), "help", stderr)
	}
	switch args[0] {
	case "record", "top", "dump":
		return Run([]string{args[0], "--help"}, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	return report(usagef("help: unknown command %q (record, top or dump)", args[0]), "help", stderr)
}

// report prints err for the user and returns the exit status; usage
// errors point to the help of command.
func report(err error, command string, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "pyprof: %s\n", ue.msg)
		switch command {
		case "record", "top", "dump":
			fmt.Fprintf(stderr, "Run \"pyprof %s --help\" for usage.\n", command)
		default:
			fmt.Fprintln(stderr, `Run "pyprof --help" for usage.`)
		}
		return exitUsage
	}
	fmt.Fprintf(stderr, "pyprof: %s\n", explain(err))
	return exitError
}

// errHelp reports that --help was shown.
var errHelp = errors.New("help shown")
