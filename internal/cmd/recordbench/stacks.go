package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// stack is one recorded stack, root first, with the number of samples
// that recorded it.
type stack struct {
	frames []frame
	count  int
}

// collapsedFrame is "function (file:line)", as pyprof's collapsed output
// and py-spy's raw output write frames; pyprof writes "function (file)"
// when it has no line, which is line 0 here.
var collapsedFrame = regexp.MustCompile(`^(.*) \(([^():]*)(?::(\d+))?\)$`)

// parseCollapsed reads "frame;frame;...;leaf COUNT" lines, root first (pyprof
// -f collapsed, py-spy --format raw). A leading process frame, which both
// add when following subprocesses ("process PID: ..." and `process
// PID:"..."`), is dropped.
func parseCollapsed(path string) ([]stack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []stack
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r\n")
		if line == "" {
			continue
		}
		// A sample without frames is " COUNT".
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("%s: no count in %q", path, line)
		}
		n, err := strconv.Atoi(line[i+1:])
		if err != nil {
			return nil, fmt.Errorf("%s: bad count in %q", path, line)
		}
		var parts []string
		if i > 0 {
			parts = strings.Split(line[:i], ";")
		}
		if len(parts) > 0 && strings.HasPrefix(parts[0], "process ") {
			parts = parts[1:]
		}
		st := stack{count: n, frames: make([]frame, 0, len(parts))}
		for _, p := range parts {
			m := collapsedFrame.FindStringSubmatch(p)
			if m == nil {
				// Not a Python frame: judged as code in another file.
				st.frames = append(st.frames, frame{fn: p})
				continue
			}
			ln, _ := strconv.Atoi(m[3])
			st.frames = append(st.frames, frame{fn: m[1], file: m[2], line: ln})
		}
		out = append(out, st)
	}
	return out, sc.Err()
}

// parseAustin reads austin's text output: one sample a line,
// "P<pid>;T<iid>:<tid>;file:function:line;... METRIC", root first, after
// "# key: value" metadata lines. A sample austin itself found invalid (an
// ":INVALID:" frame) is counted, not returned.
func parseAustin(path string) (stacks []stack, invalid int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "P") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i >= 0 {
			line = line[:i]
		}
		parts := strings.Split(line, ";")
		if len(parts) < 2 || !strings.HasPrefix(parts[1], "T") {
			return nil, 0, fmt.Errorf("%s: not a sample: %q", path, line)
		}
		if strings.Contains(line, ":INVALID:") {
			invalid++
			continue
		}
		st := stack{count: 1, frames: make([]frame, 0, len(parts)-2)}
		for _, p := range parts[2:] {
			fr := frame{fn: p}
			if j := strings.LastIndexByte(p, ':'); j > 0 {
				if ln, err := strconv.Atoi(p[j+1:]); err == nil {
					if k := strings.LastIndexByte(p[:j], ':'); k >= 0 {
						fr = frame{file: p[:k], fn: p[k+1 : j], line: ln}
					}
				}
			}
			st.frames = append(st.frames, fr)
		}
		stacks = append(stacks, st)
	}
	return stacks, invalid, sc.Err()
}
