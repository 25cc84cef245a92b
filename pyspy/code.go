package pyspy

import "github.com/pyprof/pyprof/pyspy/mem"

// Hot pages are those where walks met frame objects in the last
// hotSamples samples.
const hotSamples = 32

// hotRegionsList is what the next sample's first batch reads besides the
// last sample's footprint: hot code objects, and before 3.11 the pages
// where recent samples found frame objects.
func (r *Reader) hotRegionsList() []mem.Region {
	regs := append(r.dec.RecentHeaders(r.hotRegions[:0]), r.refresh...)
	for p, seen := range r.hotPages {
		if r.stats.Samples-seen >= hotSamples {
			delete(r.hotPages, p)
			continue
		}
		regs = append(regs, mem.Region{Addr: p, Len: mem.PageSize})
	}
	r.hotRegions = regs
	return regs
}

// maxHotPages bounds the frame pages kept hot: CPython keeps at most 200
// frame objects on its free lists, besides one per code object.
const maxHotPages = 128

// hotPage notes the page of a frame object a walk met: a frame object is
// taken from free lists that the next calls reuse, so later samples find
// other frames on the same pages.
func (r *Reader) hotPage(addr uint64) {
	p := r.hotWord(addr)
	// A frame may straddle a page boundary.
	if e := (addr + uint64(r.l.Frame.Localsplus) - 1) &^ (mem.PageSize - 1); e != p {
		r.hotPage(e)
	}
}

// hotWord marks the page of addr hot, and returns it.
func (r *Reader) hotWord(addr uint64) uint64 {
	if r.hotPages == nil {
		r.hotPages = map[uint64]int{}
	}
	p := addr &^ (mem.PageSize - 1)
	if _, ok := r.hotPages[p]; ok || len(r.hotPages) < maxHotPages {
		r.hotPages[p] = r.stats.Samples
	}
	return p
}
