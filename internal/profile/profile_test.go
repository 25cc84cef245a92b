package profile

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	pprof "github.com/google/pprof/profile"
)

func py(name, file string, line int) Frame {
	return Frame{Kind: Python, Name: name, File: file, Line: line, FirstLine: line - 1}
}

func sample() *Profile {
	b := NewBuilder()
	proc := ProcessFrame(42, "python app.py")
	main := py("main", "/app/app.py", 10)
	a := py("handle", "/app/app.py", 20)
	tok := py("<lambda>", "/app/tok.py", 5)
	semi := py("a;b", "/app/x.py", 1)
	b.Add([]Frame{proc, main, a}, 3, 42, 43, "MainThread")
	b.Add([]Frame{proc, main, a}, 2, 42, 43, "MainThread")
	b.Add([]Frame{proc, main, tok}, 1, 42, 44, "worker")
	b.Add([]Frame{proc, main, semi}, 1, 42, 44, "worker")
	m := b.Meta()
	m.Command, m.Pids = "python app.py", []int{42}
	m.Interval, m.Rate = 10*time.Millisecond, 100
	m.Start, m.Duration = time.Unix(1700000000, 0), 2*time.Second
	return b.Profile()
}

func TestBuilderAggregates(t *testing.T) {
	p := sample()
	if got := len(p.Stacks); got != 3 {
		t.Errorf("%d unique stacks, want 3", got)
	}
	if got := p.Total(); got != 7 {
		t.Errorf("total %d, want 7", got)
	}
	if got := len(p.Frames); got != 5 {
		t.Errorf("%d frames, want 5 (interned)", got)
	}
}

func TestCollapsed(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteCollapsed(&b); err != nil {
		t.Fatal(err)
	}
	want := `process 42: python app.py;main (/app/app.py:10);<lambda> (/app/tok.py:5) 1
process 42: python app.py;main (/app/app.py:10);a:b (/app/x.py:1) 1
process 42: python app.py;main (/app/app.py:10);handle (/app/app.py:20) 5
`
	if b.String() != want {
		t.Errorf("collapsed:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFrameString(t *testing.T) {
	for _, tc := range []struct {
		f    Frame
		want string
	}{
		{py("f", "x.py", 3), "f (x.py:3)"},
		{Frame{Kind: Python, Name: "f", File: "x.py"}, "f (x.py)"},
		{ProcessFrame(7, "gunicorn: worker"), "process 7: gunicorn: worker"},
		{ThreadFrame(8, "MainThread"), "thread 8: MainThread"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestPprof(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WritePprof(&b); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("not gzipped: %v", err)
	}
	io.Copy(io.Discard, zr)
	p, err := pprof.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if p.SampleType[0].Type != "samples" || p.SampleType[1].Type != "cpu" || p.SampleType[1].Unit != "nanoseconds" || p.Period != 1e7 {
		t.Errorf("sample types %v period %d", p.SampleType, p.Period)
	}
	var count, cpu int64
	names := map[string]bool{}
	for _, s := range p.Sample {
		count += s.Value[0]
		cpu += s.Value[1]
		if s.NumLabel["pid"][0] != 42 || s.Label["thread"] == nil {
			t.Errorf("labels %v %v", s.NumLabel, s.Label)
		}
		leaf := s.Location[0].Line[0]
		names[leaf.Function.Name] = true
		if leaf.Line == 0 || leaf.Function.Filename == "" {
			t.Errorf("leaf without file or line: %+v", leaf)
		}
	}
	if count != 7 || cpu != 7e7 {
		t.Errorf("count %d cpu %d", count, cpu)
	}
	for _, n := range []string{"handle", "tok.<lambda>", "a;b"} {
		if !names[n] {
			t.Errorf("no leaf function %q in %v", n, names)
		}
	}
}

func TestSpeedscope(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteSpeedscope(&b); err != nil {
		t.Fatal(err)
	}
	var f speedscopeFile
	if err := json.Unmarshal(b.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	if f.Schema != "https://www.speedscope.app/file-format-schema.json" || len(f.Profiles) != 2 {
		t.Fatalf("schema %q, %d profiles", f.Schema, len(f.Profiles))
	}
	for _, p := range f.Profiles {
		if p.Type != "sampled" || len(p.Samples) != len(p.Weights) || !strings.HasPrefix(p.Name, "process 42 thread") {
			t.Errorf("profile %+v", p)
		}
		var sum int64
		for i, s := range p.Samples {
			sum += p.Weights[i]
			for _, id := range s {
				if id < 0 || id >= len(f.Shared.Frames) {
					t.Errorf("frame index %d out of range", id)
				}
			}
			if len(s) != 2 {
				t.Errorf("stack %v should hold the 2 Python frames only", s)
			}
		}
		if sum != p.EndValue {
			t.Errorf("weights sum %d, end %d", sum, p.EndValue)
		}
	}
}

// steadyStacks returns four stacks of 50 frames, root first, that share
// most of their frames, with process and thread frames at the root.
func steadyStacks() [][]Frame {
	var out [][]Frame
	for ti := range 4 {
		s := []Frame{ProcessFrame(4242, "/usr/bin/python3 app.py"), ThreadFrame(4242+ti, "worker")}
		for d := range 48 {
			s = append(s, py("module.Class.method", "/srv/app/venv/lib/python3.11/site-packages/pkg/mod.py", 10+d+ti*(d/40)))
		}
		out = append(out, s)
	}
	return out
}

// TestAddAllocs: adding a stack seen before allocates nothing.
func TestAddAllocs(t *testing.T) {
	b := NewBuilder()
	stacks := steadyStacks()
	for i, s := range stacks {
		b.Add(s, 1, 4242, 4242+i, "worker")
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		b.Add(stacks[i%len(stacks)], 1, 4242, 4242+i%len(stacks), "worker")
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per stack, want 0", allocs)
	}
	if got := len(b.Profile().Stacks); got != len(stacks) {
		t.Errorf("%d stacks, want %d", got, len(stacks))
	}
}

// TestStackKey: stacks that differ only in where they were sampled, or
// whose thread name could be read as frame IDs, stay apart.
func TestStackKey(t *testing.T) {
	b := NewBuilder()
	f := []Frame{py("a", "a.py", 1), py("b", "b.py", 2)}
	b.Add(f, 1, 1, 2, "")
	b.Add(f, 1, 1, 2, "x")
	b.Add(f, 1, 2, 1, "")
	b.Add(f, 1, -1, 0, "")
	b.Add(f[:1], 1, 1, 2, "\x00")
	b.Add(f[:1], 1, 1, 2, "")
	b.Add(f, 1, 1, 2, "")
	p := b.Profile()
	if len(p.Stacks) != 6 || p.Stacks[0].Count != 2 {
		t.Errorf("stacks %+v", p.Stacks)
	}
}

func BenchmarkAdd(b *testing.B) {
	pb := NewBuilder()
	stacks := steadyStacks()
	for i, s := range stacks {
		pb.Add(s, 1, 4242, 4242+i, "worker")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pb.Add(stacks[i%len(stacks)], 1, 4242, 4242+i%len(stacks), "worker")
	}
}
