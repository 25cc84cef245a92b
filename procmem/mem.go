package procmem

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

var _ io.ReaderAt = (*Process)(nil)

// iovMax is the kernel's UIO_MAXIOV: the most iovecs, local or remote, that
// one process_vm_readv accepts.
const iovMax = 1024

// ReadError reports a region of the target that could not be read in full.
// Err is syscall.EFAULT when the region is not (entirely) mapped readable,
// whichever way the memory was read.
type ReadError struct {
	Index int    // position of the region in a ReadBatch; 0 for ReadAt
	Addr  uint64 // start of the region
	Len   int    // length of the region
	Err   error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("read %#x+%d: %v", e.Addr, e.Len, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// BatchError reports the regions of a ReadBatch that could not be read. All
// regions not listed were filled. errors.As finds the first *ReadError and
// errors.Is matches the errno of any of them.
type BatchError struct {
	Errs []*ReadError // in region order
}

func (e *BatchError) Error() string {
	if len(e.Errs) == 1 {
		return e.Errs[0].Error()
	}
	return fmt.Sprintf("%v (and %d more regions)", e.Errs[0], len(e.Errs)-1)
}

// Failed lists the indexes of the regions that could not be read, in
// order: with it a BatchError is the partial failure that pyspy/mem's
// BatchReader promises, which the reader's cache finds without errors.As.
func (e *BatchError) Failed() []int {
	out := make([]int, len(e.Errs))
	for i, re := range e.Errs {
		out[i] = re.Index
	}
	return out
}

func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, re := range e.Errs {
		errs[i] = re
	}
	return errs
}

// ReadAt reads len(b) bytes of the target at virtual address addr. It follows
// io.ReaderAt: when fewer bytes are read the error is non-nil, a *ReadError
// wrapping syscall.EFAULT if the range runs into memory that is not mapped
// readable, syscall.ESRCH if the process is gone. Part of b may have been
// written even then.
func (p *Process) ReadAt(b []byte, addr int64) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if m := p.mem.Load(); m != nil {
		return p.preadFull(m, b, uint64(addr), 0)
	}
	local := [1]unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := [1]unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := p.vmReadv(local[:], remote[:])
	if err != nil {
		m, err := p.fallBack(err)
		if m != nil {
			return p.preadFull(m, b, uint64(addr), 0)
		}
		return 0, &ReadError{Addr: uint64(addr), Len: len(b), Err: err}
	}
	if n < len(b) {
		return n, &ReadError{Addr: uint64(addr), Len: len(b), Err: syscall.EFAULT}
	}
	return n, nil
}

func (p *Process) vmReadv(local []unix.Iovec, remote []unix.RemoteIovec) (int, error) {
	if p.forceMem {
		return 0, syscall.ENOSYS
	}
	for {
		p.syscalls.Add(1)
		n, err := unix.ProcessVMReadv(p.pid, local, remote, 0)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// fallBack decides, after process_vm_readv failed with err, whether reads
// should go through /proc/PID/mem from now on, and opens it if so. EPERM
// from process_vm_readv while /proc/PID/mem opens means a seccomp filter
// (Docker's default profile, for one) rather than missing ptrace rights,
// because opening mem checks the same rights. It returns the error to report
// when there is no fallback.
func (p *Process) fallBack(err error) (*memFile, error) {
	if err != syscall.ENOSYS && err != syscall.EPERM {
		return nil, err
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	if m := p.mem.Load(); m != nil {
		return m, nil
	}
	f, oerr := os.Open(p.path("mem"))
	if oerr != nil {
		if err == syscall.ENOSYS {
			return nil, p.fileErr(oerr, "")
		}
		return nil, err
	}
	m := &memFile{f: f, fd: int(f.Fd())}
	p.mem.Store(m)
	return m, nil
}

// preadFull reads b from /proc/PID/mem. The kernel returns a short count
// when the range runs into an unmapped page and EIO when it starts in one;
// both become EFAULT so that callers see the same error from either path.
func (p *Process) preadFull(m *memFile, b []byte, addr uint64, index int) (int, error) {
	rerr := func(err error) error {
		return &ReadError{Index: index, Addr: addr, Len: len(b), Err: err}
	}
	// pread takes a signed offset; the upper half is kernel space anyway.
	if addr > math.MaxInt64 || uint64(len(b)) > math.MaxInt64-addr {
		return 0, rerr(syscall.EFAULT)
	}
	done := 0
	for done < len(b) {
		p.syscalls.Add(1)
		n, err := unix.Pread(m.fd, b[done:], int64(addr)+int64(done))
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EIO:
			return done, rerr(syscall.EFAULT)
		case err != nil:
			return done, rerr(err)
		case n == 0:
			// Reading mem of a process whose address space is
			// gone returns 0 rather than an error.
			if done == 0 && !p.alive() {
				return 0, rerr(syscall.ESRCH)
			}
			return done, rerr(syscall.EFAULT)
		}
		done += n
	}
	return done, nil
}

// alive reports whether the process still has an address space to read.
func (p *Process) alive() bool {
	b, err := os.ReadFile(p.path("stat"))
	if err != nil {
		return false
	}
	st, err := statState(b)
	return err == nil && st != 'Z' && st != 'X'
}

// batchScratch holds the iovec arrays of one ReadBatch call, pooled so a
// sampler reading the same shape of batch 100 times a second does not
// allocate them each time.
type batchScratch struct {
	idx    []int
	local  []unix.Iovec
	remote []unix.RemoteIovec
}

var scratchPool = sync.Pool{New: func() any { return new(batchScratch) }}

// ReadBatch fills each bufs[i] from address addrs[i] of the target, using one
// process_vm_readv per 1024 regions when every region is readable. Regions of
// length 0 are skipped. When some regions cannot be read, the others are
// still filled and the error is a *BatchError naming the failed ones. An
// error of any other type (ESRCH, EPERM) is about the batch as a whole, and
// no buffer should be trusted.
func (p *Process) ReadBatch(addrs []uint64, bufs [][]byte) error {
	if len(addrs) != len(bufs) {
		return fmt.Errorf("read batch: %d addresses for %d buffers", len(addrs), len(bufs))
	}
	if m := p.mem.Load(); m != nil {
		return p.readBatchMem(m, addrs, bufs)
	}

	s := scratchPool.Get().(*batchScratch)
	defer func() {
		// Drop the buffer pointers so the pool does not keep the
		// caller's buffers alive.
		clear(s.local)
		s.idx, s.local, s.remote = s.idx[:0], s.local[:0], s.remote[:0]
		scratchPool.Put(s)
	}()
	for i, b := range bufs {
		if len(b) == 0 {
			continue
		}
		s.idx = append(s.idx, i)
		iov := unix.Iovec{Base: &b[0]}
		iov.SetLen(len(b))
		s.local = append(s.local, iov)
		s.remote = append(s.remote, unix.RemoteIovec{Base: uintptr(addrs[i]), Len: len(b)})
	}

	var failed []*ReadError
	for start := 0; start < len(s.idx); {
		end := min(start+iovMax, len(s.idx))
		n, err := p.vmReadv(s.local[start:end], s.remote[start:end])
		if err != nil {
			if err != syscall.EFAULT {
				m, err := p.fallBack(err)
				if m != nil {
					return p.readBatchMem(m, addrs, bufs)
				}
				return fmt.Errorf("read batch of %d regions: %w", len(s.idx), err)
			}
			// The kernel reports an error only when it copied
			// nothing, so the first region of the call is bad.
			i := s.idx[start]
			failed = append(failed, &ReadError{Index: i, Addr: addrs[i], Len: len(bufs[i]), Err: err})
			start++
			continue
		}
		// The count stops exactly where the first unreadable page
		// was met; that region failed and the rest are retried.
		k := start
		for ; k < end; k++ {
			l := int(s.remote[k].Len)
			if n < l {
				break
			}
			n -= l
		}
		if k == end {
			start = end
			continue
		}
		i := s.idx[k]
		failed = append(failed, &ReadError{Index: i, Addr: addrs[i], Len: len(bufs[i]), Err: syscall.EFAULT})
		start = k + 1
	}
	if failed != nil {
		return &BatchError{Errs: failed}
	}
	return nil
}

// readBatchMem is ReadBatch through /proc/PID/mem, one pread per region.
func (p *Process) readBatchMem(m *memFile, addrs []uint64, bufs [][]byte) error {
	var failed []*ReadError
	for i, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if _, err := p.preadFull(m, b, addrs[i], i); err != nil {
			var re *ReadError
			if !errors.As(err, &re) || re.Err != syscall.EFAULT {
				return fmt.Errorf("read batch of %d regions: %w", len(bufs), err)
			}
			failed = append(failed, re)
		}
	}
	if failed != nil {
		return &BatchError{Errs: failed}
	}
	return nil
}
