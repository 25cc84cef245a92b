package procmem

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
)

// A process in a container has an id in every pid namespace from the FS's
// (the one its procfs was mounted for, normally pyprof's own) down to its
// own. /proc names it and its threads with the FS's ids, and so do
// process_vm_readv, ptrace and the tools a user compares with (top -H, ps
// on the host). The process itself, and every thread id it stores in its
// memory (gettid(), glibc's struct pthread, CPython's native_thread_id),
// uses the ids of its own namespace. NSpid in /proc/PID/task/TID/status
// lists a thread's ids from the FS's namespace inwards.

// maxPidNSLevels bounds NSpid: the kernel nests at most 32 pid namespaces
// below the initial one.
const maxPidNSLevels = 33

// ThreadIDs maps the thread ids of one process between its own pid
// namespace and the FS's. It reads each thread's status once, and lists the
// threads again only when asked for an id it does not know. It is safe for
// concurrent use.
type ThreadIDs struct {
	p      *Process
	ownPid int
	nested bool

	mu       sync.Mutex
	toFS     map[int]int // own namespace → FS's
	fromFS   map[int]int // FS's → own namespace, for the threads read so far
	listings int
}

// NewThreadIDs learns which pid namespace the process is in. For a process
// in the FS's own namespace, or on a kernel without NSpid (before 4.1),
// every id maps to itself and nothing more is read.
func (p *Process) NewThreadIDs() (*ThreadIDs, error) {
	st, err := p.Status()
	if err != nil {
		return nil, err
	}
	m := &ThreadIDs{p: p, ownPid: p.pid}
	if n := len(st.NSpid); n > 1 {
		if st.NSpid[0] != p.pid {
			return nil, fmt.Errorf("process %d: NSpid %v does not start with its pid", p.pid, st.NSpid)
		}
		m.ownPid, m.nested = st.NSpid[n-1], true
		m.toFS, m.fromFS = map[int]int{}, map[int]int{}
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := m.list(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Nested reports whether the process runs in a pid namespace below the
// FS's, as in a container that does not share the host's.
func (m *ThreadIDs) Nested() bool { return m.nested }

// OwnPid returns the process's id in its own pid namespace: what
// os.getpid() returns inside it.
func (m *ThreadIDs) OwnPid() int { return m.ownPid }

// OwnThreads returns the ids of the process's threads in its own pid
// namespace, sorted.
func (m *ThreadIDs) OwnThreads() ([]int, error) {
	if !m.nested {
		return m.p.Threads()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.list(); err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(m.toFS))
	for own := range m.toFS {
		ids = append(ids, own)
	}
	slices.Sort(ids)
	return ids, nil
}

// ToFS translates thread ids of the process's own namespace into the FS's,
// in place. An id that no thread of the process has is set to 0: its
// thread has exited, and its number may belong to another process in the
// FS's namespace. The threads are listed again at most once per call, only
// if some id is unknown.
func (m *ThreadIDs) ToFS(ids []int) {
	if !m.nested {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	listed := false
	for i, own := range ids {
		if own == 0 {
			continue
		}
		fs, ok := m.toFS[own]
		if !ok && !listed {
			listed = true
			// Without a listing the process may be gone; the id
			// then stays unknown.
			_ = m.list()
			fs, ok = m.toFS[own]
		}
		if !ok {
			fs = 0
		}
		ids[i] = fs
	}
}

// Listings returns how often the threads have been listed, for tests of
// the caching.
func (m *ThreadIDs) Listings() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listings
}

// list reads the status of threads not seen before and forgets those that
// have exited, whose ids the namespace may hand out again.
func (m *ThreadIDs) list() error {
	m.listings++
	tids, err := m.p.Threads()
	if err != nil {
		return err
	}
	for _, fs := range tids {
		if _, ok := m.fromFS[fs]; ok {
			continue
		}
		st, err := m.p.ThreadStatus(fs)
		if errors.Is(err, syscall.ESRCH) {
			continue // exited since the listing
		}
		if err != nil {
			return err
		}
		if len(st.NSpid) == 0 || st.NSpid[0] != fs {
			return fmt.Errorf("thread %d of process %d: NSpid %v does not start with its id", fs, m.p.pid, st.NSpid)
		}
		own := st.NSpid[len(st.NSpid)-1]
		m.fromFS[fs] = own
		m.toFS[own] = fs
	}
	for fs, own := range m.fromFS {
		if _, live := slices.BinarySearch(tids, fs); !live {
			delete(m.fromFS, fs)
			if m.toFS[own] == fs {
				delete(m.toFS, own)
			}
		}
	}
	return nil
}
