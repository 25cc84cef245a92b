package flamegraph

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// tree is a profile's stacks merged into a call tree, pruned, with its
// nodes in pre-order and every node's children in label order. That order
// is all a renderer needs: a node's x offset is its parent's plus the
// counts of the siblings before it.
type tree struct {
	frames   []Frame  // the frames kept nodes refer to
	labels   []string // frames[i].String()
	nodes    []node   // nodes[0] is the root
	total    int64
	maxDepth int
	pruned   int // nodes of the full tree left out
}

type node struct {
	frame int32 // index into tree.frames; -1 for the root
	depth int32
	count int64 // samples in this node and below
	// self is the samples that end here, plus those of pruned children:
	// they stay in their parent's width rather than disappear.
	self int64
}

// frameKey is a frame's identity for merging. FirstLine is left out: it is
// a property of the function, not of the call site.
type frameKey struct {
	kind Kind
	name string
	file string
	line int
}

// buildTree merges p's stacks and keeps the nodes with at least
// keepFraction of all samples, and then only the maxNodes largest: a
// child never has more samples than its parent, so a count threshold
// always keeps whole paths from the root.
func buildTree(p *Profile, keepFraction float64, maxNodes int) (*tree, error) {
	// Canonical frames, so that equal frames at different indexes merge.
	canon := make([]int32, len(p.Frames))
	ids := map[frameKey]int32{}
	var frames []Frame
	for i, f := range p.Frames {
		k := frameKey{f.Kind, f.Name, f.File, f.Line}
		id, ok := ids[k]
		if !ok {
			id = int32(len(frames))
			ids[k] = id
			frames = append(frames, f)
		}
		canon[i] = id
	}
	labels := make([]string, len(frames))
	for i, f := range frames {
		labels[i] = f.String()
	}
	byLabel := make([]int32, len(frames))
	for i := range byLabel {
		byLabel[i] = int32(i)
	}
	slices.SortFunc(byLabel, func(a, b int32) int {
		if c := cmp.Compare(labels[a], labels[b]); c != 0 {
			return c
		}
		fa, fb := frames[a], frames[b]
		return cmp.Or(cmp.Compare(fa.Kind, fb.Kind), cmp.Compare(fa.Name, fb.Name),
			cmp.Compare(fa.File, fb.File), cmp.Compare(fa.Line, fb.Line))
	})
	rank := make([]int32, len(frames))
	for r, id := range byLabel {
		rank[id] = int32(r)
	}

	// Stacks as sequences of ranks, sorted: then stacks sharing a prefix
	// are adjacent, and walking them in order creates the trie's nodes in
	// pre-order with children already in label order, without a map.
	type seq struct {
		ranks []int32
		count int64
	}
	seqs := make([]seq, 0, len(p.Stacks))
	var total int64
	for si, s := range p.Stacks {
		if s.Count <= 0 {
			continue
		}
		rs := make([]int32, len(s.Frames))
		for j, fi := range s.Frames {
			if fi < 0 || fi >= len(canon) {
				return nil, fmt.Errorf("stack %d: frame index %d out of range [0,%d)", si, fi, len(canon))
			}
			rs[j] = rank[canon[fi]]
		}
		seqs = append(seqs, seq{rs, s.Count})
		total += s.Count
	}
	slices.SortFunc(seqs, func(a, b seq) int { return slices.Compare(a.ranks, b.ranks) })

	// A node's count is final once the walk leaves it; one below keepMin
	// is dropped then, and its descendants, being smaller, were dropped
	// before it, so the full tree is never held in memory.
	keepMin := max(int64(math.Ceil(float64(total)*keepFraction)), 1)
	full := []node{{frame: -1, depth: 0, count: total}}
	path := []int{0} // path[d] is the node at depth d on the current stack
	pruned := 0
	leave := func(depth int) {
		for len(path) > depth+1 {
			n := path[len(path)-1]
			path = path[:len(path)-1]
			if full[n].count < keepMin {
				full = full[:n]
				pruned++
			}
		}
	}
	var prev []int32
	for _, s := range seqs {
		common := 0
		for common < len(prev) && common < len(s.ranks) && prev[common] == s.ranks[common] {
			common++
		}
		leave(common)
		for d := common; d < len(s.ranks); d++ {
			path = append(path, len(full))
			full = append(full, node{frame: byLabel[s.ranks[d]], depth: int32(d + 1)})
		}
		for _, n := range path[1:] {
			full[n].count += s.count
		}
		prev = s.ranks
	}
	leave(0)

	if maxNodes > 0 && len(full) > maxNodes {
		counts := make([]int64, len(full))
		for i, n := range full {
			counts[i] = n.count
		}
		slices.Sort(counts)
		// Nodes tied at the cut go together, so the limit may leave
		// fewer than maxNodes but never more.
		keepMin = counts[len(counts)-1-maxNodes] + 1
	}

	t := &tree{total: total, pruned: pruned}
	remap := make([]int32, len(frames))
	for i := range remap {
		remap[i] = -1
	}
	parents := []int{} // parents[d] is the kept node at depth d
	for _, n := range full {
		if n.count < keepMin && n.frame >= 0 {
			t.pruned++
			continue
		}
		d := int(n.depth)
		parents = append(parents[:d], len(t.nodes))
		if d > 0 {
			t.nodes[parents[d-1]].self -= n.count
		}
		if n.frame >= 0 {
			id := remap[n.frame]
			if id < 0 {
				id = int32(len(t.frames))
				remap[n.frame] = id
				t.frames = append(t.frames, frames[n.frame])
				t.labels = append(t.labels, labels[n.frame])
			}
			n.frame = id
		}
		n.self += n.count
		t.nodes = append(t.nodes, n)
		t.maxDepth = max(t.maxDepth, d)
	}
	return t, nil
}
