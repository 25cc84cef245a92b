package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// Users type py-spy's flags by habit. pyprof takes py-spy 0.4.1's flags
// that mean something it does (its short forms -t, -g, -i, -F, -j, -ll,
// -d unlimited, hex pids, -f flamegraph and raw, --hideprogress), and
// refuses the others with a sentence that says what to do instead.

// pyspyOnly are py-spy 0.4.1 options that pyprof does not have.
var pyspyOnly = []struct {
	long, short string
	commands    []string
	msg         string
}{
	{"native", "n", []string{"record", "top", "dump"}, "pyprof reads Python frames only; it cannot show native (C, C++, Cython) frames. Leave it out for the Python stacks, or use py-spy --native or perf for native ones"},
	{"core", "c", []string{"dump"}, "pyprof reads live processes only, not core dumps; dump the process while it runs (-p PID)"},
	{"capture", "", []string{"record"}, "pyprof does not capture a launched program's output: the program writes to pyprof's own stdout and stderr, so redirect those in the shell"},
}

// unknownFlag explains a flag pflag does not know: py-spy's that pyprof
// lacks get a sentence, the rest pflag's message.
func unknownFlag(command string, e *pflag.NotExistError) error {
	name, short := e.GetSpecifiedName(), e.GetSpecifiedShortnames() != ""
	for _, o := range pyspyOnly {
		if short && name != o.short || !short && name != o.long {
			continue
		}
		for _, c := range o.commands {
			if c == command {
				flag := "--" + o.long
				if o.short != "" {
					flag = "-" + o.short + "/--" + o.long
				}
				return usagef("%s: %s", flag, o.msg)
			}
		}
	}
	return &usageError{e.Error()}
}

// pyspyFormat maps a -f value, in any case as py-spy takes it, to
// pyprof's name for the format: py-spy's flamegraph is svg and its raw
// is collapsed.
func pyspyFormat(f string) (string, error) {
	f = strings.ToLower(f)
	switch f {
	case "flamegraph":
		return "svg", nil
	case "raw":
		return "collapsed", nil
	case "chrometrace":
		return "", usagef("-f chrometrace: pyprof does not write Chrome trace files; -f speedscope writes a profile that speedscope (https://www.speedscope.app) shows per thread, and -f pprof one for go tool pprof")
	}
	return f, nil
}
