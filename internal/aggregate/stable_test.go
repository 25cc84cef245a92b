package aggregate

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/pyprof/pyprof/internal/profile"
	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/internal/sampler/samplertest"
	"github.com/pyprof/pyprof/pyspy"
)

// stableSamples are the steady samples with every stack marked stable
// (their frames are never written again), and then more distinct stable
// stacks than the cache holds, seen twice.
func stableSamples() []sampler.Sample {
	var out []sampler.Sample
	for _, smp := range samplertest.SteadySamples() {
		smp.Threads = append([]sampler.Thread(nil), smp.Threads...)
		for i := range smp.Threads {
			smp.Threads[i].Stable = true
		}
		out = append(out, smp)
	}
	fn := &pyspy.Function{Name: "sleep", Filename: "/usr/lib/python3.11/asyncio/tasks.py", FirstLine: 1}
	var many []sampler.Thread
	for i := 0; i < maxStable+100; i++ {
		frames := []pyspy.Frame{{Function: fn, Line: 639}, {Function: &pyspy.Function{Name: fmt.Sprint("task parked-", i%300), Filename: "<asyncio>"}}}
		many = append(many, sampler.Thread{NativeID: 7, Name: "MainThread", HasName: true, Frames: frames, Stable: true})
	}
	for i := 0; i < len(many); i += 1000 {
		smp := out[0]
		smp.Threads = many[i:min(i+1000, len(many))]
		out = append(out, smp, smp)
	}
	return append(out, out[:4]...)
}

// TestStableStacks: the frames kept for stable stacks change nothing in
// the profile, also when the cache overflows and is cleared, and once
// seen a sample of stable stacks costs no allocation.
func TestStableStacks(t *testing.T) {
	samples := stableSamples()
	for _, tc := range addSampleCases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := profile.NewBuilder(), profile.NewBuilder()
			a := New(got, tc.o)
			for _, smp := range samples {
				referenceAdd(want, smp, &tc.o)
				a.Add(smp)
			}
			w, g := want.Profile(), got.Profile()
			if !reflect.DeepEqual(w.Frames, g.Frames) || !reflect.DeepEqual(w.Stacks, g.Stacks) {
				t.Errorf("profiles differ (%d frames, %d stacks; want %d, %d)", len(g.Frames), len(g.Stacks), len(w.Frames), len(w.Stacks))
			}
			last := samples[len(samples)-1]
			if allocs := testing.AllocsPerRun(100, func() { a.Add(last) }); allocs != 0 {
				t.Errorf("%v allocations per sample, want 0", allocs)
			}
			a.Forget(last.Pid)
			if len(a.stable) != 0 {
				t.Errorf("Forget kept %d stable stacks", len(a.stable))
			}
		})
	}
}

// BenchmarkPendingTasks aggregates a sample of 1,000 pending tasks'
// stacks (6 frames each), as record --async --idle hands them: stable,
// or as if each were new.
func BenchmarkPendingTasks(b *testing.B) {
	fns := make([]*pyspy.Function, 6)
	for i := range fns {
		fns[i] = &pyspy.Function{Name: fmt.Sprint("f", i), Filename: "/srv/app.py", FirstLine: i}
	}
	for _, stable := range []bool{false, true} {
		b.Run(fmt.Sprint("stable=", stable), func(b *testing.B) {
			smp := sampler.Sample{Pid: 1, Cmdline: "python app.py"}
			for i := 0; i < 1000; i++ {
				frames := make([]pyspy.Frame, 6)
				for j := range frames {
					frames[j] = pyspy.Frame{Function: fns[j], Line: 10 + j}
				}
				frames[5] = pyspy.Frame{Function: &pyspy.Function{Name: fmt.Sprint("task parked-", i), Filename: "<asyncio>"}}
				smp.Threads = append(smp.Threads, sampler.Thread{NativeID: 1, Name: "MainThread", HasName: true, Frames: frames, Stable: stable})
			}
			a := New(profile.NewBuilder(), Options{})
			a.Add(smp)
			for b.Loop() {
				a.Add(smp)
			}
		})
	}
}
