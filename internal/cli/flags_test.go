package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// errValidated stops a command that got past its flag checks, before it
// looks for (and attaches to) its target.
var errValidated = errors.New("validated")

// runValidated runs pyprof in-process with testHookValidated set, so that
// nothing is attached to, and returns the exit status, stderr, and the
// options the command accepted (nil if it stopped before its hook).
func runValidated(t testing.TB, args ...string) (code int, stderr string, opts any) {
	t.Helper()
	testHookValidated = func(o any) error {
		opts = o
		return errValidated
	}
	defer func() { testHookValidated = nil }()
	var out strings.Builder
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("pyprof %q panicked: %v", args, r)
		}
	}()
	code = Run(args, io.Discard, &out)
	return code, out.String(), opts
}

// numericFlags are every numeric flag of each command, with the range its
// message must state.
var numericFlags = []struct {
	command, long, short string
	want                 string
}{
	{"record", "rate", "r", "from 0.1 to 10000"},
	{"record", "duration", "d", "from 0.001 to 31536000 (a year), or unlimited"},
	{"record", "pid", "p", "from 1 to 4194304"},
	{"top", "rate", "r", "from 0.1 to 10000"},
	{"top", "duration", "d", "from 0.001 to 31536000 (a year), or unlimited"},
	{"top", "delay", "", "from 0.1 to 86400 (a day)"},
	{"top", "pid", "p", "from 1 to 4194304"},
	{"dump", "pid", "p", "from 1 to 4194304"},
}

// hostile are values no numeric flag takes.
var hostile = []string{
	"NaN", "nan", "-NaN", "Inf", "+Inf", "-Inf", "inf", "Infinity", "-infinity",
	"-1", "-0.5", "0", "-0", "0.0", "1e308", "-1e308", "1e400", "1e-308", "4e-324", "-4e-324", "1e-400",
	"9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
	"", " ", "abc", "1abc", "0x1p4", "0x1P-2", "1_000", "1,5", " 1", "1 ", "1e", "e5", ".", "-", "+", "--",
	"0b1", "0o10", "١", "1\x00", "99999999999999999999999999999999",
}

// validArgs are valid values for the numeric flags of command but except,
// and an output in dir for record.
func validArgs(command, except, dir string) []string {
	var args []string
	for _, f := range numericFlags {
		if f.command != command || f.long == except {
			continue
		}
		v := "1"
		if f.long == "pid" {
			v = "4194304" // validated, never looked for: the hook stops first
		}
		args = append(args, "--"+f.long, v)
	}
	if command == "record" {
		args = append(args, "-o", filepath.Join(dir, "p.svg"))
	}
	return args
}

// TestNumericFlagsRefuseHostileValues runs every command with hostile
// values for each numeric flag, as --flag VALUE, --flag=VALUE and -f VALUE:
// each is a usage error (exit 2) whose message names the flag, quotes the
// value and states the valid range; none panics or gets past validation.
func TestNumericFlagsRefuseHostileValues(t *testing.T) {
	dir := t.TempDir()
	for _, f := range numericFlags {
		values := hostile
		switch f.long {
		case "rate":
			values = append(values, "0.09", "10000.5", "1e5", "100000", "unlimited")
		case "duration":
			values = append(values, "0.0009", "31536001", "1e12", "Unlimited", "unlimited1")
		case "delay":
			values = append(values, "0.09", "86401", "1e10", "unlimited")
		case "pid":
			values = append(values, "1.5", "1e3", "4194305", "0x400001", "0x", "0X", "0x-1", "-0x10", "+1", "unlimited", "0x0")
		}
		for _, v := range values {
			forms := [][]string{{"--" + f.long, v}, {"--" + f.long + "=" + v}}
			if f.short != "" {
				forms = append(forms, []string{"-" + f.short, v})
			}
			for _, form := range forms {
				args := append([]string{f.command}, form...)
				args = append(args, validArgs(f.command, f.long, dir)...)
				t.Run(fmt.Sprintf("%q", args), func(t *testing.T) {
					code, stderr, opts := runValidated(t, args...)
					if code != exitUsage || opts != nil {
						t.Fatalf("exit %d, want 2 (got past validation: %v); stderr:\n%s", code, opts != nil, stderr)
					}
					for _, want := range []string{"--" + f.long + " ", strconv.Quote(v), f.want} {
						if !strings.Contains(stderr, want) {
							t.Errorf("message lacks %q:\n%s", want, stderr)
						}
					}
				})
			}
		}
	}
}

// TestNumericFlagsAccept: the limits of each range, py-spy's "unlimited"
// duration and hex pids are accepted and read as meant.
func TestNumericFlagsAccept(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		command, long, value string
		want                 float64
	}{
		{"record", "rate", "0.1", 0.1},
		{"record", "rate", "10000", 10000},
		{"record", "rate", "1e4", 10000},
		{"record", "rate", "+97.5", 97.5},
		{"record", "duration", "0.001", 0.001},
		{"record", "duration", "31536000", 31536000},
		{"record", "duration", "unlimited", 0},
		{"top", "rate", "250", 250},
		{"top", "duration", "unlimited", 0},
		{"top", "delay", "0.1", 0.1},
		{"top", "delay", "86400", 86400},
		{"dump", "pid", "1", 1},
		{"dump", "pid", "4194304", 4194304},
		{"dump", "pid", "0x10", 16},
		{"dump", "pid", "0X3fFf", 0x3fff},
		{"top", "pid", "010", 10}, // decimal, as py-spy reads it; Go's syntax would make it 8
		{"record", "pid", "0x400000", 4194304},
	} {
		args := append([]string{tc.command, "--" + tc.long, tc.value}, validArgs(tc.command, tc.long, dir)...)
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stderr, opts := runValidated(t, args...)
			if opts == nil {
				t.Fatalf("refused (exit %d): %s", code, stderr)
			}
			if got := optionValue(opts, tc.long); got != tc.want {
				t.Errorf("--%s %s read as %v, want %v", tc.long, tc.value, got, tc.want)
			}
		})
	}
}

// optionValue is a numeric flag's value in the options a command accepted.
func optionValue(opts any, long string) float64 {
	var s *samplingOptions
	var tgt *targetOptions
	var delay float64
	switch o := opts.(type) {
	case *recordOptions:
		s, tgt = &o.samplingOptions, &o.targetOptions
	case *topOptions:
		s, tgt, delay = &o.samplingOptions, &o.targetOptions, o.delay
	case *dumpOptions:
		tgt = &o.targetOptions
	}
	switch long {
	case "rate":
		return s.rate
	case "duration":
		return s.duration
	case "delay":
		return delay
	}
	return float64(tgt.pid)
}

// checkAccepted fails if options that got past validation hold a value
// that the sampler or top's ticker could not use: a rate whose period is
// not a positive Duration, a duration or delay that overflows, a pid out
// of the kernel's range.
func checkAccepted(t testing.TB, opts any) {
	t.Helper()
	var s *samplingOptions
	var tgt *targetOptions
	switch o := opts.(type) {
	case *recordOptions:
		s, tgt = &o.samplingOptions, &o.targetOptions
	case *topOptions:
		s, tgt = &o.samplingOptions, &o.targetOptions
		if d := seconds(o.delay); !(o.delay >= minDelay && o.delay <= maxDelay) || d <= 0 || d > 24*time.Hour {
			t.Errorf("accepted --delay %v (%v)", o.delay, d)
		}
	case *dumpOptions:
		tgt = &o.targetOptions
	default:
		t.Fatalf("options of type %T", opts)
	}
	if tgt.pid < 1 || tgt.pid > maxPid {
		t.Errorf("accepted --pid %d", tgt.pid)
	}
	if s == nil {
		return
	}
	if period := time.Duration(float64(time.Second) / s.rate); !(s.rate >= minRate && s.rate <= maxRate) || period <= 0 || period > 10*time.Second {
		t.Errorf("accepted --rate %v (period %v)", s.rate, period)
	}
	if d := seconds(s.duration); s.duration != 0 && !(s.duration >= minDuration && s.duration <= maxDuration) || d < 0 || d > 366*24*time.Hour {
		t.Errorf("accepted --duration %v (%v)", s.duration, d)
	}
}

// FuzzNumericFlags gives every command any string for each numeric flag:
// Run either refuses with a usage error that names a flag, or gets past
// validation with values the sampler and top can use; it never panics.
// The test hook stops each command before it looks for its target.
func FuzzNumericFlags(f *testing.F) {
	for _, v := range hostile {
		f.Add(v, "1", "1", "1")
		f.Add("100", v, "1", "1")
		f.Add("100", "1", v, "1")
		f.Add("100", "1", "1", v)
	}
	f.Add("100", "unlimited", "0.5", "0x10")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, rate, duration, delay, pid string) {
		out := "--output=" + filepath.Join(dir, "p.svg")
		for _, args := range [][]string{
			{"record", "--rate=" + rate, "--duration=" + duration, "--pid=" + pid, out},
			{"top", "--rate=" + rate, "--duration=" + duration, "--delay=" + delay, "--pid=" + pid},
			{"dump", "--pid=" + pid},
		} {
			code, stderr, opts := runValidated(t, args...)
			switch {
			case opts != nil:
				checkAccepted(t, opts)
			case code != exitUsage:
				t.Errorf("%q: exit %d, want 2 or validated:\n%s", args, code, stderr)
			case !strings.HasPrefix(stderr, "pyprof: --"):
				t.Errorf("%q: the message does not start with the flag:\n%s", args, stderr)
			}
		}
	})
}

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want time.Duration
	}{
		{0.001, time.Millisecond},
		{1.5, 1500 * time.Millisecond},
		{maxDuration, 365 * 24 * time.Hour},
		{1e12, math.MaxInt64},
		{math.Inf(1), math.MaxInt64},
		{math.NaN(), math.MaxInt64},
	} {
		if got := seconds(tc.s); got != tc.want {
			t.Errorf("seconds(%v) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
