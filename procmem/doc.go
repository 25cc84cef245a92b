// Package procmem gives access to a live Linux process from the outside: its
// memory, its /proc files, the ELF files it has mapped, and a way to stop all
// of its threads for a consistent read.
//
// It is pyprof's one /proc layer. An FS is rooted at a directory (NewFS;
// tests use fixture trees), and everything the module reads of /proc goes
// through it: one parser per file (stat, status, maps, syscall), the
// listing of a process's threads, and the run-state files the sampler
// rereads on every sample, which a ThreadStater per process keeps open and
// closes once their threads or the process are gone. What is read rarely
// (command lines, a process's CPU time and memory for top's table) is read
// with gopsutil, rooted at the same directory; the hot path keeps its own
// cached reads, one pread per thread into a reused buffer, which gopsutil,
// opening and parsing whole files into new strings, cannot match.
//
// Memory is read with process_vm_readv, which needs no ptrace attachment and
// costs one system call per read, or per batch of up to 1024 regions. Where a
// seccomp policy refuses that call, reads fall back to /proc/PID/mem.
//
// Paths found in the target (its executable, the files in its maps) are in
// the target's mount namespace, so files are opened through /proc/PID/root or
// /proc/PID/map_files rather than directly; this is what makes profiling a
// process inside a container, or one whose binary was replaced by an upgrade,
// read the bytes that are actually mapped. Likewise, thread ids found in the
// target's memory are numbered by its own pid namespace; ThreadIDs maps
// them to the ids /proc uses.
//
// Errors keep the underlying syscall.Errno reachable with errors.Is, so a
// caller can tell a vanished process (ESRCH) from a permission problem
// (EPERM) or an unmapped address (EFAULT). Turning those into advice for a
// user is left to the caller.
//
// The package imports nothing else from this module, and of others only
// golang.org/x/sys and gopsutil.
package procmem
