package proctree

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/pyprof/pyprof/procmem"
)

// Match is the result of Pgrep.
type Match struct {
	Root    Proc   // the chosen process
	ByName  bool   // matched on names (true) or on full command lines (false)
	Matched []Proc // every process that matched, in pid order, for messages
}

// ErrNoMatch and ErrAmbiguous are what NoMatchError and AmbiguousError
// answer to errors.Is.
var (
	ErrNoMatch   = errors.New("no process matches")
	ErrAmbiguous = errors.New("pattern matches unrelated processes")
)

// PatternError reports a pattern that is not a valid regular expression;
// it is the user's mistake, so the CLI shows it as a usage error.
type PatternError struct {
	Pattern string
	Err     error // from regexp.Compile
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("bad pattern %q: %v", e.Pattern, e.Err)
}

func (e *PatternError) Unwrap() error { return e.Err }

// NoMatchError reports that no process other than pyprof and its
// ancestors matches.
type NoMatchError struct {
	Pattern string
}

func (e *NoMatchError) Error() string { return fmt.Sprintf("no process matches %q", e.Pattern) }

func (e *NoMatchError) Is(target error) bool { return target == ErrNoMatch }

// AmbiguousError reports matches in more than one process tree, where no
// rule can tell which one the user means.
type AmbiguousError struct {
	Pattern string
	Roots   []Proc // the topmost matching process of each tree, in pid order
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pattern %q matches %d unrelated processes:\n", e.Pattern, len(e.Roots))
	for _, p := range e.Roots {
		fmt.Fprintf(&b, "  %7d  %s\n", p.Pid, clip(p.CommandLine(), 200))
	}
	b.WriteString("choose one with -p PID")
	return b.String()
}

func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// clip shortens s to at most n bytes plus an ellipsis, on a rune boundary:
// a JVM-sized command line would bury the list it belongs to.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Pgrep resolves --pgrep: pattern is an unanchored Go regular expression,
// tried first on each process's Names and, only if no name matches
// anywhere, on each CommandLine, as pgrep -f would.
//
// self is the pid of pyprof itself (os.Getpid()), in the pid namespace of
// this FS. Neither it nor any of its ancestors is ever matched: under sudo
// and a shell, all of their command lines contain the pattern.
//
// Among the matches, Root is the one none of whose ancestors matches: the
// gunicorn master rather than one of its workers. Matches in several
// unrelated trees give an *AmbiguousError, no match a *NoMatchError, and a
// pattern that does not compile a *PatternError.
func Pgrep(fsys procmem.FS, pattern string, self int) (*Match, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, &PatternError{Pattern: pattern, Err: err}
	}
	procs, err := List(fsys)
	if err != nil {
		return nil, err
	}
	return pgrep(re, pattern, newTree(procs), self)
}

func pgrep(re *regexp.Regexp, pattern string, t *tree, self int) (*Match, error) {
	// The ancestors come from the same snapshot as the candidates, so a
	// pid cannot be excluded as our ancestor and matched as a stranger.
	excluded := map[int]bool{self: true}
	for _, pid := range t.ancestors(self) {
		excluded[pid] = true
	}

	m := &Match{ByName: true}
	for _, p := range t.procs {
		if !excluded[p.Pid] && matchesAny(re, p.Names()) {
			m.Matched = append(m.Matched, p)
		}
	}
	if len(m.Matched) == 0 {
		m.ByName = false
		for _, p := range t.procs {
			if !excluded[p.Pid] && re.MatchString(p.CommandLine()) {
				m.Matched = append(m.Matched, p)
			}
		}
	}
	if len(m.Matched) == 0 {
		return nil, &NoMatchError{Pattern: pattern}
	}

	matched := make(map[int]bool, len(m.Matched))
	for _, p := range m.Matched {
		matched[p.Pid] = true
	}
	// A match with no matching ancestor tops its own tree; two such can
	// never be in each other's subtree, so more than one is ambiguous.
	var roots []Proc
	for _, p := range m.Matched {
		if !anyMatched(t.ancestors(p.Pid), matched) {
			roots = append(roots, p)
		}
	}
	if len(roots) == 0 {
		// Only a loop of parents, which a corrupt tree could hold,
		// leaves every match below another; list them all.
		roots = m.Matched
	}
	if len(roots) != 1 {
		return nil, &AmbiguousError{Pattern: pattern, Roots: roots}
	}
	m.Root = roots[0]
	return m, nil
}

func matchesAny(re *regexp.Regexp, names []string) bool {
	for _, n := range names {
		if re.MatchString(n) {
			return true
		}
	}
	return false
}

func anyMatched(pids []int, matched map[int]bool) bool {
	for _, pid := range pids {
		if matched[pid] {
			return true
		}
	}
	return false
}
