package cli

import (
	"strings"
	"testing"
)

// TestHelp: help goes to stdout with exit 0, as `pyprof record --help | less`
// needs; `pyprof help CMD` is CMD's help; usage errors stay on stderr.
func TestHelp(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := Run(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	for _, tc := range []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"record", "--help"}, []string{"Usage: pyprof record", "--rate RATE", "0.1 to 10000", "--duration SECONDS", "or unlimited", "--pid PID", "(0x...)"}},
		{[]string{"record", "-h"}, []string{"Usage: pyprof record"}},
		{[]string{"record", "-p", "1", "--help"}, []string{"Usage: pyprof record"}},
		{[]string{"top", "--help"}, []string{"Usage: pyprof top", "--delay SECONDS", "0.1 to 86400", "(default 1)", "--sort COLUMN"}},
		{[]string{"dump", "--help"}, []string{"Usage: pyprof dump", "--locals"}},
		{[]string{"help", "record"}, []string{"Usage: pyprof record"}},
		{[]string{"help", "top"}, []string{"Usage: pyprof top"}},
		{[]string{"help", "dump"}, []string{"Usage: pyprof dump"}},
		{[]string{"help"}, []string{usage}},
		{[]string{"--help"}, []string{usage}},
		{[]string{"-h"}, []string{usage}},
		{[]string{"help", "help"}, []string{usage}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != exitOK || errOut != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "[=true|false]") || strings.Contains(out, " float") {
				t.Errorf("stdout shows Go types:\n%s", out)
			}
			if len(tc.args) == 2 && tc.args[0] == "help" && tc.args[1] != "help" {
				if _, direct, _ := run(tc.args[1], "--help"); direct != out {
					t.Errorf("help %s differs from %s --help:\n%s\n---\n%s", tc.args[1], tc.args[1], out, direct)
				}
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"help", "nosuch"}, []string{`unknown command "nosuch"`}},
		{[]string{"help", "record", "top"}, []string{"help takes one command"}},
		{[]string{"nosuch"}, []string{`unknown command "nosuch"`, `"pyprof --help"`}},
		{[]string{"record", "--nope"}, []string{"unknown flag: --nope", `"pyprof record --help"`}},
		{[]string{"top", "--delay", "0"}, []string{`--delay "0"`, `"pyprof top --help"`}},
		{[]string{"dump"}, []string{"dump needs a process", `"pyprof dump --help"`}},
		{nil, []string{"Usage:"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != exitUsage || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}
