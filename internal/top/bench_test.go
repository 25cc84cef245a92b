package top

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/sampler/samplertest"
	"github.com/pyprof/pyprof/pyspy"
)

// BenchmarkTopAdd measures counting one sample into top's statistics once
// every row in it exists.
func BenchmarkTopAdd(b *testing.B) {
	samples := samplertest.SteadySamples()
	s := NewStats(10 * time.Millisecond)
	for _, smp := range samples {
		s.Add(smp)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Add(samples[i%len(samples)])
	}
}

// refAdd counts smp's stacks into s's rows as Add did before it cached
// rows by Function pointer: every frame looked up by name, file and line.
func refAdd(s *Stats, smp sampler.Sample) {
	for _, t := range smp.Threads {
		if s.GILOnly && !t.OwnsGIL || !s.Idle && !t.Active || len(t.Frames) == 0 {
			continue
		}
		s.window++
		s.all++
		for _, lines := range []bool{false, true} {
			m := s.byFunc
			if lines {
				m = s.byLine
			}
			seen := map[key]bool{}
			for i, f := range t.Frames {
				k := key{name: f.Name, file: f.Filename, line: f.FirstLine}
				if lines {
					k.line = f.Line
				}
				c := row(m, k)
				if i == 0 {
					c.own++
					c.ownAll++
				}
				if !seen[k] {
					seen[k] = true
					c.total++
					c.totalAll++
				}
			}
		}
	}
}

// TestAddMatchesReference: caching rows by Function pointer changes no
// row, across windows and resets, for Functions of equal contents at
// different addresses (two processes), and when the caches overflow.
func TestAddMatchesReference(t *testing.T) {
	samples := samplertest.SteadySamples()
	// A second process: the same functions, Functions of its own.
	copies := map[*pyspy.Function]*pyspy.Function{}
	for _, smp := range samples[:4] {
		smp.Pid = 4343
		smp.Threads = append([]sampler.Thread(nil), smp.Threads...)
		for ti, th := range smp.Threads {
			frames := append([]pyspy.Frame(nil), th.Frames...)
			for i, f := range frames {
				if copies[f.Function] == nil {
					fn := *f.Function
					copies[f.Function] = &fn
				}
				frames[i].Function = copies[f.Function]
			}
			smp.Threads[ti].Frames = frames
		}
		samples = append(samples, smp)
	}
	// More Functions than the caches hold, for a few rows.
	var many []pyspy.Frame
	for len(many) < maxCached+100 {
		fn := &pyspy.Function{Name: fmt.Sprint("gen", len(many)%300), Filename: "<string>", FirstLine: 1}
		many = append(many, pyspy.Frame{Function: fn, Line: 1 + len(many)%7})
	}
	for i := 0; i < len(many); i += 4000 {
		samples = append(samples, sampler.Sample{Pid: 9, Threads: []sampler.Thread{{Active: true, Frames: many[i:min(i+4000, len(many))]}}})
	}
	samples = append(samples, samples[:12]...)

	got, want := NewStats(10*time.Millisecond), NewStats(10*time.Millisecond)
	check := func(when string) {
		t.Helper()
		for _, lines := range []bool{false, true} {
			for by := ByOwn; by <= ByTotalTime; by++ {
				g, w := got.Rows(by, lines), want.Rows(by, lines)
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("%s, lines %v, sort %v: %d rows differ from the reference's %d", when, lines, by, len(g), len(w))
				}
			}
		}
	}
	for i, smp := range samples {
		got.Add(smp)
		refAdd(want, smp)
		if i%5 == 4 {
			check(fmt.Sprintf("sample %d", i))
			got.EndWindow()
			want.EndWindow()
		}
		if i == 15 {
			got.Reset()
			want.Reset()
		}
	}
	check("the end")
	// The rows cached just before a reset are gone with it.
	got.Reset()
	want.Reset()
	for _, smp := range samples[:12] {
		got.Add(smp)
		refAdd(want, smp)
	}
	check("after a reset")
}

// TestTopAddAllocs: once its rows exist, a sample is counted without
// allocating.
func TestTopAddAllocs(t *testing.T) {
	samples := samplertest.SteadySamples()
	s := NewStats(10 * time.Millisecond)
	for _, smp := range samples {
		s.Add(smp)
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		s.Add(samples[i%len(samples)])
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per sample, want 0", allocs)
	}
}
