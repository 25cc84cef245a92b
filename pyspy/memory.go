package pyspy

import "github.com/pyprof/pyprof/pyspy/mem"

// Memory is the target's address space, as package mem defines it: the
// reader takes any, and a live process's batched reads make its samples
// cheaper.
type Memory = mem.Memory
