package flamegraph

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// dump renders a tree as one line per node, "depth label count/self".
func dump(t *tree) []string {
	var out []string
	for _, n := range t.nodes {
		label := "all"
		if n.frame >= 0 {
			label = t.labels[n.frame]
		}
		out = append(out, fmt.Sprintf("%d %s %d/%d", n.depth, label, n.count, n.self))
	}
	return out
}

// checkSums checks that pruning lost no sample: each node's count is its
// self time plus its children's counts, and the root holds them all.
func checkSums(tb testing.TB, t *tree, p *Profile) {
	tb.Helper()
	if t.nodes[0].count != p.Total() || t.total != p.Total() {
		tb.Errorf("root count %d, total %d, want %d", t.nodes[0].count, t.total, p.Total())
	}
	for i, n := range t.nodes {
		sum := n.self
		for _, c := range childrenOf(t, i) {
			sum += t.nodes[c].count
		}
		if sum != n.count || n.self < 0 {
			tb.Errorf("node %d: count %d, self %d + children = %d", i, n.count, n.self, sum)
		}
	}
}

type stk struct {
	frames []int
	count  int64
}

func prof(frames []Frame, stacks ...stk) *Profile {
	p := &Profile{Frames: frames}
	for _, s := range stacks {
		p.Stacks = append(p.Stacks, Stack{Frames: s.frames, Count: s.count})
	}
	return p
}

func TestBuildTree(t *testing.T) {
	main := py("main", "m.py", 1)
	a, b, upper := py("a", "m.py", 5), py("b", "m.py", 6), py("B", "m.py", 7)
	bAgain := b
	bAgain.Path = "/srv/m.py" // not part of a frame's identity
	f9, f10 := py("f", "x.py", 9), py("f", "x.py", 10)
	big, small1, small2, mid, leaf1, leaf2 := py("big", "m.py", 1), py("small1", "m.py", 1), py("small2", "m.py", 1), py("mid", "m.py", 1), py("leaf1", "m.py", 1), py("leaf2", "m.py", 1)
	proc, thr := processFrame(7, "python x.py"), threadFrame(8, "MainThread")

	tests := []struct {
		name     string
		p        *Profile
		keep     float64
		maxNodes int
		want     []string
		pruned   int
	}{{
		name: "merge equal frames and order children by label",
		p: prof([]Frame{main, b, a, bAgain, upper},
			stk{[]int{0, 1}, 3}, stk{[]int{0, 2}, 2}, stk{[]int{0, 3}, 4}, stk{[]int{0}, 1}, stk{[]int{0, 4}, 1}),
		want: []string{"0 all 11/0", "1 main (m.py:1) 11/1", "2 B (m.py:7) 1/1", "2 a (m.py:5) 2/2", "2 b (m.py:6) 7/7"},
	}, {
		name: "lines split frames and sort as text",
		p:    prof([]Frame{main, f9, f10}, stk{[]int{0, 1}, 1}, stk{[]int{0, 2}, 2}),
		want: []string{"0 all 3/0", "1 main (m.py:1) 3/0", "2 f (x.py:10) 2/2", "2 f (x.py:9) 1/1"},
	}, {
		name: "process and thread frames",
		p:    prof([]Frame{proc, thr, main}, stk{[]int{0, 1, 2}, 5}, stk{[]int{0, 1}, 1}),
		want: []string{"0 all 6/0", "1 process 7: python x.py 6/0", "2 thread 8: MainThread 6/1", "3 main (m.py:1) 5/5"},
	}, {
		name:   "narrow frames go to the parent's self time",
		p:      prof([]Frame{main, big, small1, small2}, stk{[]int{0, 1}, 990}, stk{[]int{0, 2}, 4}, stk{[]int{0, 3}, 6}),
		keep:   0.005, // 5 samples
		want:   []string{"0 all 1000/0", "1 main (m.py:1) 1000/4", "2 big (m.py:1) 990/990", "2 small2 (m.py:1) 6/6"},
		pruned: 1,
	}, {
		name: "a kept frame keeps the samples of its pruned children",
		p: prof([]Frame{main, mid, leaf1, leaf2, big},
			stk{[]int{0, 1, 2}, 3}, stk{[]int{0, 1, 3}, 3}, stk{[]int{0, 4}, 994}),
		keep:   0.004,
		want:   []string{"0 all 1000/0", "1 main (m.py:1) 1000/0", "2 big (m.py:1) 994/994", "2 mid (m.py:1) 6/6"},
		pruned: 2,
	}, {
		name: "a frame cap drops the narrowest, ties together",
		p: prof([]Frame{main, big, small1, small2},
			stk{[]int{0, 1}, 990}, stk{[]int{0, 2}, 5}, stk{[]int{0, 3}, 5}),
		maxNodes: 4,
		want:     []string{"0 all 1000/0", "1 main (m.py:1) 1000/10", "2 big (m.py:1) 990/990"},
		pruned:   2,
	}, {
		name: "stacks without samples are ignored",
		p:    prof([]Frame{main, a}, stk{[]int{0, 1}, 0}, stk{[]int{0}, 2}),
		want: []string{"0 all 2/0", "1 main (m.py:1) 2/2"},
	}, {
		name: "empty profile",
		p:    &Profile{},
		want: []string{"0 all 0/0"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keep := tc.keep
			if keep == 0 {
				keep = defaultKeepFraction
			}
			tr, err := buildTree(tc.p, keep, tc.maxNodes)
			if err != nil {
				t.Fatal(err)
			}
			got := dump(tr)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
			if tr.pruned != tc.pruned {
				t.Errorf("pruned %d nodes, want %d", tr.pruned, tc.pruned)
			}
			checkSums(t, tr, tc.p)
		})
	}
}

func TestBuildTreeBadIndex(t *testing.T) {
	p := prof([]Frame{py("main", "m.py", 1)}, stk{[]int{0, 1}, 1})
	if _, err := buildTree(p, defaultKeepFraction, 0); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("got %v, want an out of range error", err)
	}
	if err := Write(io.Discard, p, Options{}); err == nil {
		t.Error("Write accepted a stack with a bad frame index")
	}
}

// TestBuildTreeLarge checks the invariants where pruning does most: on the
// synthetic profile, with the default limits.
func TestBuildTreeLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 20,000-stack profile")
	}
	p := synthetic(20000)
	tr, err := buildTree(p, defaultKeepFraction, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.nodes) > 5000 || tr.pruned == 0 {
		t.Errorf("%d nodes kept, %d pruned; want at most 5000 kept", len(tr.nodes), tr.pruned)
	}
	checkSums(t, tr, p)
	for i := 1; i < len(tr.nodes); i++ {
		prev, cur := tr.nodes[i-1], tr.nodes[i]
		if cur.depth > prev.depth+1 {
			t.Fatalf("node %d jumps from depth %d to %d", i, prev.depth, cur.depth)
		}
	}
	// Siblings stay in label order after pruning.
	for i := range tr.nodes {
		cs := childrenOf(tr, i)
		for j := 1; j < len(cs); j++ {
			if tr.labels[tr.nodes[cs[j-1]].frame] >= tr.labels[tr.nodes[cs[j]].frame] {
				t.Fatalf("children of node %d out of order", i)
			}
		}
	}
}

func TestCategory(t *testing.T) {
	tests := []struct {
		f    Frame
		want Cat
	}{
		{py("main", "/srv/app/main.py", 1), CatApp},
		{py("main", "app.py", 1), CatApp},
		{py("handler", "/home/me/lib/mylib/handler.py", 1), CatApp},
		{py("Flask.wsgi_app", "/srv/venv/lib/python3.11/site-packages/flask/app.py", 1), CatLibrary},
		{py("load", "/usr/lib/python3/dist-packages/yaml/__init__.py", 1), CatLibrary},
		{py("get", `C:\Python311\Lib\site-packages\requests\api.py`, 1), CatLibrary},
		{py("Thread.run", "/usr/lib/python3.11/threading.py", 975), CatStdlib},
		{py("JSONDecoder.decode", "/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py", 337), CatStdlib},
		{py("run", "/usr/local/lib/python3.13t/asyncio/runners.py", 1), CatStdlib},
		{py("_find_and_load", "<frozen importlib._bootstrap>", 1176), CatStdlib},
		{py("<module>", "<string>", 1), CatStdlib},
		{py("sleep", "<built-in>", 0), CatStdlib},
		{py("<built-in method sleep>", "", 0), CatStdlib},
		// Shown shortened, classified by the full path.
		{Frame{Kind: Python, Name: "JSONDecoder.decode", File: "json/decoder.py", Path: "/usr/lib/python3.11/json/decoder.py"}, CatStdlib},
		{Frame{Kind: Python, Name: "SyncWorker.run", File: "gunicorn/workers/sync.py", Path: "/usr/lib/python3/dist-packages/gunicorn/workers/sync.py"}, CatLibrary},
		{processFrame(12, "python app.py"), CatProcess},
		{threadFrame(13, "MainThread"), CatThread},
	}
	for _, tc := range tests {
		if got := Category(tc.f); got != tc.want {
			t.Errorf("Category(%s) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestColourDeterministicAndDistinct(t *testing.T) {
	a := py("parse", "/srv/app/p.py", 1)
	b := a
	b.Line = 99
	if colour(a) != colour(b) {
		t.Error("one function got two colours")
	}
	// Each category's palette stays in its own region.
	for i := range 200 {
		name := fmt.Sprintf("fn%d", i)
		app := colour(py(name, "/srv/app/x.py", 1))
		lib := colour(py(name, "/v/lib/python3.11/site-packages/x.py", 1))
		std := colour(py(name, "/usr/lib/python3.11/x.py", 1))
		thr := colour(threadFrame(i, name))
		if !(int(app.r) > int(app.b)+100 && app.g <= 170) {
			t.Errorf("app colour %v is not warm", app)
		}
		if !(int(lib.b) > int(lib.r)+50) {
			t.Errorf("library colour %v is not aqua", lib)
		}
		if !(int(std.r) > int(std.b)+80 && int(std.g) > int(std.b)+80) {
			t.Errorf("stdlib colour %v is not yellow", std)
		}
		if !(int(thr.b) > int(thr.r)+40) {
			t.Errorf("thread colour %v is not blue", thr)
		}
	}
}

func TestTitle(t *testing.T) {
	stacks := func(counts ...int64) []Stack {
		var out []Stack
		for _, c := range counts {
			out = append(out, Stack{Count: c})
		}
		return out
	}
	tests := []struct {
		name string
		p    Profile
		want string
	}{{
		"gunicorn",
		Profile{Command: "gunicorn", Pids: []int{1234, 1, 2, 3}, Duration: 8 * time.Second, Rate: 100, Stacks: stacks(3000, 200), Rounds: 800, Errors: 2},
		"gunicorn (pid 1234, 3 subprocesses) \u2014 8.0 s at 100 Hz \u2014 3,200 samples in 800 rounds, 2 errors",
	}, {
		"one process, missed rounds",
		Profile{Command: "python app.py", Pids: []int{7}, Duration: 1500 * time.Millisecond, Rate: 250.5, Stacks: stacks(1), Rounds: 1, Errors: 1, Missed: 12},
		"python app.py (pid 7) \u2014 1.5 s at 250.5 Hz \u2014 1 sample in 1 round, 1 error, 12 missed rounds",
	}, {
		"command that names its pids, long recording",
		Profile{Command: "gunicorn (pid 1234) and 3 subprocesses", Pids: []int{1234, 1, 2, 3}, Duration: 125 * time.Second, Rate: 100, Stacks: stacks(1234567), Rounds: 1234000},
		"gunicorn (pid 1234) and 3 subprocesses \u2014 2m5s at 100 Hz \u2014 1,234,567 samples in 1,234,000 rounds",
	}, {
		"no metadata: samples from the stacks",
		Profile{Stacks: stacks(5, 6)},
		"pyprof \u2014 11 samples",
	}}
	for _, tc := range tests {
		if got := Title(&tc.p); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestFitText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    float64
		want string
	}{{"abcdefgh", 8, "abcdefgh"}, {"abcdefgh", 6.5, "abc..."}, {"函数函数函数", 5, "函数..."}} {
		if got := fitText(tc.in, tc.n); got != tc.want {
			t.Errorf("fitText(%q, %g) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestAppendJSString(t *testing.T) {
	tests := []struct{ in, decoded string }{
		{"plain", "plain"},
		{`<lambda>`, `<lambda>`},
		{`a&b"c'd`, `a&b"c'd`},
		{"]]>", "]]>"},
		{`back\slash`, `back\slash`},
		{"tab\tnul\x00", "tab\tnul\x00"},
		{"naïve 函数 😀", "naïve 函数 😀"},
		{"line\u2028sep", "line\u2028sep"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	}
	for _, tc := range tests {
		lit := appendJSString(nil, tc.in)
		for _, c := range lit {
			if c >= 0x7f || c < 0x20 || c == '<' || c == '>' || c == '&' {
				t.Errorf("%q: literal %s holds %q", tc.in, lit, c)
			}
		}
		// encoding/json decodes it the way JS would.
		var got string
		if err := json.Unmarshal(lit, &got); err != nil {
			t.Errorf("%q: %s does not decode: %v", tc.in, lit, err)
		} else if got != tc.decoded {
			t.Errorf("%q: decodes to %q, want %q", tc.in, got, tc.decoded)
		}
	}
}

func TestViewerFitsInCDATA(t *testing.T) {
	if strings.Contains(viewerJS, "]]>") {
		t.Error("flamegraph.js contains ]]>, which would end the CDATA section")
	}
}

// parsed is what a strict XML parser and a JSON decoder make of a graph.
type parsed struct {
	title, heading string
	data           struct {
		S  []string
		FN []int `json:"fn"`
		FF []int `json:"ff"`
		FL []int `json:"fl"`
		N  int   `json:"n"`
		// The node arrays as the viewer decodes them: frame (-1 for the
		// root), count and depth.
		NF, NC, ND []int `json:"-"`
	}
}

// decodeVLQ is the viewer's decoder, in Go.
func decodeVLQ(tb testing.TB, s string) []int {
	tb.Helper()
	var out []int
	v, shift := 0, 0
	for _, c := range []byte(s) {
		d := strings.IndexByte(vlqDigits, c)
		if d < 0 {
			tb.Fatalf("%q is not a VLQ digit", c)
		}
		v |= (d & 31) << shift
		shift += 5
		if d < 32 {
			out = append(out, v)
			v, shift = 0, 0
		}
	}
	return out
}

// parseSVG runs encoding/xml over the whole file and decodes the embedded
// data.
func parseSVG(tb testing.TB, svg []byte) parsed {
	tb.Helper()
	var out parsed
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	var stack []string
	var script string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			name := tok.Name.Local
			for _, a := range tok.Attr {
				if a.Name.Local == "id" {
					name += "#" + a.Value
				}
			}
			stack = append(stack, name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			switch strings.Join(stack, "/") {
			case "svg/title":
				out.title += string(tok)
			case "svg/text#title":
				out.heading += string(tok)
			case "svg/script#fg-data":
				script += string(tok)
			}
		}
	}
	var raw struct {
		NF, NC, ND string
	}
	if err := json.Unmarshal([]byte(script), &out.data); err != nil {
		tb.Fatalf("the data script: %v", err)
	}
	if err := json.Unmarshal([]byte(script), &raw); err != nil {
		tb.Fatalf("the data script: %v", err)
	}
	data := &out.data
	data.NF, data.NC, data.ND = decodeVLQ(tb, raw.NF), decodeVLQ(tb, raw.NC), decodeVLQ(tb, raw.ND)
	if len(data.NF) != data.N || len(data.NC) != data.N || len(data.ND) != data.N {
		tb.Fatalf("node arrays of %d, %d, %d for %d nodes", len(data.NF), len(data.NC), len(data.ND), data.N)
	}
	prev := -1
	for i := range data.N {
		data.NF[i]--
		data.ND[i] = prev + 1 - data.ND[i]
		prev = data.ND[i]
	}
	return out
}

func render(tb testing.TB, p *Profile, opts Options) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, p, opts); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestEscaping(t *testing.T) {
	frames := []Frame{
		py("<lambda>", "/srv/app/x.py", 1),
		py(`a&b"c'd`, "/srv/app/y.py", 2),
		py("]]></script><script>alert(1)</script>", `</script>"&.py`, 3),
		py("ctl\x01\x1b", "bad\xff.py", 4),
		py("naïve_函数_😀\u2028\ufffe", "/srv/ünï.py", 5),
	}
	b := newBuilder()
	for _, f := range frames {
		b.Add([]Frame{f}, 1, 1, 1, "")
	}
	p := b.Profile()
	p.Command = `run <x> & "y" 'z' ]]>` + "\x02"
	svg := render(t, p, Options{})
	got := parseSVG(t, svg)
	wantTitle := strings.ReplaceAll(Title(p), "\x02", "\uFFFD")
	if got.title != wantTitle || got.heading != wantTitle {
		t.Errorf("title %q, heading %q, want %q", got.title, got.heading, wantTitle)
	}
	strs := map[string]bool{}
	for _, s := range got.data.S {
		strs[s] = true
	}
	for _, f := range frames {
		for _, s := range []string{f.Name, f.File} {
			// Like JS, Go decodes each invalid byte to one U+FFFD.
			if !strs[string([]rune(s))] {
				t.Errorf("string %q did not survive: have %q", s, got.data.S)
			}
		}
	}
	if n := strings.Count(string(svg), "]]>"); n != 2 {
		t.Errorf("]]> occurs %d times, want twice (the ends of the scripts)", n)
	}
}

func FuzzWrite(f *testing.F) {
	f.Add("<lambda>", "/srv/app/x.py", `cmd "x" & <y>`)
	f.Add("]]>", "\xff\x00", "\u2028")
	f.Fuzz(func(t *testing.T, name, file, cmd string) {
		p := prof([]Frame{py(name, file, 1), {Kind: Thread, Name: name}}, stk{[]int{1, 0}, 3})
		p.Command = cmd
		got := parseSVG(t, render(t, p, Options{}))
		found := false
		for _, s := range got.data.S {
			found = found || s == string([]rune(name))
		}
		if !found || !utf8.ValidString(got.title) {
			t.Errorf("name %q lost: strings %q", name, got.data.S)
		}
	})
}

func TestWellFormedOptions(t *testing.T) {
	p := webApp()
	for _, opts := range []Options{{}, {Icicle: true}, {Width: 300, FrameHeight: 20, FontSize: 14, Title: "custom"}, {MaxFrames: 10}, {KeepFraction: 0.5}} {
		got := parseSVG(t, render(t, p, opts))
		if len(got.data.NF) == 0 || len(got.data.NF) != len(got.data.NC) || len(got.data.NC) != len(got.data.ND) {
			t.Errorf("%+v: node arrays of %d, %d, %d", opts, len(got.data.NF), len(got.data.NC), len(got.data.ND))
		}
		if opts.MaxFrames > 0 && len(got.data.NF) > opts.MaxFrames {
			t.Errorf("%+v: %d frames kept", opts, len(got.data.NF))
		}
		if opts.Title != "" && got.title != opts.Title {
			t.Errorf("title %q, want %q", got.title, opts.Title)
		}
	}
}

// TestDataRoundTrip decodes the embedded data the way the viewer does and
// compares it with the tree it came from.
func TestDataRoundTrip(t *testing.T) {
	huge := prof([]Frame{py("main", "m.py", 1), py("hot", "m.py", 2)},
		stk{[]int{0, 1}, 1 << 40}, stk{[]int{0}, 31}, stk{[]int{0}, 1})
	for name, p := range map[string]*Profile{"web": webApp(), "synthetic": synthetic(3000), "huge counts": huge} {
		t.Run(name, func(t *testing.T) {
			tr, err := buildTree(p, defaultKeepFraction, defaultMaxFrames)
			if err != nil {
				t.Fatal(err)
			}
			d := parseSVG(t, render(t, p, Options{})).data
			if d.N != len(tr.nodes) {
				t.Fatalf("%d nodes in the file, %d in the tree", d.N, len(tr.nodes))
			}
			for i, n := range tr.nodes {
				label, want := "all", "all"
				if f := d.NF[i]; f >= 0 {
					label = Frame{Kind: tr.frames[n.frame].Kind, Name: d.S[d.FN[f]], File: d.S[d.FF[f]], Line: d.FL[f]}.String()
					want = tr.labels[n.frame]
				}
				if label != want || int64(d.NC[i]) != n.count || d.ND[i] != int(n.depth) {
					t.Fatalf("node %d: %q %d at depth %d, want %q %d at depth %d", i, label, d.NC[i], d.ND[i], want, n.count, n.depth)
				}
			}
		})
	}
}

func TestVLQ(t *testing.T) {
	for _, v := range []uint64{0, 1, 31, 32, 1023, 1024, 1<<31 - 1, 1 << 40, 1<<53 - 1} {
		enc := string(appendVLQ(nil, v))
		if got := decodeVLQ(t, enc); len(got) != 1 || uint64(got[0]) != v {
			t.Errorf("%d encodes as %q and decodes to %v", v, enc, got)
		}
	}
}
