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
