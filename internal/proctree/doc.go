// Package proctree answers two questions about the processes in /proc: which
// process a user means by a --pgrep pattern, and which processes descend
// from a root, so that a recording can follow the subprocesses it spawns.
//
// Matching follows the habits of pgrep, with two changes a profiler needs.
// A pattern is tried on the names people call a process (its comm, its
// executable, and for an interpreter the script or module it runs) before it
// is tried on whole command lines, because the command lines of unrelated
// processes (an editor, a tail -f, the shell that launched pyprof) often
// mention the name too. And pyprof itself and its ancestors are never
// candidates, since `sudo pyprof record --pgrep gunicorn` contains the
// pattern in its own command line and in its sudo's.
//
// Everything is read through a procmem.FS, rooted at a configurable
// directory, so tests run against fixture trees and a profiler in a
// container can read the host's /proc from a bind mount. The tree is built
// from one scan of every process's stat file (procmem.FS.Stats) rather
// than with gopsutil's Children, which scans all of /proc once for each
// process it is asked about; see BenchmarkDescendantsGopsutil.
package proctree
