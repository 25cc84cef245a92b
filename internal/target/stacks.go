package target

import (
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/greenlet"
)

// ThreadStacks bounds each thread's C stack by its mapping, for telling
// whose a greenlet is: the main thread's is [stack]; another's is the
// mapping that holds its pthread struct, which the C library puts at the
// top of the thread's stack. A thread whose mapping is not found, or all
// of them when the maps cannot be read, gets the zero Stack.
func (p *Process) ThreadStacks(threads []pyspy.Thread) []greenlet.Stack {
	out := make([]greenlet.Stack, len(threads))
	maps, err := p.Proc.Maps()
	if err != nil {
		return out
	}
	for i, t := range threads {
		for _, m := range maps {
			main := t.NativeID == p.Pid && m.Path == "[stack]"
			if main || t.NativeID != p.Pid && t.ID >= m.Start && t.ID < m.End {
				out[i] = greenlet.Stack{Lo: m.Start, Hi: m.End}
				break
			}
		}
	}
	return out
}
