package flamegraph

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/pyprof/pyprof/internal/testenv"
)

var screenshot = flag.Bool("screenshot", false, "write the README's screenshot to ../docs/flamegraph.png")

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium, or skips without it unless
// PYPROF_REQUIRE_BROWSER=1, so that CI, which installs it, cannot pass by
// skipping.
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.SkipOrFail(tb, testenv.Browser, "chromium", "no Chromium: %v (apt-get install chromium)", err)
	}
	// The machine is offline: these flags keep Chromium from trying to
	// reach Google's services, which would only slow it down.
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.WindowSize(1280, 1000),
	)
	tb.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		tb.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// page is one tab with a flame graph open, recording what the page asked
// of the network and what it reported as an error.
type page struct {
	tb     testing.TB
	ctx    context.Context
	cancel context.CancelFunc
	url    string
	rec    *recorder
}

type recorder struct {
	mu       sync.Mutex
	requests []string
	problems []string
}

// in is the page as seen from another (sub)test, which its failures go to.
func (pg *page) in(tb testing.TB) *page {
	cp := *pg
	cp.tb = tb
	return &cp
}

func openGraph(tb testing.TB, browser context.Context, file string) *page {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	pg := &page{tb: tb, ctx: ctx, cancel: cancel, rec: &recorder{}}
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatal(err)
	}
	rec := pg.rec
	err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			rec.mu.Lock()
			rec.requests = append(rec.requests, ev.Request.URL)
			rec.mu.Unlock()
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Type == chromedp.ConsoleWarning {
				rec.mu.Lock()
				rec.problems = append(rec.problems, m.String())
				rec.mu.Unlock()
			}
		}
	}()
	pg.url = (&url.URL{Scheme: "file", Path: file}).String()
	pg.do(chromedp.Navigate(pg.url))
	pg.do(chromedp.Poll[chromedp.Void]("window.flamegraph && window.flamegraph.paintedAt > 0", chromedp.WithPollingTimeout(60*time.Second)))
	pg.cancel = cancel
	return pg
}

// close closes the tab and reports any request for something other than
// the graph itself, and any error or warning on the console.
func (pg *page) close() {
	pg.cancel()
	pg.rec.mu.Lock()
	defer pg.rec.mu.Unlock()
	if len(pg.rec.requests) == 0 {
		pg.tb.Error("saw no request at all: is the network listener working?")
	}
	for _, r := range pg.rec.requests {
		if r != pg.url {
			pg.tb.Errorf("the page requested %s", r)
		}
	}
	for _, p := range pg.rec.problems {
		pg.tb.Errorf("console: %s", p)
	}
}

func (pg *page) do(actions ...chromedp.Action[chromedp.Void]) {
	pg.tb.Helper()
	ctx, cancel := context.WithTimeout(pg.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		pg.tb.Fatal(err)
	}
}

func eval[T any](pg *page, js string) T {
	pg.tb.Helper()
	ctx, cancel := context.WithTimeout(pg.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		pg.tb.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// box is a drawn frame as the DOM has it.
type box struct {
	Found         bool
	X, Width      string // the attributes
	Fill, Class   string
	CX, CY        float64 // the centre on screen
	Title         string  // the tooltip, once hovered
	VisibleWidth  float64 // from getBoundingClientRect
	VisibleHeight float64
}

func (pg *page) rect(node int) box {
	pg.tb.Helper()
	return eval[box](pg, fmt.Sprintf(`(() => {
		const r = document.querySelector('#frames rect[data-i="%d"]');
		if (!r) return {Found: false};
		const b = r.getBoundingClientRect();
		const t = r.querySelector('title');
		return {Found: true, X: r.getAttribute('x'), Width: r.getAttribute('width'),
			Fill: r.getAttribute('fill'), Class: r.getAttribute('class') || '',
			CX: b.x + b.width / 2, CY: b.y + b.height / 2, Title: t ? t.textContent : '',
			VisibleWidth: b.width, VisibleHeight: b.height};
	})()`, node))
}

func (pg *page) text(id string) string {
	pg.tb.Helper()
	return eval[string](pg, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
}

// click clicks the centre of an element, as a person would.
func (pg *page) click(selector string) {
	pg.tb.Helper()
	c := eval[[]float64](pg, fmt.Sprintf(`(() => {
		const b = document.querySelector(%q).getBoundingClientRect();
		return [b.x + b.width / 2, b.y + b.height / 2];
	})()`, selector))
	pg.do(chromedp.MouseClickXY(c[0], c[1]))
}

// nodeAt finds a node of the tree by the labels on its path from the root.
func nodeAt(tb testing.TB, t *tree, path ...string) int {
	tb.Helper()
	var stack []string
	for i, n := range t.nodes[1:] {
		stack = append(stack[:n.depth-1], t.labels[n.frame])
		if slices.Equal(stack, path) {
			return i + 1
		}
	}
	tb.Fatalf("no node at %q", path)
	return -1
}

// childrenOf lists node i's children, from the pre-order and depths.
func childrenOf(t *tree, i int) []int {
	var out []int
	for j := i + 1; j < len(t.nodes) && t.nodes[j].depth > t.nodes[i].depth; j++ {
		if t.nodes[j].depth == t.nodes[i].depth+1 {
			out = append(out, j)
		}
	}
	return out
}

// wantInfo is the details line the viewer should show for node i.
func wantInfo(t *tree, i int, zoom int) string {
	n := t.nodes[i]
	label := "all"
	if n.frame >= 0 {
		label = t.labels[n.frame]
	}
	s := fmt.Sprintf("%s \u2014 %s", label, plural(n.count, "sample"))
	s += fmt.Sprintf(" (%.2f%%", 100*float64(n.count)/float64(t.total))
	if zoom > 0 {
		s += fmt.Sprintf(", %.2f%% of zoomed", 100*float64(n.count)/float64(t.nodes[zoom].count))
	}
	return s + ")"
}

func writeGraph(tb testing.TB, p *Profile, opts Options, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := Write(f, p, opts); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

func TestBrowser(t *testing.T) {
	browser := newBrowser(t)
	p := webApp()
	opts := Options{}
	tr, err := buildTree(p, defaultKeepFraction, defaultMaxFrames)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "web.svg")
	writeGraph(t, p, opts, file)

	const sp = "/srv/venv/lib/python3.11/site-packages/"
	base := []string{
		"process 4242: gunicorn: worker [app:app]", "thread 4242: MainThread",
		"<module> (" + sp + "gunicorn/app/wsgiapp.py:71)", "run (" + sp + "gunicorn/app/base.py:231)",
		"Arbiter.spawn_worker (" + sp + "gunicorn/arbiter.py:609)", "Worker.init_process (" + sp + "gunicorn/workers/base.py:142)",
		"SyncWorker.run (" + sp + "gunicorn/workers/sync.py:125)", "SyncWorker.run_for_one (" + sp + "gunicorn/workers/sync.py:69)",
		"SyncWorker.accept (" + sp + "gunicorn/workers/sync.py:32)", "SyncWorker.handle (" + sp + "gunicorn/workers/sync.py:135)",
		"SyncWorker.handle_request (" + sp + "gunicorn/workers/sync.py:178)",
		"Flask.__call__ (" + sp + "flask/app.py:1498)", "Flask.wsgi_app (" + sp + "flask/app.py:1473)",
		"Flask.full_dispatch_request (" + sp + "flask/app.py:880)", "Flask.dispatch_request (" + sp + "flask/app.py:865)",
	}
	dispatch := nodeAt(t, tr, base...)
	search := nodeAt(t, tr, append(base, "search (/srv/app/views.py:42)")...)
	hot := nodeAt(t, tr, append(base, "search (/srv/app/views.py:42)", "parse_query (/srv/app/query.py:88)", "parse_tokens (/srv/app/query.py:131)")...)
	var sibling int
	for _, c := range childrenOf(tr, dispatch) {
		if c != search {
			sibling = c
		}
	}
	if sibling == 0 {
		t.Fatal("the zoom target has no sibling")
	}
	full := fmt.Sprintf("%.2f", float64(defaultWidth-2*padX))

	pg := openGraph(t, browser, file)
	defer pg.close()

	t.Run("hover", func(t *testing.T) {
		pg := pg.in(t)
		r := pg.rect(hot)
		if !r.Found {
			t.Fatal("parse_tokens is not drawn")
		}
		pg.do(chromedp.MouseEvent(chromedp.MouseMoved, r.CX, r.CY))
		want := wantInfo(tr, hot, 0)
		if got := pg.text("details"); got != want {
			t.Errorf("details after hovering parse_tokens:\n got %q\nwant %q", got, want)
		}
		for _, part := range []string{"parse_tokens", "/srv/app/query.py:131", "samples", "%"} {
			if !strings.Contains(want, part) {
				t.Errorf("details %q lack %q", want, part)
			}
		}
		if got := pg.rect(hot).Title; got != want {
			t.Errorf("tooltip: got %q, want %q", got, want)
		}
		pg.do(chromedp.MouseEvent(chromedp.MouseMoved, 2, 2))
		if got := pg.text("details"); strings.TrimSpace(got) != "" {
			t.Errorf("details after leaving the frame: %q", got)
		}
	})

	t.Run("zoom", func(t *testing.T) {
		pg := pg.in(t)
		before, beforeSibling := pg.rect(search), pg.rect(sibling)
		if !before.Found || !beforeSibling.Found {
			t.Fatal("the zoom target or its sibling is not drawn")
		}
		if eval[bool](pg, `!document.getElementById('reset-zoom').classList.contains('hidden')`) {
			t.Error("Reset Zoom shows before zooming")
		}
		pg.do(chromedp.MouseClickXY(before.CX, before.CY))
		after := pg.rect(search)
		if after.Width != full || after.X != fmt.Sprintf("%.2f", float64(padX)) {
			t.Errorf("zoomed frame at x=%s width=%s, want x=%d width=%s", after.X, after.Width, padX, full)
		}
		if after.VisibleWidth < float64(defaultWidth-2*padX)-1 {
			t.Errorf("zoomed frame is %.1f px wide on screen", after.VisibleWidth)
		}
		if s := pg.rect(sibling); s.Found {
			t.Errorf("sibling %q still drawn after zooming", tr.labels[tr.nodes[sibling].frame])
		}
		anc := pg.rect(dispatch)
		if !anc.Found || anc.Width != full || !strings.Contains(anc.Class, "dim") {
			t.Errorf("ancestor after zoom: %+v, want full width and dimmed", anc)
		}
		// A frame inside the zoom reports its share of the zoom too.
		h := pg.rect(hot)
		pg.do(chromedp.MouseEvent(chromedp.MouseMoved, h.CX, h.CY))
		if got, want := pg.text("details"), wantInfo(tr, hot, search); got != want {
			t.Errorf("details when zoomed:\n got %q\nwant %q", got, want)
		}

		pg.click("#reset-zoom")
		if got := pg.rect(search); got.Width != before.Width || got.X != before.X {
			t.Errorf("after Reset Zoom: x=%s width=%s, want x=%s width=%s", got.X, got.Width, before.X, before.Width)
		}
		if got := pg.rect(sibling); got.Width != beforeSibling.Width {
			t.Errorf("sibling after Reset Zoom: %+v, want width %s", got, beforeSibling.Width)
		}
		if eval[bool](pg, `!document.getElementById('reset-zoom').classList.contains('hidden')`) {
			t.Error("Reset Zoom still shows after resetting")
		}

		// Escape undoes a zoom too.
		pg.do(chromedp.MouseClickXY(before.CX, before.CY))
		if got := pg.rect(search); got.Width != full {
			t.Fatalf("second zoom: width %s", got.Width)
		}
		pg.do(chromedp.KeyEvent(kb.Escape))
		if got := pg.rect(search); got.Width != before.Width {
			t.Errorf("after Escape: width %s, want %s", got.Width, before.Width)
		}
	})

	t.Run("search", func(t *testing.T) {
		pg := pg.in(t)
		// parse_tokens and Pattern.match nest, so counting each stack
		// once is what makes the percentage right.
		const term = `parse_tokens|Pattern\.match|socket\.py`
		re := regexp.MustCompile(term)
		var matchedSum int64
		for _, s := range p.Stacks {
			for _, id := range s.Frames {
				if re.MatchString(p.Frames[id].String()) {
					matchedSum += s.Count
					break
				}
			}
		}
		want := fmt.Sprintf("Matched: %.2f%%", 100*float64(matchedSum)/float64(p.Total()))
		eval[bool](pg, fmt.Sprintf(`window.prompt = () => %q, true`, term))
		pg.click("#search")
		if got := pg.text("matched"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		type drawn struct {
			I    int
			Fill string
		}
		rects := eval[[]drawn](pg, `[...document.querySelectorAll('#frames rect')].map(r => ({I: +r.getAttribute('data-i'), Fill: r.getAttribute('fill')}))`)
		highlighted := 0
		for _, r := range rects {
			n := tr.nodes[r.I]
			isMatch := n.frame >= 0 && re.MatchString(tr.labels[n.frame])
			if isMatch != (r.Fill == matchFill) {
				t.Errorf("frame %d (%s): fill %s, match %v", r.I, tr.labels[n.frame], r.Fill, isMatch)
			}
			if isMatch {
				highlighted++
			}
		}
		if highlighted == 0 {
			t.Error("no frame highlighted")
		}
		pg.click("#reset-search")
		if got := pg.text("matched"); strings.TrimSpace(got) != "" {
			t.Errorf("matched text after Reset Search: %q", got)
		}
		if n := eval[int](pg, fmt.Sprintf(`document.querySelectorAll('#frames rect[fill=%q]').length`, matchFill)); n != 0 {
			t.Errorf("%d frames still highlighted after Reset Search", n)
		}

		// The keyboard reaches the same prompt.
		eval[bool](pg, `window.prompt = () => "health", true`)
		pg.do(chromedp.KeyEvent("/"))
		if got := pg.text("matched"); !strings.HasPrefix(got, "Matched: ") || got == want {
			t.Errorf("after / and a search for health: %q", got)
		}
		pg.do(chromedp.KeyEvent(kb.Escape))
		if got := pg.text("matched"); strings.TrimSpace(got) != "" {
			t.Errorf("matched text after Escape: %q", got)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		pg := pg.in(t)
		h := pg.rect(hot)
		pg.do(chromedp.MouseEvent(chromedp.MouseMoved, h.CX, h.CY))
		png, err := chromedp.Run(pg.ctx, chromedp.Screenshot(chromedp.CSS("svg")))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "flamegraph.png")
		if *screenshot {
			out = filepath.Join("..", "docs", "flamegraph.png")
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", out, len(png))
	})
}

// TestBrowserEscaping checks that hostile names arrive in the page intact:
// what the details line shows must be exactly Frame.String().
func TestBrowserEscaping(t *testing.T) {
	browser := newBrowser(t)
	b := newBuilder()
	names := []Frame{
		py("<lambda>", "/srv/app/x.py", 1),
		py(`a&b"c'd`, "/srv/app/y.py", 2),
		py("]]></script><script>alert(1)</script>", "/srv/app/<z>.py", 3),
		py("naïve_函数_😀", "/srv/app/ünï.py", 4),
		py(`back\slash`+"\u2028", `C:\app\w.py`, 5),
	}
	for i, f := range names {
		b.Add([]Frame{py("main", "/srv/app/main.py", 1), f}, int64(10+i), 1, 1, "")
	}
	p := b.Profile()
	tr, err := buildTree(p, defaultKeepFraction, defaultMaxFrames)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "escape.svg")
	writeGraph(t, p, Options{Title: `<title> & "quotes"`}, file)
	pg := openGraph(t, browser, file)
	defer pg.close()
	if got := eval[string](pg, `document.getElementById('title').textContent`); got != `<title> & "quotes"` {
		t.Errorf("title: %q", got)
	}
	var labels []string
	for i := range tr.nodes {
		if i == 0 {
			continue
		}
		r := pg.rect(i)
		if !r.Found {
			t.Fatalf("node %d not drawn", i)
		}
		pg.do(chromedp.MouseEvent(chromedp.MouseMoved, r.CX, r.CY))
		got := pg.text("details")
		if want := wantInfo(tr, i, 0); got != want {
			t.Errorf("details:\n got %q\nwant %q", got, want)
		}
		labels = append(labels, tr.labels[tr.nodes[i].frame])
	}
	sort.Strings(labels)
	if len(labels) != len(names)+1 {
		t.Errorf("%d frames drawn, want %d", len(labels), len(names)+1)
	}
	// A search for a name with regexp metacharacters, escaped.
	eval[bool](pg, `window.prompt = () => "a&b\"c'd", true`)
	pg.click("#search")
	if got, want := pg.text("matched"), fmt.Sprintf("Matched: %.2f%%", 100*11.0/float64(p.Total())); got != want {
		t.Errorf("search: got %q, want %q", got, want)
	}
}
