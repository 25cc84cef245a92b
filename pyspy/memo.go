package pyspy

import (
	"errors"

	"github.com/pyprof/pyprof/pyspy/frames"
	"github.com/pyprof/pyprof/pyspy/mem"
)

// A thread that does not hold the GIL cannot change its Python stack, and
// most threads of a service wait (for work, on a lock, in select) most of
// the time. Reading their stacks again every sample is most of the cost of
// a sample of such a process, so a thread whose innermost frame pointer
// and data stack top are as they were, and that held the GIL neither then
// nor now, keeps the stack last walked, for up to about reuseFor samples;
// the thread is then walked again, its stack's memory read in that
// sample's first batch.
const reuseFor = 16

// stackMemo is a thread's stack as last walked.
type stackMemo struct {
	frames     []Frame
	truncated  bool
	frame, top uint64
	walked     int          // sample of the walk
	seen       int          // last sample the thread was there
	window     int          // samples it may be reused for
	regions    []mem.Region // memory the walk read, for the refreshing batch
}

// stillStack returns the stack remembered for the thread at addr when it
// may stand for this sample's.
func (r *Reader) stillStack(addr uint64, t *tstate, gil uint64, opts SampleOptions) *stackMemo {
	m := r.memos[addr]
	if m == nil || !opts.Reuse || opts.Locals || addr == gil || m.frame != t.frame || m.top != t.top || t.frame == 0 ||
		r.stats.Samples-m.walked >= m.window {
		return nil
	}
	m.seen = r.stats.Samples
	r.stats.Reused++
	if r.stats.Samples-m.walked == m.window-1 {
		// Walked again next sample: have its memory in that batch.
		r.scratch.refresh = append(r.scratch.refresh, m.regions...)
	}
	return m
}

// remember keeps a walk for stillStack, or forgets one that failed or
// that held the GIL.
func (r *Reader) remember(addr uint64, ts *tstate, t *Thread, err error, gil uint64, opts SampleOptions) {
	if !opts.Reuse || err != nil && !errors.Is(err, frames.ErrTruncated) || addr == gil || opts.Locals {
		delete(r.memos, addr)
		return
	}
	if r.memos == nil {
		r.memos = map[uint64]*stackMemo{}
	}
	// Swept only once the memos outnumber the threads well: a sweep
	// visits every memo, and one per thread would cost a process of
	// many threads a pass over all of them for each.
	if len(r.memos) > 2*maxCheckThreads+2*r.scratch.threads {
		for a, m := range r.memos {
			if r.stats.Samples-m.seen > reuseFor {
				delete(r.memos, a)
			}
		}
	}
	m := r.memos[addr]
	if m == nil {
		m = &stackMemo{}
		r.memos[addr] = m
	}
	m.frames = append(m.frames[:0], t.Frames...)
	m.truncated = t.Truncated
	m.frame, m.top, m.walked, m.seen = ts.frame, ts.top, r.stats.Samples, r.stats.Samples
	// Spread the walks of many waiting threads over the samples.
	m.window = reuseFor/2 + int(addr>>4)%reuseFor
	m.regions = m.regions[:0]
	if c := ts.chunkRegion(); c.Len > 0 {
		m.regions = append(m.regions, c)
	} else {
		for _, lk := range r.scratch.stack.Links[ts.links : ts.links+ts.nlinks] {
			m.regions = append(m.regions, mem.Region{Addr: lk.Addr, Len: uint64(r.l.Frame.Localsplus)})
		}
	}
}
