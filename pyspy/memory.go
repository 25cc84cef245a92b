package pyspy

import "io"

// Memory is the target's address space. Offsets passed to ReadAt are
// virtual addresses in the target. A short read must return an error.
type Memory = io.ReaderAt

// BatchReader is implemented by memories that can fill several regions in a
// single operation, such as process_vm_readv with many iovecs. Callers fall
// back to one ReadAt per region when it is absent. An error means at least
// one region could not be read in full.
type BatchReader interface {
	ReadBatch(addrs []uint64, bufs [][]byte) error
}
