package profile

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	pprof "github.com/google/pprof/profile"

	"github.com/pyprof/pyprof/flamegraph"
)

// FlameGraph converts the profile to the flamegraph package's input. The
// stacks share their frame indexes with p.
func (p *Profile) FlameGraph() *flamegraph.Profile {
	fg := &flamegraph.Profile{
		Frames:  make([]flamegraph.Frame, len(p.Frames)),
		Stacks:  make([]flamegraph.Stack, len(p.Stacks)),
		Command: p.Command, Pids: p.Pids, Duration: p.Duration, Rate: p.Rate,
		Rounds: p.Rounds, Errors: p.Errors, Missed: p.Missed,
	}
	for i, f := range p.Frames {
		fg.Frames[i] = flamegraph.Frame{Kind: flameKinds[f.Kind], Name: f.Name, File: f.File, Line: f.Line, Path: f.Path}
	}
	for i, s := range p.Stacks {
		fg.Stacks[i] = flamegraph.Stack{Frames: s.Frames, Count: s.Count}
	}
	return fg
}

var flameKinds = [...]flamegraph.Kind{Python: flamegraph.Python, Process: flamegraph.Process, Thread: flamegraph.Thread, Greenlet: flamegraph.Greenlet}

// WriteFlameGraph writes the profile as an SVG flame graph with the
// default options.
func (p *Profile) WriteFlameGraph(w io.Writer) error {
	return flamegraph.Write(w, p.FlameGraph(), flamegraph.Options{})
}

// WriteCollapsed writes CollapsedLines.
func (p *Profile) WriteCollapsed(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, l := range p.CollapsedLines() {
		bw.WriteString(l)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ToPprof converts the profile to pprof's model: sample types samples/count
// and count × interval, with pid, tid and thread labels on each sample.
// The time is cpu/nanoseconds when only running threads were sampled, and
// wall/nanoseconds with idle ones (Idle), as Go's CPU profiles and
// Pyroscope's process_cpu and wall profile types name them; the count
// comes first, as profile.proto's convention asks.
//
// Functions carry their full file names whether or not the other outputs
// shorten them: pprof opens the file for -list, -weblist and -disasm, and
// a shortened name ("gunicorn/workers/sync.py") would only be found with
// -source_path, while pprof's own views show file names only when asked
// (-lines), so the full ones cost nothing by default. (py-spy has no
// pprof output to compare with.)
func (p *Profile) ToPprof() (*pprof.Profile, error) {
	period := p.Interval.Nanoseconds()
	if period <= 0 {
		return nil, fmt.Errorf("profile has no sampling interval")
	}
	time := "cpu"
	if p.Idle {
		time = "wall"
	}
	out := &pprof.Profile{
		SampleType: []*pprof.ValueType{
			{Type: "samples", Unit: "count"},
			{Type: time, Unit: "nanoseconds"},
		},
		PeriodType:    &pprof.ValueType{Type: time, Unit: "nanoseconds"},
		Period:        period,
		TimeNanos:     p.Start.UnixNano(),
		DurationNanos: p.Duration.Nanoseconds(),
	}
	if p.Command != "" {
		out.Comments = []string{p.Command}
	}
	type fnKey struct{ name, file string }
	funcs := map[fnKey]*pprof.Function{}
	locs := make([]*pprof.Location, len(p.Frames))
	for i, f := range p.Frames {
		k := fnKey{f.Name, f.FullPath()}
		fn := funcs[k]
		if fn == nil {
			fn = &pprof.Function{ID: uint64(len(out.Function) + 1), Name: pprofName(f), SystemName: f.Name, Filename: f.FullPath(), StartLine: int64(f.FirstLine)}
			funcs[k] = fn
			out.Function = append(out.Function, fn)
		}
		loc := &pprof.Location{ID: uint64(i + 1), Line: []pprof.Line{{Function: fn, Line: int64(f.Line)}}}
		locs[i] = loc
		out.Location = append(out.Location, loc)
	}
	for _, s := range p.Stacks {
		// pprof lists locations leaf first.
		ls := make([]*pprof.Location, len(s.Frames))
		for i, id := range s.Frames {
			ls[len(ls)-1-i] = locs[id]
		}
		sample := &pprof.Sample{
			Location: ls,
			Value:    []int64{s.Count, s.Count * period},
			NumLabel: map[string][]int64{"pid": {int64(s.Pid)}},
		}
		if s.Tid != 0 {
			sample.NumLabel["tid"] = []int64{int64(s.Tid)}
		}
		if s.ThreadName != "" {
			sample.Label = map[string][]string{"thread": {s.ThreadName}}
		}
		out.Sample = append(out.Sample, sample)
	}
	if err := out.CheckValid(); err != nil {
		return nil, fmt.Errorf("build pprof profile: %w", err)
	}
	return out, nil
}

// pprofName is the display name of a function in pprof. pprof shortens
// names for display as if they were C++, which erases names that begin
// with '<' (<module>, <lambda>, <listcomp>) into "<unknown>"; prefixing
// the module, as in "app.<module>", keeps them apart and readable. The
// exact name stays in SystemName.
func pprofName(f Frame) string {
	if f.Kind != Python || !strings.HasPrefix(f.Name, "<") {
		return f.Name
	}
	mod := strings.TrimSuffix(filepath.Base(f.File), ".py")
	if mod == "" || mod == "." {
		return f.Name
	}
	return mod + "." + f.Name
}

// WritePprof writes a gzipped profile.proto.
func (p *Profile) WritePprof(w io.Writer) error {
	pp, err := p.ToPprof()
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	if err := pp.WriteUncompressed(zw); err != nil {
		return err
	}
	// Close flushes the compressed tail; its error is the write's error.
	return zw.Close()
}

// WriteSpeedscope writes speedscope's file format
// (https://www.speedscope.app/file-format-schema.json; the types are in
// speedscope's src/lib/file-format-spec.ts): one "sampled" profile per
// thread, each process's threads together, in pid and thread id order.
//
// With the order of samples kept (Builder.KeepOrder), a profile holds one
// entry per sample in the order the samples were taken, each weighing one
// sampling interval in nanoseconds, so that speedscope's Time Order view
// shows the thread's timeline, as py-spy's files do. Without it, a profile
// holds one entry per distinct stack, weighing its samples together.
//
// Process and thread frames are left out of the stacks: the profile's name
// says where they were sampled. The file is written as it is made, so a
// long recording's millions of entries are never held in memory.
func (p *Profile) WriteSpeedscope(w io.Writer) error {
	if err := p.checkIndexes(); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var err error
	// str writes s as a JSON string, leaving <, > and & alone: HTML
	// escaping would turn "<module>" into "\u003cmodule\u003e".
	var sb bytes.Buffer
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	str := func(s string) {
		sb.Reset()
		if e := enc.Encode(s); e != nil && err == nil {
			err = e
		}
		bw.Write(bytes.TrimSuffix(sb.Bytes(), []byte("\n")))
	}

	bw.WriteString(`{"$schema":"https://www.speedscope.app/file-format-schema.json","exporter":"pyprof",`)
	if p.Command != "" {
		bw.WriteString(`"name":`)
		str(p.Command)
		bw.WriteByte(',')
	}
	bw.WriteString(`"activeProfileIndex":0,"shared":{"frames":[`)
	// Shared frames hold the Python frames only, renumbered.
	index := make([]int, len(p.Frames))
	n := 0
	for i, fr := range p.Frames {
		index[i] = -1
		if fr.Kind != Python {
			continue
		}
		index[i] = n
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		bw.WriteString(`{"name":`)
		str(fr.Name)
		if fr.File != "" {
			bw.WriteString(`,"file":`)
			str(fr.File)
		}
		if fr.Line > 0 {
			bw.WriteString(`,"line":` + strconv.Itoa(fr.Line))
		}
		bw.WriteByte('}')
	}
	bw.WriteString(`]},"profiles":[`)

	// Each stack as speedscope's list of frame indexes, made once.
	stacks := make([][]byte, len(p.Stacks))
	stack := func(i int) []byte {
		if stacks[i] == nil {
			b := []byte{'['}
			for _, id := range p.Stacks[i].Frames {
				if index[id] >= 0 {
					if len(b) > 1 {
						b = append(b, ',')
					}
					b = strconv.AppendInt(b, int64(index[id]), 10)
				}
			}
			stacks[i] = append(b, ']')
		}
		return stacks[i]
	}
	// A sample weighs its interval; a profile that does not say its
	// interval counts samples instead (speedscope ignores weights of 0).
	period, unit := p.Interval.Nanoseconds(), "nanoseconds"
	if period <= 0 {
		period, unit = 1, "none"
	}
	weight := []byte(strconv.FormatInt(period, 10))
	for i, th := range p.speedscopeThreads() {
		if i > 0 {
			bw.WriteByte(',')
		}
		name := fmt.Sprintf("process %d", th.pid)
		if th.tid != 0 {
			name += fmt.Sprintf(" thread %d", th.tid)
		}
		if th.name != "" {
			name += fmt.Sprintf(" (%s)", th.name)
		}
		bw.WriteString(`{"type":"sampled","name":`)
		str(name)
		fmt.Fprintf(bw, `,"unit":%q,"startValue":0,"endValue":%d,"samples":[`, unit, th.samples*period)
		first := true
		th.runs(func(s int, n int64, each bool) {
			for k := int64(0); k < n; k++ {
				if !first {
					bw.WriteByte(',')
				}
				first = false
				bw.Write(stack(s))
				if !each {
					break
				}
			}
		})
		bw.WriteString(`],"weights":[`)
		first = true
		th.runs(func(s int, n int64, each bool) {
			for k := int64(0); k < n; k++ {
				if !first {
					bw.WriteByte(',')
				}
				first = false
				if !each {
					bw.WriteString(strconv.FormatInt(n*period, 10))
					break
				}
				bw.Write(weight)
			}
		})
		bw.WriteString(`]}`)
	}
	bw.WriteString("]}\n")
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// checkIndexes makes sure that every frame a stack names, and every stack
// a timeline names, exists, before a file is written.
func (p *Profile) checkIndexes() error {
	for i, s := range p.Stacks {
		for _, id := range s.Frames {
			if id < 0 || id >= len(p.Frames) {
				return fmt.Errorf("stack %d: frame index %d out of range [0,%d)", i, id, len(p.Frames))
			}
		}
	}
	var err error
	for i := range p.Timelines {
		p.Timelines[i].Runs(func(s int, _ int64) bool {
			if s < 0 || s >= len(p.Stacks) {
				err = fmt.Errorf("thread %d: stack index %d out of range [0,%d)", p.Timelines[i].Tid, s, len(p.Stacks))
			}
			return err == nil
		})
	}
	return err
}

// speedscopeThread is one thread's profile for WriteSpeedscope.
type speedscopeThread struct {
	pid, tid int
	name     string
	samples  int64
	// runs calls f with each run of samples of one stack; each is set
	// when the run stands for n samples in a row, and clear when it is
	// a stack's samples added up, in no particular order.
	runs func(f func(stack int, n int64, each bool))
}

// speedscopeThreads lists the threads of p in pid and thread id order,
// from the timelines when p has them and from the stacks otherwise.
func (p *Profile) speedscopeThreads() []speedscopeThread {
	var out []speedscopeThread
	if p.Timelines != nil {
		for i := range p.Timelines {
			tl := &p.Timelines[i]
			th := speedscopeThread{pid: tl.Pid, tid: tl.Tid, name: tl.Name}
			tl.Runs(func(_ int, n int64) bool { th.samples += n; return true })
			th.runs = func(f func(int, int64, bool)) {
				tl.Runs(func(s int, n int64) bool { f(s, n, true); return true })
			}
			out = append(out, th)
		}
	} else {
		// By thread as the timelines would have it (see threadKey);
		// the name is the one of the thread's newest stack.
		byThread := map[threadKey][]int{} // stack indexes
		var keys []threadKey
		for i, s := range p.Stacks {
			k := threadKey{pid: s.Pid, tid: s.Tid}
			if s.Tid == 0 {
				k.name = s.ThreadName
			}
			if byThread[k] == nil {
				keys = append(keys, k)
			}
			byThread[k] = append(byThread[k], i)
		}
		for _, k := range keys {
			stacks := byThread[k]
			th := speedscopeThread{pid: k.pid, tid: k.tid, name: p.Stacks[stacks[len(stacks)-1]].ThreadName}
			for _, i := range stacks {
				th.samples += p.Stacks[i].Count
			}
			th.runs = func(f func(int, int64, bool)) {
				for _, i := range stacks {
					f(i, p.Stacks[i].Count, false)
				}
			}
			out = append(out, th)
		}
	}
	slices.SortStableFunc(out, func(a, b speedscopeThread) int {
		return cmp.Or(cmp.Compare(a.pid, b.pid), cmp.Compare(a.tid, b.tid), cmp.Compare(a.name, b.name))
	})
	return out
}
