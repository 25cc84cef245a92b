package greenlet

// Stack is the C stack of one OS thread, as its memory mapping bounds it.
type Stack struct{ Lo, Hi uint64 }

// Owners returns, for each greenlet of gs, the index in stacks of the
// thread it belongs to, or -1 when none can be told. No greenlet struct
// names its OS thread; what ties them is the C stack: every started
// greenlet's slice of it lies in its thread's stack. The greenlets of one
// ThreadState all belong to the thread of any of them, so a thread found
// for one is the thread of all; a lone thread takes every greenlet of a
// lone ThreadState.
func Owners(gs []Greenlet, stacks []Stack) []int {
	byState := map[uint64]int{}
	for _, g := range gs {
		if g.ThreadState == 0 || g.StackAddr == 0 {
			continue
		}
		if _, ok := byState[g.ThreadState]; ok {
			continue
		}
		for i, s := range stacks {
			if g.StackAddr >= s.Lo && g.StackAddr < s.Hi {
				byState[g.ThreadState] = i
				break
			}
		}
	}
	states := map[uint64]bool{}
	for _, g := range gs {
		if g.ThreadState != 0 {
			states[g.ThreadState] = true
		}
	}
	out := make([]int, len(gs))
	for i, g := range gs {
		out[i] = -1
		if t, ok := byState[g.ThreadState]; ok && g.ThreadState != 0 {
			out[i] = t
		} else if len(stacks) == 1 && len(states) == 1 && g.ThreadState != 0 {
			out[i] = 0
		}
	}
	return out
}

// ThreadNames returns the names threading._active gives the main
// greenlets at mains, by address. Under gevent's monkey-patching,
// threading keys its threads by id() of a greenlet, the thread's main
// greenlet for the threads it knows, rather than by the OS thread's ident,
// which the stack reader looks them up by.
func (r *Reader) ThreadNames(mains []uint64) map[uint64]string {
	out := map[uint64]string{}
	if len(mains) == 0 {
		return out
	}
	l := r.f.Layout
	modules, err := r.d.Pointer(r.interp + uint64(l.Interp.Modules))
	if err != nil || modules == 0 {
		return out
	}
	mod, err := r.d.DictLookup(modules, "threading")
	if err != nil || mod == 0 {
		return out
	}
	md, err := r.d.Pointer(mod + uint64(l.Module.Dict))
	if err != nil {
		return out
	}
	active, err := r.d.DictLookup(md, "_active")
	if err != nil || active == 0 {
		return out
	}
	items, _, err := r.d.DictItems(active, maxThreadNames)
	if err != nil {
		return out
	}
	want := map[uint64]bool{}
	for _, m := range mains {
		want[m] = true
	}
	for _, it := range items {
		id, neg, err := r.d.IntValue(it.Key)
		if err != nil || neg || !want[id] {
			continue
		}
		v, err := r.d.Attribute(it.Value, "_name")
		if err != nil || v == 0 {
			continue
		}
		if s, err := r.d.Str(v); err == nil {
			out[id] = s
		}
	}
	return out
}

// maxThreadNames bounds the entries of threading._active read.
const maxThreadNames = 1 << 16
