package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
)

var greenletsMany = flag.Int("greenlets", 1000, "greenlets benchmark: greenlets parked in the target besides its 14 shapes")

// benchGreenlets: record --idle on a gevent program with -greenlets parked
// greenlets, where every round decodes each of them, beside pyprof's
// plain record (the hub's thread only) and py-spy --idle, which sees the
// hub alone.
func benchGreenlets(targets, tmp string) {
	secs := strconv.Itoa(*seconds)
	r := strconv.Itoa(*rate)
	profs := []profiler{
		{"pyprof --idle", func(pid int, out string) []string {
			return []string{*pyprofBin, "record", "-p", strconv.Itoa(pid), "--idle", "-r", r, "-d", secs, "-f", "collapsed", "-o", out}
		}},
		{"pyprof", func(pid int, out string) []string {
			return []string{*pyprofBin, "record", "-p", strconv.Itoa(pid), "-r", r, "-d", secs, "-f", "collapsed", "-o", out}
		}},
		{"py-spy --idle", func(pid int, out string) []string {
			return []string{*pyspyBin, "record", "--pid", strconv.Itoa(pid), "--idle", "--rate", r, "-d", secs, "--format", "raw", "-o", out}
		}},
	}
	argv := []string{*python, filepath.Join(targets, "greenlets.py"), "--lib", "gevent", "--many", strconv.Itoa(*greenletsMany)}
	compare("greenlets", argv, profs, tmp, fmt.Sprintf("greenlets: greenlets.py --lib gevent --many %d (%d parked greenlets and the hub) on %s, %d Hz for %d s, %d rounds, medians",
		*greenletsMany, *greenletsMany+13, *python, *rate, *seconds, *rounds))
}
