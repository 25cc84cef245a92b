package profile

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	pprof "github.com/google/pprof/profile"
)

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
// and cpu/nanoseconds (wall time: count × interval), with pid, tid and
// thread labels on each sample.
func (p *Profile) ToPprof() (*pprof.Profile, error) {
	period := p.Interval.Nanoseconds()
	if period <= 0 {
		return nil, fmt.Errorf("profile has no sampling interval")
	}
	out := &pprof.Profile{
		SampleType: []*pprof.ValueType{
			{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"},
		},
		PeriodType:    &pprof.ValueType{Type: "cpu", Unit: "nanoseconds"},
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
		k := fnKey{f.Name, f.File}
		fn := funcs[k]
		if fn == nil {
			fn = &pprof.Function{ID: uint64(len(out.Function) + 1), Name: pprofName(f), SystemName: f.Name, Filename: f.File, StartLine: int64(f.FirstLine)}
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

// speedscope's file format (https://www.speedscope.app/file-format-schema.json).
type speedscopeFile struct {
	Schema             string              `json:"$schema"`
	Shared             speedscopeShared    `json:"shared"`
	Profiles           []speedscopeProfile `json:"profiles"`
	Name               string              `json:"name,omitempty"`
	ActiveProfileIndex int                 `json:"activeProfileIndex"`
	Exporter           string              `json:"exporter"`
}

type speedscopeShared struct {
	Frames []speedscopeFrame `json:"frames"`
}

type speedscopeFrame struct {
	Name string `json:"name"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

type speedscopeProfile struct {
	Type       string  `json:"type"`
	Name       string  `json:"name"`
	Unit       string  `json:"unit"`
	StartValue int64   `json:"startValue"`
	EndValue   int64   `json:"endValue"`
	Samples    [][]int `json:"samples"`
	Weights    []int64 `json:"weights"`
}

// WriteSpeedscope writes speedscope's "sampled" format with one profile per
// process and thread; weights are wall time in nanoseconds. Process and
// thread frames are left out of the stacks, since the profile's name says
// where they were sampled.
func (p *Profile) WriteSpeedscope(w io.Writer) error {
	f := speedscopeFile{
		Schema:   "https://www.speedscope.app/file-format-schema.json",
		Name:     p.Command,
		Exporter: "pyprof",
		Shared:   speedscopeShared{Frames: []speedscopeFrame{}},
		Profiles: []speedscopeProfile{},
	}
	// Shared frames hold the Python frames only, renumbered.
	index := make([]int, len(p.Frames))
	for i, fr := range p.Frames {
		index[i] = -1
		if fr.Kind == Python {
			index[i] = len(f.Shared.Frames)
			f.Shared.Frames = append(f.Shared.Frames, speedscopeFrame{Name: fr.Name, File: fr.File, Line: fr.Line})
		}
	}
	type key struct {
		pid, tid int
		name     string
	}
	byThread := map[key]*speedscopeProfile{}
	var keys []key
	period := p.Interval.Nanoseconds()
	for _, s := range p.Stacks {
		k := key{s.Pid, s.Tid, s.ThreadName}
		prof := byThread[k]
		if prof == nil {
			name := fmt.Sprintf("process %d", s.Pid)
			if s.Tid != 0 {
				name += fmt.Sprintf(" thread %d", s.Tid)
			}
			if s.ThreadName != "" {
				name += fmt.Sprintf(" (%s)", s.ThreadName)
			}
			prof = &speedscopeProfile{Type: "sampled", Name: name, Unit: "nanoseconds", Samples: [][]int{}, Weights: []int64{}}
			byThread[k] = prof
			keys = append(keys, k)
		}
		stack := []int{}
		for _, id := range s.Frames {
			if index[id] >= 0 {
				stack = append(stack, index[id])
			}
		}
		prof.Samples = append(prof.Samples, stack)
		prof.Weights = append(prof.Weights, s.Count*period)
		prof.EndValue += s.Count * period
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.pid != b.pid {
			return a.pid < b.pid
		}
		return a.tid < b.tid
	})
	for _, k := range keys {
		f.Profiles = append(f.Profiles, *byThread[k])
	}
	enc := json.NewEncoder(w)
	return enc.Encode(&f)
}
