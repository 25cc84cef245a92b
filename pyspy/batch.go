package pyspy

import "github.com/pyprof/pyprof/pyspy/mem"

// beginSample starts a sample's reads with one batch, in the order the
// previous sample's walks asked for (see mem.Cache.BeginOrdered): every
// thread's frame pointer first and the thread states, with their data
// stack tops, last; between them the last sample's footprint, the code
// objects and frame pages met lately, and also. With verify, the second
// read of what the last sample's verify read follows at once.
func (j *judge) beginSample(also []mem.Region, verify bool) {
	j.cache.BeginOrdered(j.firstWords, j.hotRegionsList(also), j.lastRegions)
	j.firstWords, j.lastRegions = j.firstWords[:0], j.lastRegions[:0]
	j.freshReads = 0
	j.checkCalls = verify
	if verify {
		j.fresh.Reset()
		for _, rg := range j.nextVerify {
			j.fresh.Want(rg.Addr, rg.Len)
		}
		if len(j.nextVerify) > 0 {
			j.fresh.FetchWanted()
			j.freshReads++
		}
	}
}

// order has the next sample's batch read t's frame pointer first, and
// its data stack and state last: the data stack right before the thread
// state that holds its top, so that a frame pushed after the copy of its
// slot is above the top only if it also was when copied. Before 3.11 the
// thread state comes last too, for its newer frame pointer.
func (j *judge) order(t *tstate) {
	if t.framePtr != 0 {
		j.firstWords = append(j.firstWords, t.framePtr)
	}
	if c := t.chunkRegion(); c.Len > 0 {
		j.lastRegions = append(j.lastRegions, c)
	}
	j.lastRegions = append(j.lastRegions, mem.Region{Addr: t.addr, Len: j.facts.ThreadState})
}

// Hot pages are those where walks met frame objects in the last
// hotSamples samples.
const hotSamples = 32

// hotRegionsList is what the next sample's first batch reads besides the
// last sample's footprint: hot code objects, also, and before 3.11 the
// pages where recent samples found frame objects.
func (j *judge) hotRegionsList(also []mem.Region) []mem.Region {
	regs := append(j.codes.RecentHeaders(j.hotRegions[:0]), also...)
	for p, seen := range j.hotPages {
		if j.stats.Samples-seen >= hotSamples {
			delete(j.hotPages, p)
			continue
		}
		regs = append(regs, mem.Region{Addr: p, Len: mem.PageSize})
	}
	j.hotRegions = regs
	return regs
}

// maxHotPages bounds the frame pages kept hot: CPython keeps at most 200
// frame objects on its free lists, besides one per code object.
const maxHotPages = 128

// hotFrames notes the pages of t's frame objects (before 3.11), which lie
// anywhere on the heap, taken from free lists: the running thread's next
// frames are likeliest on the pages its frames are on now.
func (j *judge) hotFrames(t *tstate) {
	for i := t.links + t.nlinks - 1; i >= t.links; i-- {
		j.hotPage(j.stack.Links[i].Addr)
	}
}

// hotPage notes the page of a frame object a walk met: a frame object is
// taken from free lists that the next calls reuse, so later samples find
// other frames on the same pages.
func (j *judge) hotPage(addr uint64) {
	p := j.hotWord(addr)
	// A frame may straddle a page boundary.
	if e := (addr + uint64(j.l.Frame.Localsplus) - 1) &^ (mem.PageSize - 1); e != p {
		j.hotPage(e)
	}
}

// hotWord marks the page of addr hot, and returns it.
func (j *judge) hotWord(addr uint64) uint64 {
	if j.hotPages == nil {
		j.hotPages = map[uint64]int{}
	}
	p := addr &^ (mem.PageSize - 1)
	if _, ok := j.hotPages[p]; ok || len(j.hotPages) < maxHotPages {
		j.hotPages[p] = j.stats.Samples
	}
	return p
}
