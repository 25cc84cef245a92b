package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Valid ranges of the numeric flags. Every accepted value converts to a
// positive time.Duration without overflow (a Duration holds 292 years).
const (
	minRate     = 0.1   // samples per second: one every 10 s
	maxRate     = 10000 // one every 100 µs, as fast as a sample can be taken
	minDuration = 0.001 // seconds
	maxDuration = 365 * 24 * 3600
	minDelay    = 0.1 // seconds between top's refreshes
	maxDelay    = 24 * 3600
	// maxPid is the kernel's PID_MAX_LIMIT on 64-bit machines: no
	// pid_max setting allows a larger pid.
	maxPid = 4 << 20
)

// rangeError is a flag value outside what the flag takes; want says what
// it takes.
type rangeError struct{ want string }

func (e *rangeError) Error() string { return e.want }

// wanter is a flag value that can say what it accepts.
type wanter interface{ want() string }

// floatFlag is a number flag limited to [min, max]. It takes plain
// decimal numbers only: strconv.ParseFloat alone would also take NaN,
// Inf and hexadecimal floats.
type floatFlag struct {
	p        *float64
	min, max float64
	unit     string // what the number counts, for messages
	maxNote  string // max in other words, "a year"
	arg      string // the value's name in help
	// unlimited lets "unlimited" stand for 0, no limit, as py-spy's
	// --duration takes it.
	unlimited bool
}

func (f *floatFlag) Set(s string) error {
	if f.unlimited && s == "unlimited" {
		*f.p = 0
		return nil
	}
	v, ok := parseDecimal(s)
	if !ok || v < f.min || v > f.max {
		return &rangeError{f.want()}
	}
	*f.p = v
	return nil
}

func (f *floatFlag) want() string {
	w := fmt.Sprintf("must be a number of %s from %s to %s", f.unit, formatNumber(f.min), formatNumber(f.max))
	if f.maxNote != "" {
		w += " (" + f.maxNote + ")"
	}
	if f.unlimited {
		w += ", or unlimited"
	}
	return w
}

func (f *floatFlag) String() string {
	if f.p == nil {
		return ""
	}
	return formatNumber(*f.p)
}

func (f *floatFlag) Type() string { return f.arg }

// parseDecimal parses a number written with digits, an optional sign,
// point and exponent.
func parseDecimal(s string) (float64, bool) {
	digits := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// floatVar registers a floatFlag with its default.
func floatVar(fs *pflag.FlagSet, f *floatFlag, name, short string, def float64, usage string) {
	*f.p = def
	fs.VarP(f, name, short, usage)
}

// seconds converts a validated number of seconds to a Duration, saturating
// rather than overflowing.
func seconds(s float64) time.Duration {
	ns := s * float64(time.Second)
	if !(ns < math.MaxInt64) {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// pidFlag is a process id, in decimal or in hex with 0x, as py-spy takes it.
// Go's own integer syntax would read 010 as 8 and accept 1_000.
type pidFlag struct{ p *int }

func (f *pidFlag) Set(s string) error {
	base, digits := 10, s
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, digits = 16, s[2:]
	}
	for _, c := range digits {
		if !(c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
			return &rangeError{f.want()}
		}
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil || v < 1 || v > maxPid {
		return &rangeError{f.want()}
	}
	*f.p = int(v)
	return nil
}

func (f *pidFlag) want() string {
	return fmt.Sprintf("must be a process id from 1 to %d, in decimal or in hex (0x...)", maxPid)
}

func (f *pidFlag) String() string {
	if f.p == nil || *f.p == 0 {
		return ""
	}
	return strconv.Itoa(*f.p)
}

func (f *pidFlag) Type() string { return "PID" }

// testHookValidated, set by tests, runs once a command has checked its
// flags, before it looks for its target; an error it returns ends the
// command.
var testHookValidated func(opts any) error

// flagError turns pflag's parse errors into usage errors that name the
// flag and, for a bad value, say what the flag takes.
func flagError(fs *pflag.FlagSet, err error) error {
	var nee *pflag.NotExistError
	var ive *pflag.InvalidValueError
	var vre *pflag.ValueRequiredError
	var re *rangeError
	switch {
	case errors.As(err, &nee):
		return unknownFlag(fs.Name(), nee)
	case errors.As(err, &ive) && errors.As(err, &re):
		return usagef("--%s %q: %s", ive.GetFlag().Name, ive.GetValue(), re.want)
	case errors.As(err, &vre):
		f := vre.GetFlag()
		if w, ok := f.Value.(wanter); ok {
			return usagef("--%s needs a value: it %s", f.Name, w.want())
		}
		return usagef("--%s needs a value", f.Name)
	}
	return &usageError{err.Error()}
}

// argNames name the values of string flags in help.
var argNames = map[string]string{"pgrep": "PATTERN", "output": "FILE", "format": "FORMAT", "sort": "COLUMN"}

// printFlags lists fs's flags for help, as pflag's PrintDefaults does but
// with each value's name rather than its Go type.
func printFlags(w io.Writer, fs *pflag.FlagSet) {
	type row struct{ left, right string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		switch t := f.Value.Type(); t {
		case "bool":
		case "string":
			name, ok := argNames[f.Name]
			if !ok {
				name = strings.ToUpper(f.Name)
			}
			left += " " + name
		default:
			left += " " + t
		}
		right := f.Usage
		if d := f.DefValue; d != "" && d != "0" && d != "false" {
			right += " (default " + d + ")"
		}
		rows = append(rows, row{left, right})
		width = max(width, len(left))
	})
	for _, r := range rows {
		fmt.Fprintf(w, "%-*s   %s\n", width, r.left, r.right)
	}
}
