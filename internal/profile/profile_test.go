package profile

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	pprof "github.com/google/pprof/profile"
	"github.com/pyprof/pyprof/flamegraph"
	"github.com/pyprof/pyprof/internal/profile/speedscopetest"
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

// TestPprofSampleTypes: the time each sample stands for is named CPU time
// when only running threads were sampled and wall time when idle ones
// were too, in the sample types and the period type alike.
func TestPprofSampleTypes(t *testing.T) {
	for _, tc := range []struct {
		idle bool
		want string
	}{
		{false, "cpu"},
		{true, "wall"},
	} {
		p := sample()
		p.Idle = tc.idle
		pp, err := p.ToPprof()
		if err != nil {
			t.Fatal(err)
		}
		got := []string{pp.SampleType[0].Type + "/" + pp.SampleType[0].Unit, pp.SampleType[1].Type + "/" + pp.SampleType[1].Unit, pp.PeriodType.Type + "/" + pp.PeriodType.Unit}
		want := []string{"samples/count", tc.want + "/nanoseconds", tc.want + "/nanoseconds"}
		if !slices.Equal(got, want) {
			t.Errorf("idle %v: types %v, want %v", tc.idle, got, want)
		}
	}
}

// readSpeedscope writes p as speedscope and checks the file's structure:
// speedscopetest.Read's checks, and a profile per thread, each starting at
// 0, with the weights of all of them summing to the profile's samples.
func readSpeedscope(t *testing.T, p *Profile) *speedscopetest.File {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteSpeedscope(&b); err != nil {
		t.Fatal(err)
	}
	unit := "nanoseconds"
	if p.Interval <= 0 {
		unit = "none"
	}
	f := speedscopetest.Read(t, b.Bytes(), unit)
	if f.Exporter != "pyprof" || f.Name != p.Command {
		t.Errorf("header: exporter %q name %q", f.Exporter, f.Name)
	}
	if strings.Contains(b.String(), `\u003c`) {
		t.Errorf("HTML-escaped JSON: %s", b.String())
	}
	threads := map[threadKey]bool{}
	for _, s := range p.Stacks {
		k := threadKey{pid: s.Pid, tid: s.Tid}
		if s.Tid == 0 {
			k.name = s.ThreadName // no OS thread id: told apart by name
		}
		threads[k] = true
	}
	if len(f.Profiles) != len(threads) {
		t.Errorf("%d profiles for %d threads", len(f.Profiles), len(threads))
	}
	var total int64
	for _, pr := range f.Profiles {
		if pr.StartValue != 0 {
			t.Errorf("profile %q: start %d", pr.Name, pr.StartValue)
		}
		for _, w := range pr.Weights {
			total += w
		}
	}
	if want := p.Total() * max(p.Interval.Nanoseconds(), 1); total != want {
		t.Errorf("weights sum to %d, want %d samples × %v", total, p.Total(), p.Interval)
	}
	return f
}

// leaves names each sample of a speedscope profile by its leaf frame.
func leaves(f *speedscopetest.File, profile int) []string {
	var out []string
	for _, s := range f.Profiles[profile].Samples {
		leaf := "-"
		if len(s) > 0 {
			leaf = f.Shared.Frames[s[len(s)-1]].Name
		}
		out = append(out, leaf)
	}
	return out
}

// TestSpeedscopeTimeOrder: with the order kept, each thread's profile has
// one entry per sample, in the order they were taken, and stays so when
// samples are added after a Profile was taken.
func TestSpeedscopeTimeOrder(t *testing.T) {
	b := NewBuilder()
	b.KeepOrder()
	proc := ProcessFrame(42, "python app.py")
	main := py("main", "/app/app.py", 10)
	stack := func(leaf string) []Frame { return []Frame{proc, main, py(leaf, "/app/app.py", 20)} }
	// Two threads interleaved, as rounds give them; a thread with no
	// OS thread id is told apart by its name.
	b.Add(stack("a"), 1, 42, 43, "0x7f01")
	b.Add(stack("x"), 1, 42, 44, "worker")
	b.Add(stack("a"), 1, 42, 43, "MainThread") // named after it started
	b.Add(stack("x"), 2, 42, 44, "worker")
	b.Add(stack("b"), 1, 42, 43, "MainThread")
	b.Add(stack("y"), 1, 42, 0, "0x7f02")
	b.Add(stack("a"), 1, 42, 43, "MainThread")
	b.Add([]Frame{proc}, 1, 42, 44, "worker") // no Python frame (--idle)
	b.Add(stack("z"), 1, 42, 0, "0x7f03")
	m := b.Meta()
	m.Command, m.Interval = "python <app>.py", 10*time.Millisecond
	f := readSpeedscope(t, b.Profile())
	want := []struct {
		name   string
		leaves string
	}{
		{"process 42 (0x7f02)", "y"},
		{"process 42 (0x7f03)", "z"},
		{"process 42 thread 43 (MainThread)", "a a b a"},
		{"process 42 thread 44 (worker)", "x x x -"},
	}
	check := func(f *speedscopetest.File) {
		t.Helper()
		if len(f.Profiles) != len(want) {
			t.Fatalf("%d profiles, want %d", len(f.Profiles), len(want))
		}
		for i, w := range want {
			got := strings.Join(leaves(f, i), " ")
			if f.Profiles[i].Name != w.name || got != w.leaves {
				t.Errorf("profile %d: %q with %q, want %q with %q", i, f.Profiles[i].Name, got, w.name, w.leaves)
			}
		}
	}
	check(f)
	// The open runs were closed by Profile; the order goes on.
	b.Add(stack("b"), 1, 42, 43, "MainThread")
	b.Add(stack("b"), 1, 42, 43, "MainThread")
	want[2].leaves += " b b"
	check(readSpeedscope(t, b.Profile()))
}

// TestSpeedscopeBadIndexes: a profile naming frames or stacks it lacks
// is an error, not a panic or a broken file.
func TestSpeedscopeBadIndexes(t *testing.T) {
	b := NewBuilder()
	b.KeepOrder()
	b.AddStack([]int{b.FrameID(py("f", "a.py", 2)), 7}, 1, 1, 2, "")
	if err := b.Profile().WriteSpeedscope(io.Discard); err == nil || !strings.Contains(err.Error(), "frame index 7") {
		t.Errorf("frame out of range: %v", err)
	}
	p := sample()
	p.Timelines = []Timeline{{Pid: 42, Tid: 43, runs: [][]byte{{9, 1}}}}
	if err := p.WriteSpeedscope(io.Discard); err == nil || !strings.Contains(err.Error(), "stack index 9") {
		t.Errorf("stack out of range: %v", err)
	}
}

// TestSpeedscopeAggregated: without the order, a thread's profile has one
// entry per distinct stack, weighing its samples.
// TestFilenames: outputs show File, shortened or not as the recorder chose,
// while pprof, which opens sources, gets the full Path.
func TestFilenames(t *testing.T) {
	b := NewBuilder()
	lib := Frame{Kind: Python, Name: "SyncWorker.run", File: "gunicorn/workers/sync.py", Path: "/usr/lib/python3/dist-packages/gunicorn/workers/sync.py", Line: 125, FirstLine: 120}
	app := Frame{Kind: Python, Name: "handle", File: "/srv/app/webapp.py", Line: 12, FirstLine: 10}
	b.Add([]Frame{lib, app}, 2, 7, 8, "w")
	b.Meta().Interval = 10 * time.Millisecond
	p := b.Profile()
	if got := p.CollapsedLines(); len(got) != 1 || got[0] != "SyncWorker.run (gunicorn/workers/sync.py:125);handle (/srv/app/webapp.py:12) 2" {
		t.Errorf("collapsed %q", got)
	}
	f := readSpeedscope(t, p)
	if f.Shared.Frames[0].File != "gunicorn/workers/sync.py" {
		t.Errorf("speedscope file %q", f.Shared.Frames[0].File)
	}
	pp, err := p.ToPprof()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, fn := range pp.Function {
		files[fn.Filename] = true
	}
	if !files["/usr/lib/python3/dist-packages/gunicorn/workers/sync.py"] || !files["/srv/app/webapp.py"] || len(files) != 2 {
		t.Errorf("pprof files %v", files)
	}
}

func TestSpeedscopeAggregated(t *testing.T) {
	p := sample()
	f := readSpeedscope(t, p)
	if len(f.Profiles) != 2 {
		t.Fatalf("%d profiles", len(f.Profiles))
	}
	for _, pr := range f.Profiles {
		if !strings.HasPrefix(pr.Name, "process 42 thread") {
			t.Errorf("profile %q", pr.Name)
		}
		for _, s := range pr.Samples {
			if len(s) != 2 {
				t.Errorf("stack %v should hold the 2 Python frames only", s)
			}
		}
	}
	if got := strings.Join(leaves(f, 0), " "); got != "handle" || f.Profiles[0].Weights[0] != 5e7 {
		t.Errorf("main thread: %q weighing %v", got, f.Profiles[0].Weights)
	}
	// Without an interval, samples are counted.
	p.Interval = 0
	if f := readSpeedscope(t, p); f.Profiles[0].Weights[0] != 5 {
		t.Errorf("without an interval, main thread weighs %v", f.Profiles[0].Weights)
	}
}

// TestTimelineMemory measures what keeping the order costs over an hour at
// 100 Hz of a process with 10 threads: 3.6 million samples. The figures
// go in the log; the bound only catches a format that stopped being
// compact.
func TestTimelineMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("an hour of samples")
	}
	const rounds, threads = 3600 * 100, 10
	for _, tc := range []struct {
		name   string
		busy   int // threads whose stack changes every sample
		stacks int // distinct stacks of each busy thread
		max    float64
	}{
		{"4 busy threads over 200 stacks each, 6 waiting", 4, 200, 4},
		{"10 busy threads over 2000 stacks each", 10, 2000, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			record := func(order bool) (*Profile, float64) {
				b := NewBuilder()
				if order {
					b.KeepOrder()
				}
				for i := range 100 + tc.stacks {
					b.FrameID(py(fmt.Sprint("f", i), "/app/app.py", 1+i))
				}
				ids := make([]int, 30)
				rng := uint64(1)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for range rounds {
					for th := range threads {
						leaf := 0
						if th < tc.busy {
							rng = rng*6364136223846793005 + 1442695040888963407
							leaf = int(rng>>33) % tc.stacks
						}
						for d := range ids {
							ids[d] = d
						}
						ids[len(ids)-1] = 100 + leaf
						b.AddStack(ids, 1, 1000, 1000+th, "t")
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(b)
				return b.Profile(), float64(after.HeapAlloc) - float64(before.HeapAlloc)
			}
			_, without := record(false)
			p, with := record(true)
			runs := 0
			for i := range p.Timelines {
				runs += p.Timelines[i].Bytes()
			}
			samples := float64(rounds * threads)
			t.Logf("%d samples, %d stacks: runs %.1f MB (%.2f bytes a sample); live heap %.1f MB with the order, %.1f MB without",
				rounds*threads, len(p.Stacks), float64(runs)/1e6, float64(runs)/samples, with/1e6, without/1e6)
			if per := float64(runs) / samples; per > tc.max {
				t.Errorf("%.2f bytes a sample, want at most %v", per, tc.max)
			}
			// Writing the file streams it: the entries are not built.
			p.Interval = 10 * time.Millisecond
			var w countWriter
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			if err := p.WriteSpeedscope(&w); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			t.Logf("speedscope file %.0f MB written in %v, %.1f MB allocated", float64(w)/1e6, elapsed.Round(time.Millisecond), float64(after.TotalAlloc-before.TotalAlloc)/1e6)
		})
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

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

// TestAddAllocsOrdered: keeping the order allocates only as a thread's
// runs grow, far less than once per stack.
func TestAddAllocsOrdered(t *testing.T) {
	b := NewBuilder()
	b.KeepOrder()
	stacks := steadyStacks()
	for i, s := range stacks {
		b.Add(s, 1, 4242, 4242+i, "worker")
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		// Thread 4242 changes stack every sample; the others stay.
		b.Add(stacks[i%2], 1, 4242, 4242, "worker")
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per stack, want 0 (amortised)", allocs)
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

// BenchmarkAddStack is BenchmarkAdd without the frames' interning: the
// aggregation itself, as record's aggregator calls it.
func BenchmarkAddStack(b *testing.B) {
	pb := NewBuilder()
	var stacks [][]int
	for i, s := range steadyStacks() {
		var ids []int
		for _, f := range s {
			ids = append(ids, pb.FrameID(f))
		}
		stacks = append(stacks, ids)
		pb.AddStack(ids, 1, 4242, 4242+i, "worker")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pb.AddStack(stacks[i%len(stacks)], 1, 4242, 4242+i%len(stacks), "worker")
	}
}

// TestFlameGraphInput: the flame graph's input has the profile's frames,
// labelled as the profile labels them, its stacks and counts, and what
// its title tells.
func TestFlameGraphInput(t *testing.T) {
	p := sample()
	p.Frames = append(p.Frames, ThreadFrame(43, "MainThread"), Frame{Kind: Python, Name: "f", File: "x.py", Path: "/srv/x.py"})
	fg := p.FlameGraph()
	if len(fg.Frames) != len(p.Frames) {
		t.Fatalf("%d frames, want %d", len(fg.Frames), len(p.Frames))
	}
	for i, f := range p.Frames {
		if got := fg.Frames[i]; got.String() != f.String() || got.Path != f.Path {
			t.Errorf("frame %d: %q (path %q), want %q (path %q)", i, got, got.Path, f, f.Path)
		}
	}
	for i, s := range p.Stacks {
		if got := fg.Stacks[i]; !slices.Equal(got.Frames, s.Frames) || got.Count != s.Count {
			t.Errorf("stack %d: %v, want %v", i, got, s)
		}
	}
	if fg.Total() != p.Total() || flamegraph.Title(fg) != "python app.py (pid 42) — 2.0 s at 100 Hz — 7 samples" {
		t.Errorf("%d samples, title %q", fg.Total(), flamegraph.Title(fg))
	}
}
