package pyspy_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyversions"
)

// pageMemory serves a snapshot's bytes page by page, with batched reads, as
// a live process does: the reader then takes the same path as in
// production, minus the syscalls.
type pageMemory map[uint64]*[4096]byte

func newPageMemory(s *pyspy.Snapshot) pageMemory {
	m := pageMemory{}
	for _, sp := range s.Spans {
		for i := range sp.Data {
			a := sp.Addr + uint64(i)
			p := m[a&^4095]
			if p == nil {
				p = new([4096]byte)
				m[a&^4095] = p
			}
			p[a&4095] = sp.Data[i]
		}
	}
	return m
}

var errUnmapped = errors.New("unmapped")

func (m pageMemory) ReadAt(b []byte, off int64) (int, error) {
	a := uint64(off)
	for n := 0; n < len(b); {
		p := m[a&^4095]
		if p == nil {
			return n, errUnmapped
		}
		k := copy(b[n:], p[a&4095:])
		n += k
		a += uint64(k)
	}
	return len(b), nil
}

type failed struct{ idx []int }

func (f *failed) Error() string { return "unmapped" }
func (f *failed) Failed() []int { return f.idx }

// batchMemory adds batched reads to a pageMemory, reusing its error so
// that the harness allocates nothing of its own per sample.
type batchMemory struct {
	pageMemory
	f failed
}

func (m *batchMemory) ReadBatch(addrs []uint64, bufs [][]byte) error {
	m.f.idx = m.f.idx[:0]
	for i := range addrs {
		if _, err := m.ReadAt(bufs[i], int64(addrs[i])); err != nil {
			m.f.idx = append(m.f.idx, i)
		}
	}
	if len(m.f.idx) > 0 {
		return &m.f
	}
	return nil
}

// BenchmarkDecode measures the CPU cost of a full sample of the threads in
// a snapshot, with memory served without syscalls: what the reader itself
// adds on top of reading the target.
func BenchmarkDecode(b *testing.B) {
	files, _ := filepath.Glob("testdata/snapshots/pyenv-3.*.snap")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".snap")
		if !strings.Contains(name, "3.9") && !strings.Contains(name, "3.11") {
			continue
		}
		b.Run(name, func(b *testing.B) {
			snap := pyspy.LoadSnapshot(b, file)
			l, err := pyversions.LayoutFor(snap.Version)
			if err != nil {
				b.Fatal(err)
			}
			cfg := snap.Config
			cfg.Layout, cfg.Version = l, snap.Version
			r, err := pyspy.New(&batchMemory{pageMemory: newPageMemory(snap)}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			// As record and top sample: verified, names included.
			opts := pyspy.SampleOptions{Verify: true}
			ts, _ := r.Sample(opts)
			frames := 0
			for _, t := range ts {
				frames += len(t.Frames)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Sample(opts)
			}
			b.ReportMetric(float64(len(ts)), "threads")
			b.ReportMetric(float64(frames), "frames")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(frames), "ns/frame")
		})
	}
}

// TestDecodeAllocs holds decoding to the two arrays a sample returns (its
// threads and their frames): everything else is reused from sample to
// sample.
func TestDecodeAllocs(t *testing.T) {
	files, _ := filepath.Glob("testdata/snapshots/*.snap")
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".snap"), func(t *testing.T) {
			snap := pyspy.LoadSnapshot(t, file)
			l, err := pyversions.LayoutFor(snap.Version)
			if err != nil {
				t.Fatal(err)
			}
			cfg := snap.Config
			cfg.Layout, cfg.Version = l, snap.Version
			r, err := pyspy.New(&batchMemory{pageMemory: newPageMemory(snap)}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			opts := pyspy.SampleOptions{Verify: true}
			for range 5 {
				r.Sample(opts)
			}
			if n := testing.AllocsPerRun(50, func() { r.Sample(opts) }); n > 2 {
				t.Errorf("%.1f allocations per sample, want at most 2", n)
			}
		})
	}
}
