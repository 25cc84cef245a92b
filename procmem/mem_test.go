package procmem

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

// backends runs f against a fresh Process for each way of reading memory.
func backends(t *testing.T, c *pyChild, f func(t *testing.T, p *Process)) {
	for _, viaMem := range []bool{false, true} {
		name := "process_vm_readv"
		if viaMem {
			name = "proc_pid_mem"
		}
		t.Run(name, func(t *testing.T) {
			p := c.open(t)
			p.forceMem = viaMem
			f(t, p)
			if got := p.mem.Load() != nil; got != viaMem {
				t.Errorf("reading through /proc/PID/mem: %v, want %v", got, viaMem)
			}
		})
	}
}

func TestReadAt(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), memScript)
	page, big, pageSize := c.info["page"], c.info["big"], int(c.info["page_size"])
	hole := page + uint64(pageSize)
	backends(t, c, func(t *testing.T, p *Process) {
		for _, tc := range []struct {
			name    string
			addr    uint64
			n       int
			pattern func(int) byte
			off     int // of addr in pattern
		}{
			{"word", big, 8, bigPattern, 0},
			{"unaligned", big + 3, 61, bigPattern, 3},
			{"page", page, pageSize, pagePattern, 0},
			{"last byte before hole", hole - 1, 1, pagePattern, pageSize - 1},
			{"after hole", hole + uint64(pageSize), 100, page3Pattern, 0},
			{"64KiB", big, 65536, bigPattern, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := make([]byte, tc.n)
				before := p.Syscalls()
				n, err := p.ReadAt(b, int64(tc.addr))
				if err != nil || n != tc.n {
					t.Fatalf("ReadAt = %d, %v", n, err)
				}
				if p.Syscalls() == before {
					t.Error("syscall not counted")
				}
				for i := range b {
					if want := tc.pattern(tc.off + i); b[i] != want {
						t.Fatalf("byte %d = %#x, want %#x", i, b[i], want)
					}
				}
			})
		}

		for _, tc := range []struct {
			name  string
			addr  uint64
			n     int
			wantN int
		}{
			{"into hole", page + uint64(pageSize) - 16, 32, 16},
			{"across hole", page, 3 * pageSize, pageSize},
			{"in hole", hole + 8, 8, 0},
			{"null", 0, 8, 0},
			{"kernel", 0xffffffff81000000, 8, 0},
			{"negative", 1 << 63, 8, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := make([]byte, tc.n)
				n, err := p.ReadAt(b, int64(tc.addr))
				if !errors.Is(err, syscall.EFAULT) {
					t.Fatalf("ReadAt = %d, %v; want EFAULT", n, err)
				}
				var re *ReadError
				if !errors.As(err, &re) || re.Addr != tc.addr || re.Len != tc.n {
					t.Errorf("error %#v does not describe the read", err)
				}
				if n != tc.wantN {
					t.Errorf("n = %d, want %d", n, tc.wantN)
				}
			})
		}

		if n, err := p.ReadAt(nil, 0); n != 0 || err != nil {
			t.Errorf("empty read = %d, %v", n, err)
		}
		var _ io.ReaderAt = p
	})
}

func TestReadBatch(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), memScript)
	page, big, pageSize := c.info["page"], c.info["big"], c.info["page_size"]
	hole := page + pageSize

	type region struct {
		addr uint64
		n    int
		want func(int) byte // nil: the region must fail
	}
	at := func(pattern func(int) byte, off int) func(int) byte {
		return func(i int) byte { return pattern(off + i) }
	}
	regions := []region{
		{big, 64, at(bigPattern, 0)},
		{big + 1000, 3, at(bigPattern, 1000)},
		{hole, 8, nil}, // unmapped
		{big + 4096, 100, at(bigPattern, 4096)},
		{big, 0, nil},      // empty: skipped, never an error
		{hole - 4, 8, nil}, // runs into the hole
		{page, 16, at(pagePattern, 0)},
		{0, 8, nil}, // null
		{hole + pageSize, 32, at(page3Pattern, 0)},
	}
	backends(t, c, func(t *testing.T, p *Process) {
		addrs := make([]uint64, len(regions))
		bufs := make([][]byte, len(regions))
		for i, r := range regions {
			addrs[i] = r.addr
			bufs[i] = make([]byte, r.n)
		}
		before := p.Syscalls()
		err := p.ReadBatch(addrs, bufs)
		calls := p.Syscalls() - before
		var be *BatchError
		if !errors.As(err, &be) || !errors.Is(err, syscall.EFAULT) {
			t.Fatalf("ReadBatch = %v, want a *BatchError with EFAULT", err)
		}
		var failed []int
		for _, re := range be.Errs {
			failed = append(failed, re.Index)
			if re.Addr != regions[re.Index].addr || re.Len != regions[re.Index].n {
				t.Errorf("error %v does not describe region %d", re, re.Index)
			}
		}
		if want := []int{2, 5, 7}; fmt.Sprint(failed) != fmt.Sprint(want) || fmt.Sprint(be.Failed()) != fmt.Sprint(want) {
			t.Errorf("failed regions %v (Failed: %v), want %v", failed, be.Failed(), want)
		}
		for i, r := range regions {
			if r.want == nil {
				continue
			}
			for j, got := range bufs[i] {
				if got != r.want(j) {
					t.Fatalf("region %d byte %d = %#x, want %#x", i, j, got, r.want(j))
				}
			}
		}
		// One call reaches each bad region, and one more finishes.
		if p.mem.Load() == nil && calls != 4 {
			t.Errorf("%d process_vm_readv calls, want 4", calls)
		}

		if err := p.ReadBatch(addrs[:2], bufs[:3]); err == nil {
			t.Error("mismatched lengths accepted")
		}
		if err := p.ReadBatch(nil, nil); err != nil {
			t.Errorf("empty batch: %v", err)
		}
	})
}

// More regions than one process_vm_readv takes.
func TestReadBatchChunks(t *testing.T) {
	c := startPython(t, needFile(t, systemPython), memScript)
	big := c.info["big"]
	const n = 2*iovMax + 100
	for _, bad := range []int{-1, 0, iovMax - 1, iovMax, n - 1} {
		t.Run(fmt.Sprint("bad=", bad), func(t *testing.T) {
			p := c.open(t)
			addrs := make([]uint64, n)
			bufs := make([][]byte, n)
			for i := range addrs {
				addrs[i] = big + uint64(i*8)%65536
				bufs[i] = make([]byte, 8)
			}
			if bad >= 0 {
				addrs[bad] = 8
			}
			err := p.ReadBatch(addrs, bufs)
			calls := p.Syscalls()
			var be *BatchError
			switch {
			case bad < 0 && err != nil:
				t.Fatal(err)
			case bad >= 0 && (!errors.As(err, &be) || len(be.Errs) != 1 || be.Errs[0].Index != bad):
				t.Fatalf("ReadBatch = %v, want region %d to fail", err, bad)
			}
			want := uint64(3)
			if bad >= 0 && bad%iovMax != iovMax-1 && bad != n-1 {
				want++ // the rest of the chunk after the bad region
			}
			if calls != want {
				t.Errorf("%d calls, want %d", calls, want)
			}
			for i, b := range bufs {
				if i == bad {
					continue
				}
				for j := range b {
					if w := bigPattern(int(addrs[i]-big) + j); b[j] != w {
						t.Fatalf("region %d byte %d = %#x, want %#x", i, j, b[j], w)
					}
				}
			}
		})
	}
}

func BenchmarkReadAt(b *testing.B) {
	c := startPython(b, needFile(b, systemPython), memScript)
	big := int64(c.info["big"])
	for _, viaMem := range []bool{false, true} {
		for _, size := range []int{64, 512, 4096, 16384} {
			name := fmt.Sprintf("vm_readv/%d", size)
			if viaMem {
				name = fmt.Sprintf("proc_mem/%d", size)
			}
			b.Run(name, func(b *testing.B) {
				p := c.open(b)
				p.forceMem = viaMem
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.ReadAt(buf, big); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(p.Syscalls())/float64(b.N), "syscalls/op")
			})
		}
	}
}

// Eight scattered 64-byte reads, the shape of reading a few interpreter
// structs: one batch against eight ReadAt calls.
func BenchmarkReadBatch(b *testing.B) {
	c := startPython(b, needFile(b, systemPython), memScript)
	big := c.info["big"]
	addrs := make([]uint64, 8)
	bufs := make([][]byte, 8)
	for i := range addrs {
		addrs[i] = big + uint64(i)*8192 + 40
		bufs[i] = make([]byte, 64)
	}
	b.Run("batch", func(b *testing.B) {
		p := c.open(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := p.ReadBatch(addrs, bufs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(p.Syscalls())/float64(b.N), "syscalls/op")
	})
	b.Run("separate", func(b *testing.B) {
		p := c.open(b)
		b.ReportAllocs()
		for b.Loop() {
			for i, a := range addrs {
				if _, err := p.ReadAt(bufs[i], int64(a)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(p.Syscalls())/float64(b.N), "syscalls/op")
	})
}
