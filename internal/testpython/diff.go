package testpython

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxRepr is the longest value pyprof prints whole; longer ones keep their
// first MaxRepr-3 runes followed by "...".
const MaxRepr = 200

// DiffThreads compares the threads pyprof read (got) with a target's report
// (want) and returns a readable description of every difference, or "" when
// they agree. Threads are matched by ThreadID. Names and every frame's
// function, filename and line must be equal. Locals are compared only for
// frames whose expectation records them, because a target records locals
// for a few frames only.
func DiffThreads(want, got []ExpectThread) string {
	var b strings.Builder
	gotByID := map[uint64]*ExpectThread{}
	for i := range got {
		gotByID[got[i].ThreadID] = &got[i]
	}
	seen := map[uint64]bool{}
	for i := range want {
		w := &want[i]
		seen[w.ThreadID] = true
		header := fmt.Sprintf("thread %d %s [%s]", w.ThreadID, nameString(w.Name), w.Shape)
		g := gotByID[w.ThreadID]
		if g == nil {
			fmt.Fprintf(&b, "%s: missing\n", header)
			continue
		}
		var lines []string
		if !equalNames(w.Name, g.Name) {
			lines = append(lines, fmt.Sprintf("name: want %s, got %s", nameString(w.Name), nameString(g.Name)))
		}
		lines = append(lines, diffFrames(w.Frames, g.Frames)...)
		if len(lines) > 0 {
			fmt.Fprintf(&b, "%s:\n", header)
			for _, l := range lines {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	for i := range got {
		if g := &got[i]; !seen[g.ThreadID] {
			fmt.Fprintf(&b, "thread %d %s: unexpected, %d frames\n", g.ThreadID, nameString(g.Name), len(g.Frames))
		}
	}
	return b.String()
}

func diffFrames(want, got []ExpectFrame) []string {
	var lines []string
	if len(want) != len(got) {
		// Position-by-position lines would all differ after the first
		// missing frame; both stacks in full say more.
		lines = append(lines, fmt.Sprintf("%d frames, want %d; want (innermost first):", len(got), len(want)))
		for i, f := range want {
			lines = append(lines, fmt.Sprintf("    %3d %s", i, frameString(f)))
		}
		lines = append(lines, "got:")
		for i, f := range got {
			lines = append(lines, fmt.Sprintf("    %3d %s", i, frameString(f)))
		}
		return lines
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Function != g.Function || w.Filename != g.Filename || w.Line != g.Line {
			lines = append(lines, fmt.Sprintf("frame %d: want %s, got %s", i, frameString(w), frameString(g)))
		}
		if w.Locals != nil {
			for _, l := range diffLocals(w.Locals, g.Locals) {
				lines = append(lines, fmt.Sprintf("frame %d (%s) %s", i, w.Function, l))
			}
		}
	}
	return lines
}

func diffLocals(want, got []ExpectLocal) []string {
	var lines []string
	gotByName := map[string]ExpectLocal{}
	for _, l := range got {
		gotByName[l.Name] = l
	}
	wantNames := map[string]bool{}
	for _, w := range want {
		wantNames[w.Name] = true
		g, ok := gotByName[w.Name]
		if !ok {
			lines = append(lines, fmt.Sprintf("local %s: missing, want %s", w.Name, w.Value))
			continue
		}
		if !MatchValue(w.Value, g.Value) {
			lines = append(lines, fmt.Sprintf("local %s: want %s, got %s", w.Name, w.Value, g.Value))
		}
		if w.Argument != g.Argument {
			lines = append(lines, fmt.Sprintf("local %s: argument %v, want %v", w.Name, g.Argument, w.Argument))
		}
	}
	for _, g := range got {
		if !wantNames[g.Name] {
			lines = append(lines, fmt.Sprintf("local %s: unexpected, value %s", g.Name, g.Value))
		}
	}
	if len(lines) == 0 {
		wn, gn := localNames(want), localNames(got)
		if !slices.Equal(wn, gn) {
			lines = append(lines, fmt.Sprintf("locals order: want %v, got %v", wn, gn))
		}
	}
	return lines
}

// MatchValue reports whether got is how pyprof should print a local whose
// repr is want: whole, or cut to MaxRepr runes when longer.
func MatchValue(want, got string) bool {
	r := []rune(want)
	if len(r) <= MaxRepr {
		return got == want
	}
	return got == string(r[:MaxRepr-3])+"..."
}

func localNames(ls []ExpectLocal) []string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return names
}

func frameString(f ExpectFrame) string {
	return fmt.Sprintf("%s (%s:%d)", f.Function, f.Filename, f.Line)
}

func equalNames(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func nameString(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}
