package cli

import (
	"reflect"
	"strings"
	"testing"
)

// TestPyspyFlags goes through py-spy 0.4.1's record, top and dump flags
// (py-spy CMD --help, and its hidden --hideprogress and --capture): those
// pyprof has mean the same, those that map to pyprof's are accepted, and
// the others are refused with a sentence saying what to do instead.
// --full-filenames of record and top belongs with their short file names.
func TestPyspyFlags(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/p.svg"
	// A command's options with its defaults, changed by edit.
	recOpts := func(edit func(*recordOptions)) *recordOptions {
		o := &recordOptions{output: out, format: "svg"}
		o.rate = 100
		edit(o)
		return o
	}
	topOpts := func(edit func(*topOptions)) *topOptions {
		o := &topOptions{delay: 1, sort: "own"}
		o.rate = 100
		edit(o)
		return o
	}
	dumpOpts := func(edit func(*dumpOptions)) *dumpOptions {
		o := &dumpOptions{}
		edit(o)
		return o
	}
	for _, tc := range []struct {
		args []string
		want any      // options accepted, or nil
		msg  []string // the refusal says
	}{
		{args: []string{"record", "-p", "0x10", "-o", out}, want: recOpts(func(o *recordOptions) { o.pid = 16 })},
		{args: []string{"record", "--pid", "16", "--output", out}, want: recOpts(func(o *recordOptions) { o.pid = 16 })},
		{args: []string{"record", "-p", "16", "-o", out, "-f", "flamegraph"}, want: recOpts(func(o *recordOptions) { o.pid, o.format = 16, "svg" })},
		{args: []string{"record", "-p", "16", "-o", out, "--format", "Flamegraph"}, want: recOpts(func(o *recordOptions) { o.pid, o.format = 16, "svg" })},
		{args: []string{"record", "-p", "16", "-o", out, "-f", "raw"}, want: recOpts(func(o *recordOptions) { o.pid, o.format = 16, "collapsed" })},
		{args: []string{"record", "-p", "16", "-o", out, "-f", "speedscope"}, want: recOpts(func(o *recordOptions) { o.pid, o.format = 16, "speedscope" })},
		{args: []string{"record", "-p", "16", "-o", out, "-d", "5", "-r", "250"}, want: recOpts(func(o *recordOptions) { o.pid, o.duration, o.rate = 16, 5, 250 })},
		{args: []string{"record", "-p", "16", "-o", out, "--duration", "unlimited"}, want: recOpts(func(o *recordOptions) { o.pid = 16 })},
		{args: []string{"record", "-p", "16", "-o", out, "-s"}, want: recOpts(func(o *recordOptions) { o.pid, o.subprocesses = 16, true })},
		{args: []string{"record", "-p", "16", "-o", out, "-F"}, want: recOpts(func(o *recordOptions) { o.pid, o.function = 16, true })},
		{args: []string{"record", "-p", "16", "-o", out, "--nolineno"}, want: recOpts(func(o *recordOptions) { o.pid, o.nolineno = 16, true })},
		{args: []string{"record", "-p", "16", "-o", out, "-t", "-g", "-i"}, want: recOpts(func(o *recordOptions) { o.pid, o.threads, o.gil, o.idle = 16, true, true, true })},
		{args: []string{"record", "-p", "16", "-o", out, "-tgi"}, want: recOpts(func(o *recordOptions) { o.pid, o.threads, o.gil, o.idle = 16, true, true, true })},
		{args: []string{"record", "-p", "16", "-o", out, "--threads", "--gil", "--idle"}, want: recOpts(func(o *recordOptions) { o.pid, o.threads, o.gil, o.idle = 16, true, true, true })},
		{args: []string{"record", "-p", "16", "-o", out, "--nonblocking"}, want: recOpts(func(o *recordOptions) { o.pid, o.nonblocking = 16, true })},
		{args: []string{"record", "-p", "16", "-o", out, "--hideprogress"}, want: recOpts(func(o *recordOptions) { o.pid, o.hideProgress = 16, true })},
		{args: []string{"record", "-p", "16", "-o", out, "--native"}, msg: []string{"--native: pyprof reads Python frames only", "native (C, C++, Cython) frames", "py-spy --native or perf"}},
		{args: []string{"record", "-p", "16", "-o", out, "-n"}, msg: []string{"-n/--native: pyprof reads Python frames only"}},
		{args: []string{"record", "-p", "16", "-o", out, "-sn"}, msg: []string{"-n/--native: pyprof reads Python frames only"}},
		{args: []string{"record", "-p", "16", "-o", out, "-f", "chrometrace"}, msg: []string{"-f chrometrace: pyprof does not write Chrome trace files", "-f speedscope"}},
		{args: []string{"record", "-p", "16", "-o", out, "--capture"}, msg: []string{"--capture: pyprof does not capture a launched program's output", "redirect"}},
		{args: []string{"record", "-p", "16", "-o", out, "--nolineno", "--function"}, msg: []string{"--nolineno and --function exclude each other"}},
		{args: []string{"record", "-p", "16", "-o", out, "-c", "core"}, msg: []string{"unknown shorthand flag: 'c'"}},

		{args: []string{"top", "-p", "0x10"}, want: topOpts(func(o *topOptions) { o.pid = 16 })},
		{args: []string{"top", "-p", "16", "-r", "50", "-s", "-g", "-i", "--delay", "2.5", "--nonblocking"}, want: topOpts(func(o *topOptions) {
			o.pid, o.rate, o.subprocesses, o.gil, o.idle, o.delay, o.nonblocking = 16, 50, true, true, true, 2.5, true
		})},
		{args: []string{"top", "-p", "16", "--native"}, msg: []string{"--native: pyprof reads Python frames only"}},
		{args: []string{"top", "-p", "16", "-n"}, msg: []string{"-n/--native"}},
		{args: []string{"top", "-p", "16", "--capture"}, msg: []string{"unknown flag: --capture"}},

		{args: []string{"dump", "-p", "0x10"}, want: dumpOpts(func(o *dumpOptions) { o.pid = 16 })},
		{args: []string{"dump", "-p", "16", "-l", "-j", "-s", "--full-filenames", "--nonblocking"}, want: dumpOpts(func(o *dumpOptions) {
			o.pid, o.locals, o.json, o.subprocesses, o.fullFilenames, o.nonblocking = 16, true, true, true, true, true
		})},
		{args: []string{"dump", "-p", "16", "-ll", "--json"}, want: dumpOpts(func(o *dumpOptions) { o.pid, o.locals, o.json = 16, true, true })},
		{args: []string{"dump", "-p", "16", "--locals"}, want: dumpOpts(func(o *dumpOptions) { o.pid, o.locals = 16, true })},
		{args: []string{"dump", "-c", "core.1234"}, msg: []string{"-c/--core: pyprof reads live processes only, not core dumps", "-p PID"}},
		{args: []string{"dump", "--core", "core.1234"}, msg: []string{"--core: pyprof reads live processes only"}},
		{args: []string{"dump", "-p", "16", "--native"}, msg: []string{"--native: pyprof reads Python frames only"}},
		{args: []string{"dump", "-p", "16", "-n"}, msg: []string{"-n/--native"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stderr, opts := runValidated(t, tc.args...)
			if tc.want == nil {
				if code != exitUsage || opts != nil {
					t.Fatalf("exit %d, want a usage error; stderr:\n%s", code, stderr)
				}
				for _, m := range tc.msg {
					if !strings.Contains(stderr, m) {
						t.Errorf("message lacks %q:\n%s", m, stderr)
					}
				}
				return
			}
			if opts == nil {
				t.Fatalf("refused (exit %d): %s", code, stderr)
			}
			if !reflect.DeepEqual(opts, tc.want) {
				t.Errorf("options\n%+v\nwant\n%+v", opts, tc.want)
			}
		})
	}
}
