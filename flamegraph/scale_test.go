package flamegraph

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testenv"
)

const (
	scaleStacks  = 200000
	maxFileBytes = 15 << 20
)

var bigProfile = sync.OnceValue(func() *Profile { return synthetic(scaleStacks) })

// TestScale writes a graph of 200,000 unique stacks and checks that it
// stays within the size budget, parses, and loses no samples; with
// Chromium, it also opens without errors.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 200,000-stack profile")
	}
	p := bigProfile()
	if len(p.Stacks) != scaleStacks {
		t.Fatalf("%d stacks, want %d", len(p.Stacks), scaleStacks)
	}
	start := time.Now()
	svg := render(t, p, Options{})
	elapsed := time.Since(start)
	t.Logf("%d stacks, %d samples: %.2f MB written in %v", len(p.Stacks), p.Total(), float64(len(svg))/(1<<20), elapsed.Round(time.Millisecond))
	if len(svg) > maxFileBytes {
		t.Errorf("file is %d bytes, over the %d budget", len(svg), maxFileBytes)
	}
	got := parseSVG(t, svg)
	if n := len(got.data.NF); n > defaultMaxFrames || n < 1000 {
		t.Errorf("%d frames kept, want 1000..%d", n, defaultMaxFrames)
	}
	// The root's count is every sample; pruning moved, not lost, them.
	if got.data.NC[0] != int(p.Total()) {
		t.Errorf("root holds %d samples, want %d", got.data.NC[0], p.Total())
	}

	if _, err := os.Stat(chromiumPath); err != nil && !testenv.Required(testenv.Browser, "chromium") {
		return
	}
	file := filepath.Join(t.TempDir(), "big.svg")
	if err := os.WriteFile(file, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	pg := openGraph(t, newBrowser(t), file)
	defer pg.close()
	painted := eval[float64](pg, "window.flamegraph.paintedAt")
	rects := eval[int](pg, "document.querySelectorAll('#frames rect').length")
	t.Logf("Chromium: painted %.0f ms after navigation start, %d frames drawn", painted, rects)
	if rects < 100 {
		t.Errorf("only %d frames drawn", rects)
	}
	// Zooming into a frame too narrow to draw at full width draws it and
	// its children: the file kept what the first view left out.
	tr, err := buildTree(p, defaultKeepFraction, defaultMaxFrames)
	if err != nil {
		t.Fatal(err)
	}
	deep := -1
	for i, n := range tr.nodes {
		if n.depth >= 12 && len(childrenOf(tr, i)) >= 2 && float64(n.count)/float64(tr.total)*(defaultWidth-2*padX) < defaultMinWidth &&
			(deep < 0 || n.count > tr.nodes[deep].count) {
			deep = i
		}
	}
	if deep < 0 {
		t.Fatal("no undrawn frame with children at depth 12 or more")
	}
	if pg.rect(deep).Found {
		t.Fatalf("frame %d is drawn at full width", deep)
	}
	eval[bool](pg, "window.flamegraph.zoom("+strconv.Itoa(deep)+"), true")
	if w := pg.rect(deep).Width; w != "1180.00" {
		t.Errorf("zoomed frame is %q wide, want 1180.00", w)
	}
	for _, c := range childrenOf(tr, deep) {
		if !pg.rect(c).Found {
			t.Errorf("child %d of the zoomed frame is not drawn", c)
		}
	}
}

// BenchmarkOpenInChromium reports the size of a 200,000-stack graph (MB)
// and the median time from navigation start to its first paint in
// headless Chromium (ms/open): with the default limits, and with every
// frame kept up to the MaxFrames cap, the largest file Write makes.
func BenchmarkOpenInChromium(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"max-frames", Options{KeepFraction: 1e-12}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			file := filepath.Join(b.TempDir(), "big.svg")
			writeGraph(b, bigProfile(), bc.opts, file)
			st, err := os.Stat(file)
			if err != nil {
				b.Fatal(err)
			}
			browser := newBrowser(b)
			var times []float64
			for b.Loop() {
				pg := openGraph(b, browser, file)
				times = append(times, eval[float64](pg, "window.flamegraph.paintedAt"))
				pg.close()
			}
			slices.Sort(times)
			b.ReportMetric(times[len(times)/2], "ms/open")
			b.ReportMetric(float64(st.Size())/(1<<20), "MB")
		})
	}
}
