package aggregate

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/pyfile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/sampler/samplertest"
	"github.com/pyprof/pyprof/pyspy"
)

var addSampleCases = []struct {
	name string
	o    Options
}{
	{"default", Options{KeepThreads: true}},
	{"threads+subprocesses", Options{Threads: true, Processes: true, KeepThreads: true}},
	{"nolineno", Options{NoLineNumbers: true, Threads: true, Processes: true, KeepThreads: true}},
	{"function", Options{FirstLines: true, Processes: true, KeepThreads: true}},
	{"full filenames", Options{FullFilenames: true, KeepThreads: true}},
}

// referenceAdd is Add as it was written before it cached anything:
// the labels built afresh and every frame passed by value.
func referenceAdd(b *profile.Builder, smp sampler.Sample, o *Options) {
	var frames []profile.Frame
	for _, t := range smp.Threads {
		frames = frames[:0]
		if o.Processes {
			frames = append(frames, profile.Frame{Kind: profile.Process, Name: fmt.Sprintf("process %d: %s", smp.Pid, smp.Cmdline)})
		}
		name := t.Name
		if !t.HasName {
			name = fmt.Sprintf("%#x", t.ID)
		}
		if o.Threads {
			frames = append(frames, profile.Frame{Kind: profile.Thread, Name: fmt.Sprintf("thread %d: %s", t.NativeID, name)})
		}
		if t.Greenlet != "" {
			frames = append(frames, profile.Frame{Kind: profile.Greenlet, Name: "greenlet " + t.Greenlet})
		}
		for i := len(t.Frames) - 1; i >= 0; i-- {
			f := t.Frames[i]
			line := f.Line
			switch {
			case o.NoLineNumbers:
				line = 0
			case o.FirstLines:
				line = f.FirstLine
			}
			file := f.Filename
			if !o.FullFilenames {
				file = pyfile.Short(file)
			}
			frames = append(frames, profile.Frame{Kind: profile.Python, Name: f.Name, File: file, Path: f.Filename, Line: line, FirstLine: f.FirstLine})
		}
		b.Add(frames, 1, smp.Pid, t.NativeID, name)
	}
}

// TestAddSampleMatchesReference: the caches change nothing in the profile,
// not even the order of frames and stacks, also when a pid comes back
// with another command line, a thread without a name has ident 0, and the
// Function cache overflows and is cleared.
func TestAddSampleMatchesReference(t *testing.T) {
	samples := samplertest.SteadySamples()
	other := samples[1]
	other.Cmdline = "python -c pass"
	other.Threads = append([]sampler.Thread(nil), other.Threads...)
	other.Threads[3].ID = 0
	samples = append(samples, other, samples[0])
	// As many distinct Functions as the cache holds, and more, with the
	// names and lines of the functions seen before.
	var many []pyspy.Frame
	for _, th := range samples[0].Threads {
		for _, f := range th.Frames {
			fn := *f.Function
			many = append(many, pyspy.Frame{Function: &fn, Line: f.Line})
		}
	}
	for len(many) < maxFuncs+100 {
		fn := &pyspy.Function{Name: fmt.Sprint("gen", len(many)%500), Filename: "<string>", FirstLine: 1}
		many = append(many, pyspy.Frame{Function: fn, Line: 1 + len(many)%3})
	}
	for i := 0; i < len(many); i += 5000 {
		smp := samples[0]
		smp.Threads = []sampler.Thread{{NativeID: 9, Name: "gen", HasName: true, Frames: many[i:min(i+5000, len(many))]}}
		samples = append(samples, smp)
	}
	// Parked greenlets: the same stable frames handed over round after
	// round (Add's cache of their frame IDs), under another greenlet,
	// thread name or command line, and more of them than the cache holds.
	parked := samples[0]
	parked.Threads = nil
	for i, th := range samples[0].Threads {
		th.Greenlet, th.Stable = fmt.Sprint("Greenlet-", i%2), true
		parked.Threads = append(parked.Threads, th)
	}
	renamed := parked
	renamed.Threads = append([]sampler.Thread(nil), parked.Threads...)
	renamed.Threads[0].Name, renamed.Threads[0].HasName, renamed.Threads[1].Greenlet = "renamed", true, "0x7f00"
	otherCmd := parked
	otherCmd.Cmdline = "gunicorn: worker"
	// Fewer frames from the same first one: a greenlet that returned
	// some (the sampler never hands those, but the cache must not care).
	shorter := parked
	shorter.Threads = append([]sampler.Thread(nil), parked.Threads...)
	shorter.Threads[0].Frames = shorter.Threads[0].Frames[:3]
	otherPid := parked
	otherPid.Pid++
	samples = append(samples, parked, parked, renamed, parked, otherCmd, parked, shorter, otherPid)
	for i := 0; i < maxStable+10; i += 1000 {
		smp := parked
		smp.Threads = nil
		for j := i; j < min(i+1000, maxStable+10); j++ {
			smp.Threads = append(smp.Threads, sampler.Thread{NativeID: 9, Greenlet: fmt.Sprint(j), Stable: true, Frames: many[j%len(many) : j%len(many)+1]})
		}
		samples = append(samples, smp, smp)
	}
	samples = append(samples, parked)
	samples = append(samples, samples[:8]...)
	for _, tc := range addSampleCases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := profile.NewBuilder(), profile.NewBuilder()
			a := New(got, tc.o)
			for _, smp := range samples {
				referenceAdd(want, smp, &tc.o)
				a.Add(smp)
			}
			w, g := want.Profile(), got.Profile()
			if !reflect.DeepEqual(w.Frames, g.Frames) {
				t.Errorf("frames differ (%d frames, want %d)", len(g.Frames), len(w.Frames))
			}
			if !reflect.DeepEqual(w.Stacks, g.Stacks) {
				t.Errorf("stacks differ (%d stacks, want %d)", len(g.Stacks), len(w.Stacks))
			}
		})
	}
}

// TestAddSampleAllocs: once its stacks have been seen, a sample is
// aggregated without allocating.
func TestAddSampleAllocs(t *testing.T) {
	samples := samplertest.SteadySamples()
	for _, tc := range addSampleCases {
		t.Run(tc.name, func(t *testing.T) {
			a := New(profile.NewBuilder(), tc.o)
			for _, smp := range samples {
				a.Add(smp)
			}
			i := 0
			allocs := testing.AllocsPerRun(100, func() {
				a.Add(samples[i%len(samples)])
				i++
			})
			if allocs != 0 {
				t.Errorf("%v allocations per sample, want 0", allocs)
			}
		})
	}
}

// BenchmarkAddSample measures aggregating one sample into the record
// profile once every stack in it has been seen.
func BenchmarkAddSample(b *testing.B) {
	samples := samplertest.SteadySamples()
	for _, tc := range addSampleCases {
		b.Run(tc.name, func(b *testing.B) {
			a := New(profile.NewBuilder(), tc.o)
			for _, smp := range samples {
				a.Add(smp)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				a.Add(samples[i%len(samples)])
			}
		})
	}
}
