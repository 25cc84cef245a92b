// Package snapfuzz holds what the fuzz targets of pyspy and its
// sub-packages share: the recorded snapshots they start from, memory that
// is a snapshot with some bytes replaced, seeds cut from a snapshot, and
// the time bound that decoding corrupt input must keep.
//
// It takes the snapshot decoder as a parameter, so that pyspy's own tests
// can use it without an import cycle.
package snapfuzz

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// Load decodes the snapshots in dir (testdata/snapshots of pyspy, as the
// test sees it), in name order, leaving out those decode rejects; it fails
// if none is left.
func Load[S any](f *testing.F, dir string, decode func([]byte) (S, error)) []S {
	files, _ := filepath.Glob(filepath.Join(dir, "*.snap"))
	sort.Strings(files)
	var snaps []S
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		if s, err := decode(data); err == nil {
			snaps = append(snaps, s)
		}
	}
	if len(snaps) == 0 {
		f.Fatalf("no snapshots in %s", dir)
	}
	return snaps
}

// Overlay is a snapshot with some bytes replaced or added: Data at Addr.
type Overlay struct {
	Base io.ReaderAt
	Addr uint64
	Data []byte
}

func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	addr := uint64(off)
	end := addr + uint64(len(p))
	oend := o.Addr + uint64(len(o.Data))
	if addr >= o.Addr && end <= oend {
		return copy(p, o.Data[addr-o.Addr:]), nil
	}
	n, err := o.Base.ReadAt(p, off)
	// Patch any overlap with the overlay.
	if addr < oend && end > o.Addr {
		lo, hi := max(addr, o.Addr), min(end, oend)
		copy(p[lo-addr:hi-addr], o.Data[lo-o.Addr:hi-o.Addr])
	}
	return n, err
}

// AddSeed adds the seed (snap, op, addr, the bytes at addr): up to 256
// bytes recorded there, and nothing unless at least the first 64 are.
func AddSeed(f *testing.F, snap, op uint8, s io.ReaderAt, addr uint64) {
	b := make([]byte, 256)
	if _, err := s.ReadAt(b[:64], int64(addr)); err != nil {
		return
	}
	n, _ := s.ReadAt(b, int64(addr))
	f.Add(snap, op, addr, b[:max(n, 64)])
}

// Within fails the test when fn takes too long: bounded loops must stay
// bounded even on corrupt input.
func Within(t *testing.T, fn func()) {
	start := time.Now()
	fn()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("decoder took %v", d)
	}
}
