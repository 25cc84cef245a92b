package pyspy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/pyprof/pyprof/pyversions"
)

// A Snapshot is a sparse copy of a target's memory together with where its
// interpreter lives: enough to replay a sample without the process. Tests
// keep snapshots of real interpreters as golden inputs and fuzz seeds; a
// user can attach one to a bug report.
type Snapshot struct {
	Version pyversions.Version
	Config  Config // Layout and Facts are not stored; they come from Version on load
	Spans   []Span
}

// Span is one contiguous region of a snapshot.
type Span struct {
	Addr uint64
	Data []byte
}

// ReadAt implements Memory over the recorded spans. Reads of bytes that
// were not recorded fail, as reads of unmapped memory do.
func (s *Snapshot) ReadAt(p []byte, off int64) (int, error) {
	addr := uint64(off)
	i := sort.Search(len(s.Spans), func(i int) bool { return s.Spans[i].Addr+uint64(len(s.Spans[i].Data)) > addr })
	if i == len(s.Spans) || s.Spans[i].Addr > addr {
		return 0, fmt.Errorf("read %#x: not in snapshot", addr)
	}
	sp := s.Spans[i]
	n := copy(p, sp.Data[addr-sp.Addr:])
	if n < len(p) {
		return n, fmt.Errorf("read %#x+%d: not in snapshot", addr, len(p))
	}
	return n, nil
}

// Recorder is a Memory that remembers every byte read through it.
type Recorder struct {
	mem   Memory
	spans map[uint64][]byte
}

// NewRecorder wraps mem.
func NewRecorder(m Memory) *Recorder { return &Recorder{mem: m, spans: map[uint64][]byte{}} }

// ReadAt reads from the wrapped memory and records what it returns.
func (r *Recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.mem.ReadAt(p, off)
	// A shorter read at the same address must not forget a longer one.
	if err == nil && len(p) > len(r.spans[uint64(off)]) {
		r.spans[uint64(off)] = append([]byte(nil), p...)
	}
	return n, err
}

// Snapshot returns what was recorded, merged into sorted, disjoint spans.
func (r *Recorder) Snapshot(v pyversions.Version, cfg Config) *Snapshot {
	addrs := make([]uint64, 0, len(r.spans))
	for a := range r.spans {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	s := &Snapshot{Version: v, Config: cfg}
	for _, a := range addrs {
		d := r.spans[a]
		if k := len(s.Spans) - 1; k >= 0 {
			last := &s.Spans[k]
			end := last.Addr + uint64(len(last.Data))
			if a <= end {
				if tail := a + uint64(len(d)); tail > end {
					last.Data = append(last.Data, d[end-a:]...)
				}
				continue
			}
		}
		s.Spans = append(s.Spans, Span{a, d})
	}
	s.Config.Layout, s.Config.Facts = nil, nil
	return s
}

// Limits on decoded snapshots, which may come from a fuzzer.
const (
	snapshotMagic  = "pyprof-snapshot-1\n"
	maxSnapSpans   = 1 << 16
	maxSnapBytes   = 64 << 20
	maxSnapRanges  = 16
	maxSnapNameLen = 64
)

// Encode writes the snapshot in a compact binary form.
func (s *Snapshot) Encode(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString(snapshotMagic)
	put := func(v uint64) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString(s.Version.String() + "\n")
	put(s.Config.Runtime)
	put(s.Config.InterpHead)
	put(s.Config.TstateCurrent)
	put(uint64(len(s.Config.Scan)))
	for _, r := range s.Config.Scan {
		put(r.Addr)
		put(r.Size)
		b.WriteString(r.Name + "\n")
	}
	put(uint64(len(s.Spans)))
	for _, sp := range s.Spans {
		put(sp.Addr)
		put(uint64(len(sp.Data)))
		b.Write(sp.Data)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// errSnapshot is returned for malformed snapshot bytes.
var errSnapshot = errors.New("malformed snapshot")

// DecodeSnapshot parses Encode's output. It validates every length, as the
// bytes may be corrupt.
func DecodeSnapshot(data []byte) (*Snapshot, error) {
	r := bytes.NewReader(data)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return nil, errSnapshot
	}
	line := func() (string, error) {
		var out []byte
		for len(out) <= maxSnapNameLen {
			c, err := r.ReadByte()
			if err != nil {
				return "", errSnapshot
			}
			if c == '\n' {
				return string(out), nil
			}
			out = append(out, c)
		}
		return "", errSnapshot
	}
	get := func() (uint64, error) {
		var v uint64
		if err := binary.Read(r, binary.LittleEndian, &v); err != nil {
			return 0, errSnapshot
		}
		return v, nil
	}
	vs, err := line()
	if err != nil {
		return nil, err
	}
	s := &Snapshot{}
	if s.Version, err = pyversions.Parse(vs); err != nil {
		return nil, errSnapshot
	}
	var n uint64
	for _, p := range []*uint64{&s.Config.Runtime, &s.Config.InterpHead, &s.Config.TstateCurrent, &n} {
		if *p, err = get(); err != nil {
			return nil, err
		}
	}
	if n > maxSnapRanges {
		return nil, errSnapshot
	}
	for i := uint64(0); i < n; i++ {
		var rg Range
		if rg.Addr, err = get(); err != nil {
			return nil, err
		}
		if rg.Size, err = get(); err != nil {
			return nil, err
		}
		if rg.Name, err = line(); err != nil {
			return nil, err
		}
		s.Config.Scan = append(s.Config.Scan, rg)
	}
	if n, err = get(); err != nil || n > maxSnapSpans {
		return nil, errSnapshot
	}
	total := 0
	var end uint64
	for i := uint64(0); i < n; i++ {
		addr, err := get()
		if err != nil {
			return nil, err
		}
		size, err := get()
		if err != nil || size > uint64(r.Len()) || addr+size < addr || i > 0 && addr < end {
			return nil, errSnapshot
		}
		if total += int(size); total > maxSnapBytes {
			return nil, errSnapshot
		}
		d := make([]byte, size)
		if _, err := io.ReadFull(r, d); err != nil {
			return nil, errSnapshot
		}
		s.Spans = append(s.Spans, Span{addr, d})
		end = addr + size
	}
	return s, nil
}

// Open returns a Reader over the snapshot, with the layout of its version.
func (s *Snapshot) Open() (*Reader, error) {
	l, err := pyversions.LayoutFor(s.Version)
	if err != nil {
		return nil, err
	}
	cfg := s.Config
	cfg.Layout, cfg.Version = l, s.Version
	// A snapshot holds only the bytes once read, not whole pages.
	cfg.NoReadahead = true
	return New(s, cfg)
}
