package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// An oracle knows which stacks a target script can have, from the
// annotations in its source:
//
//   - a trailing "# -> NAME ..." says which functions of the script that
//     line calls, "*" standing for code in other files (the standard
//     library, Flask), after which the rest of the stack may only be such
//     code, or an entry function of the script;
//   - "# entry" on a def line lets code in other files call the function;
//   - "# idle" on a def line marks the functions of threads that never run:
//     a stack through one is an idle thread's;
//   - a comment line "# STACKS: REGEXP" constrains whole stacks: the
//     function names, root first, joined by ";", with each run of frames
//     from other files written "*", must match it;
//   - a comment line "# IDLE: FILE:FUNCTION ..." names functions of other
//     files (gunicorn's) where threads wait: a stack whose innermost frame
//     is one of them is an idle thread's.
//
// A recorded stack is possible when its root is <module> (or code in other
// files), each of the script's frames sits inside its function, each caller
// on a line that calls the next frame's function, and the names match
// STACKS. Anything else was torn: parts of two different moments.
type oracle struct {
	file   string // base name of the script
	funcs  map[string]*pyFunc
	stacks *regexp.Regexp  // nil when the script has no STACKS line
	idle   map[string]bool // "file:function" of other files' idle leaves
}

// pyFunc is one function of the script, found by its def line.
type pyFunc struct {
	name        string
	first, last int // line range, the def line included
	entry, idle bool
	calls       map[int][]string // line → callees, "*" for other files
}

// frame is one recorded frame, as the profilers' outputs give it.
type frame struct {
	fn, file string
	line     int
}

var (
	defRE    = regexp.MustCompile(`^\s*(?:async\s+)?def\s+(\w+)\s*\(`)
	classRE  = regexp.MustCompile(`^\s*class\s+\w+`)
	callsRE  = regexp.MustCompile(`#\s*->\s*([^#]*?)\s*$`)
	flagsRE  = regexp.MustCompile(`#\s*((?:entry|idle)(?:\s+(?:entry|idle))*)\s*$`)
	stacksRE = regexp.MustCompile(`^#\s*STACKS:\s*(.+?)\s*$`)
	idleRE   = regexp.MustCompile(`^#\s*IDLE:\s*(.+?)\s*$`)
	// The rest of an IDLE line may explain it.
	idleLeafRE = regexp.MustCompile(`^[\w.-]+\.py:\w+$`)
)

// loadOracle reads a script's annotations.
func loadOracle(path string) (*oracle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o := &oracle{file: filepath.Base(path), funcs: map[string]*pyFunc{}, idle: map[string]bool{}}
	module := &pyFunc{name: "<module>", first: 1, calls: map[int][]string{}}
	o.funcs[module.name] = module
	type block struct {
		indent int
		fn     *pyFunc // nil for a class body
	}
	var blocks []block
	inString := false
	decorated := 0 // line of the pending decorators
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		module.last = n
		quotes := strings.Count(line, `"""`) + strings.Count(line, `'''`)
		if inString {
			if quotes%2 == 1 {
				inString = false
			}
			continue
		}
		if quotes%2 == 1 {
			inString = true
		}
		code := strings.TrimSpace(line)
		if m := stacksRE.FindStringSubmatch(code); m != nil {
			if o.stacks != nil {
				return nil, fmt.Errorf("%s:%d: a second STACKS line", path, n)
			}
			re, err := regexp.Compile(`^(?:` + m[1] + `)$`)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: STACKS: %v", path, n, err)
			}
			o.stacks = re
			continue
		}
		if m := idleRE.FindStringSubmatch(code); m != nil {
			for _, f := range strings.Fields(m[1]) {
				if idleLeafRE.MatchString(f) {
					o.idle[f] = true
				}
			}
			continue
		}
		if code == "" || strings.HasPrefix(code, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		for len(blocks) > 0 && blocks[len(blocks)-1].indent >= indent {
			blocks = blocks[:len(blocks)-1]
		}
		for _, b := range blocks {
			if b.fn != nil {
				b.fn.last = n
			}
		}
		// A decorated function's first line, which its frames may
		// report, is its first decorator's.
		if strings.HasPrefix(code, "@") {
			if decorated == 0 {
				decorated = n
			}
			continue
		}
		first := n
		if decorated != 0 {
			first, decorated = decorated, 0
		}
		if m := defRE.FindStringSubmatch(line); m != nil {
			fn := &pyFunc{name: m[1], first: first, last: n, calls: map[int][]string{}}
			if o.funcs[fn.name] != nil {
				return nil, fmt.Errorf("%s:%d: a second function named %s (the oracle needs unique names)", path, n, fn.name)
			}
			o.funcs[fn.name] = fn
			if fl := flagsRE.FindStringSubmatch(line); fl != nil {
				for _, w := range strings.Fields(fl[1]) {
					fn.entry = fn.entry || w == "entry"
					fn.idle = fn.idle || w == "idle"
				}
			}
			blocks = append(blocks, block{indent, fn})
			continue
		}
		if classRE.MatchString(line) {
			blocks = append(blocks, block{indent, nil})
			continue
		}
		m := callsRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		owner := module
		if len(blocks) > 0 {
			owner = blocks[len(blocks)-1].fn
			if owner == nil {
				return nil, fmt.Errorf("%s:%d: a call annotation in a class body", path, n)
			}
		}
		owner.calls[n] = strings.FieldsFunc(m[1], func(r rune) bool { return r == ' ' || r == ',' })
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, fn := range o.funcs {
		for ln, callees := range fn.calls {
			for _, c := range callees {
				if c != "*" && o.funcs[c] == nil {
					return nil, fmt.Errorf("%s:%d: %s calls %s, which the script does not define", path, ln, fn.name, c)
				}
			}
		}
	}
	return o, nil
}

// baseName is a function's own name: Python 3.11+ report qualified names
// (Shape.area, main.<locals>.<genexpr>) where older ones report area.
func baseName(fn string) string {
	if i := strings.LastIndexByte(fn, '.'); i >= 0 && i < len(fn)-1 {
		return fn[i+1:]
	}
	return fn
}

func (o *oracle) mine(f frame) bool {
	return f.file != "" && filepath.Base(f.file) == o.file
}

// calls reports whether the script frame f sits on a line that calls
// callee ("*" for code in other files).
func (o *oracle) calls(f frame, callee string) bool {
	fn := o.funcs[baseName(f.fn)]
	if fn == nil {
		return false
	}
	for _, c := range fn.calls[f.line] {
		if c == callee {
			return true
		}
	}
	return false
}

// check judges a stack, root first: possible says whether the target can
// have it, idle whether it is an idle thread's.
func (o *oracle) check(frames []frame) (possible, idle bool) {
	if len(frames) == 0 {
		return false, false
	}
	possible = true
	names := make([]string, 0, len(frames))
	for i, f := range frames {
		if !o.mine(f) {
			if i > 0 && o.mine(frames[i-1]) && !o.calls(frames[i-1], "*") {
				possible = false
			}
			if i == 0 || o.mine(frames[i-1]) {
				names = append(names, "*")
			}
			continue
		}
		name := baseName(f.fn)
		names = append(names, name)
		fn := o.funcs[name]
		if fn == nil || f.line < fn.first || f.line > fn.last {
			possible = false
			continue
		}
		idle = idle || fn.idle
		switch {
		case i == 0:
			possible = possible && fn.name == "<module>"
		case !o.mine(frames[i-1]):
			possible = possible && fn.entry
		default:
			possible = possible && o.calls(frames[i-1], name)
		}
	}
	if o.stacks != nil && !o.stacks.MatchString(strings.Join(names, ";")) {
		possible = false
	}
	if leaf := frames[len(frames)-1]; !o.mine(leaf) && o.idle[filepath.Base(leaf.file)+":"+baseName(leaf.fn)] {
		idle = true
	}
	return possible, idle
}

// lineless reports whether a frame of the script has no line (line 0), a
// defect of its own, which check counts as impossible too.
func (o *oracle) lineless(frames []frame) bool {
	for _, f := range frames {
		if o.mine(f) && f.line == 0 {
			return true
		}
	}
	return false
}
