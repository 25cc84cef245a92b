package greenlet_test

import (
	"testing"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy/greenlet"
)

// BenchmarkDecode decodes the 1,000 parked greenlets (and the 14 of the
// shapes) of a gevent worker, as record --idle does every sample, and
// BenchmarkScan walks its GC lists to find them, as record does every 2 s.
func BenchmarkDecode(b *testing.B) { benchGreenlets(b, false) }

func BenchmarkScan(b *testing.B) { benchGreenlets(b, true) }

func benchGreenlets(b *testing.B, scan bool) {
	var py testpython.Interpreter
	for _, p := range testpython.All() {
		if p.Path == testpython.SystemPython {
			py = p
		}
	}
	if py.Path == "" {
		b.Skip("no " + testpython.SystemPython)
	}
	tg := testpython.Start(b, py, "greenlets.py", "--lib", "gevent", "--many", "1000")
	p, err := target.Attach(tg.Pid, target.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	r := greenlet.New(p.Proc, p.Config.Facts, p.Reader.Interpreter())
	sc, err := r.Scan()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	reads := 0
	for range b.N {
		if scan {
			if _, err := r.Scan(); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if gs := r.Decode(sc.Objects, false); len(gs) < 1000 {
			b.Fatalf("%d greenlets", len(gs))
		}
		reads += r.Reads()
	}
	if !scan {
		b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
	}
	b.ReportMetric(float64(len(sc.Objects)), "greenlets")
	b.ReportMetric(float64(sc.Visited), "objects")
}
