package proctree

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/pyprof/pyprof/procmem"
)

// maxDepth bounds every walk up a chain of parents. Real chains are a few
// dozen deep; the bound only stops a loop that pids reused during a walk
// could in theory create.
const maxDepth = 4096

// Ancestors returns pid's parent, grandparent, and so on up to 1 (or up to
// the last process visible in this pid namespace). Each step reads one
// stat file, so the chain is not a single snapshot: an ancestor that exits
// during the walk has had its children handed to another process, and the
// walk follows the new parent instead.
func Ancestors(fsys procmem.FS, pid int) ([]int, error) {
	ppid, err := parent(fsys, pid)
	if err != nil {
		return nil, err
	}
	var chain []int
	cur, retries := pid, 0
	for ppid > 0 && len(chain) < maxDepth {
		if ppid == 1 {
			chain = append(chain, ppid)
			break
		}
		next, err := parent(fsys, ppid)
		if errors.Is(err, syscall.ESRCH) {
			// Once the kernel has reparented cur, its stat names the
			// new parent; until then there is nothing better to give.
			again, err := parent(fsys, cur)
			if err != nil || again == ppid || retries == 3 {
				break
			}
			retries++
			ppid = again
			continue
		}
		if err != nil {
			return chain, err
		}
		chain = append(chain, ppid)
		cur, ppid = ppid, next
	}
	return chain, nil
}

func parent(fsys procmem.FS, pid int) (int, error) {
	st, err := fsys.Stat(pid)
	return st.PPid, err
}

// Descendants returns every process whose chain of parents reaches root,
// parents before their children, from one scan of /proc. The error wraps
// syscall.ESRCH when root itself is not running.
func Descendants(fsys procmem.FS, root int) ([]Proc, error) {
	procs, err := stats(fsys)
	if err != nil {
		return nil, err
	}
	t := newTree(procs)
	if _, ok := t.byPid[root]; !ok {
		return nil, fmt.Errorf("process %d: %w", root, syscall.ESRCH)
	}
	return fillAll(fsys, t.descendants(root)), nil
}

// tree indexes one scan of /proc by pid and by parent.
type tree struct {
	procs    []Proc
	byPid    map[int]int   // pid -> index in procs
	children map[int][]int // pid -> indexes of its children, in pid order
}

func newTree(procs []Proc) *tree {
	t := &tree{
		procs:    procs,
		byPid:    make(map[int]int, len(procs)),
		children: make(map[int][]int),
	}
	for i, p := range procs {
		t.byPid[p.Pid] = i
		t.children[p.PPid] = append(t.children[p.PPid], i)
	}
	return t
}

// descendants walks breadth first, so a parent always comes before its
// children. The seen set guards against a process listed as its own
// ancestor, which a corrupt fixture could do.
func (t *tree) descendants(root int) []Proc {
	var out []Proc
	seen := map[int]bool{root: true}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, i := range t.children[pid] {
			p := t.procs[i]
			if seen[p.Pid] {
				continue
			}
			seen[p.Pid] = true
			out = append(out, p)
			queue = append(queue, p.Pid)
		}
	}
	return out
}

// ancestors returns the pids above pid that are in the snapshot, nearest
// first.
func (t *tree) ancestors(pid int) []int {
	var chain []int
	i, ok := t.byPid[pid]
	for ok && len(chain) < maxDepth {
		ppid := t.procs[i].PPid
		if ppid <= 0 || ppid == t.procs[i].Pid {
			break
		}
		chain = append(chain, ppid)
		i, ok = t.byPid[ppid]
	}
	return chain
}
