// Package mem is how the stack reader sees a target's memory: the Memory
// interface every decoder reads through, the batch reads a live process
// offers and what their failures promise, the per-sample read cache that
// wraps a Memory and is one itself, and the sticky field decoder that
// reads the members of one bulk-read struct.
//
// It never touches the operating system: a live process (package procmem),
// a snapshot file or a fuzzer's bytes are all just a Memory.
package mem

import "io"

// Memory is the target's address space. Offsets passed to ReadAt are
// virtual addresses in the target. A short read must return an error.
type Memory = io.ReaderAt

// BatchReader is implemented by memories that can fill several regions in a
// single operation, such as process_vm_readv with many iovecs. Callers fall
// back to one ReadAt per region when it is absent.
//
// ReadBatch fills each bufs[i] from address addrs[i]. A nil error means
// every region was filled. When some regions could not be read (they are
// not mapped), the others are still filled and the error is a
// PartialError naming the ones that were not. Any other error is about the
// batch as a whole (the process is gone, reads are not permitted): no
// buffer may be trusted.
type BatchReader interface {
	ReadBatch(addrs []uint64, bufs [][]byte) error
}

// PartialError is the error of a ReadBatch that filled some of its regions
// but not all. It may be wrapped; find it with errs.As, which unlike
// errors.As does not allocate.
type PartialError interface {
	error
	// Failed lists, in increasing order, the indexes in the batch of
	// the regions that were not filled.
	Failed() []int
}

// Region is a range of target memory.
type Region struct{ Addr, Len uint64 }
