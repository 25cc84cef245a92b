package pyobj

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/pyprof/pyprof/pyspy/mem"
)

// maxLocals bounds the variables listed for one frame.
const maxLocals = 4096

// Local is one variable of a frame, rendered for display.
type Local struct {
	Name  string
	Value string
	// Argument marks parameters, including keyword-only ones, *args and
	// **kwargs.
	Argument bool
}

// localVar describes one slot of a frame's fast locals.
type localVar struct {
	name string
	// pos orders the display: the slot index, except for an argument that
	// lives in a cell (before 3.11), which is shown where the parameter
	// list puts it.
	pos  int
	arg  bool
	cell bool // the slot holds a cell (cell or free variable) to dereference
	skip bool // a slot Python does not show (3.12+ hidden comprehension variables, 2.7 argument copies of cells)
}

// Code flags and 3.11+ local kinds (Include/cpython/code.h).
const (
	coVarargs     = 0x4
	coVarkeywords = 0x8

	fastHidden = 0x10
	fastCell   = 0x40
	fastFree   = 0x80
)

func (ci *Code) nargs() int {
	n := ci.argcount + ci.kwonly
	if ci.flags&coVarargs != 0 {
		n++
	}
	if ci.flags&coVarkeywords != 0 {
		n++
	}
	return n
}

// localVars decodes the names and kinds of a code object's fast locals,
// once per code object.
func (cs *Codes) localVars(ci *Code) ([]localVar, error) {
	if ci.vars != nil || ci.varsErr != nil {
		return ci.vars, ci.varsErr
	}
	ci.vars, ci.varsErr = cs.decodeLocalVars(ci)
	return ci.vars, ci.varsErr
}

func (cs *Codes) decodeLocalVars(ci *Code) ([]localVar, error) {
	nargs := ci.nargs()
	var vars []localVar
	if ci.localsNames != 0 {
		names, _, err := cs.d.SeqItems(ci.localsNames, false, maxLocals)
		if err != nil {
			return nil, fmt.Errorf("co_localsplusnames: %w", err)
		}
		kinds, _, err := cs.d.Bytes(ci.localsKinds, maxLocals)
		if err != nil {
			return nil, fmt.Errorf("co_localspluskinds: %w", err)
		}
		if len(kinds) < len(names) || len(names) > ci.nlocalsplus {
			return nil, fmt.Errorf("code object at %#x: %d local names, %d kinds, %d slots", ci.addr, len(names), len(kinds), ci.nlocalsplus)
		}
		for i, p := range names {
			name, err := cs.d.Str(p)
			if err != nil {
				return nil, fmt.Errorf("local name %d: %w", i, err)
			}
			k := kinds[i]
			vars = append(vars, localVar{name: name, pos: i, arg: i < nargs, cell: k&(fastCell|fastFree) != 0, skip: k&fastHidden != 0})
		}
		return vars, nil
	}
	// Up to 3.10 the slots are co_varnames, then co_cellvars, then
	// co_freevars. An argument that is also a cell variable keeps an
	// empty argument slot and lives in its cell.
	args := map[string]int{}
	for _, part := range []struct {
		tuple uint64
		cell  bool
	}{{ci.varnames, false}, {ci.cellvars, true}, {ci.freevars, true}} {
		if part.tuple == 0 {
			continue
		}
		names, _, err := cs.d.SeqItems(part.tuple, false, maxLocals)
		if err != nil {
			return nil, fmt.Errorf("local names: %w", err)
		}
		for _, p := range names {
			name, err := cs.d.Str(p)
			if err != nil {
				return nil, fmt.Errorf("local name: %w", err)
			}
			v := localVar{name: name, pos: len(vars), cell: part.cell}
			if !part.cell && len(vars) < nargs {
				v.arg = true
				args[name] = len(vars)
			} else if i, ok := args[name]; ok && part.cell {
				v.arg, v.pos = true, i
				// 3.x empties the argument slot when it moves the value
				// into the cell; 2.7 leaves it there, stale once the
				// variable is assigned through the cell.
				if cs.py2 {
					vars[i].skip = true
				}
			}
			vars = append(vars, v)
		}
		if !part.cell && len(vars) != ci.nlocals {
			return nil, fmt.Errorf("code object at %#x: %d varnames for %d locals", ci.addr, len(vars), ci.nlocals)
		}
		if len(vars) > maxLocals {
			return nil, fmt.Errorf("code object at %#x: over %d locals", ci.addr, maxLocals)
		}
	}
	return vars, nil
}

// Locals renders the bound variables of a frame of c whose fast locals
// start at slots: its arguments and local variables, cells dereferenced,
// in the order the parameter list and the code give them. Errors are
// shown in place of values: a dump should show what it can.
func (cs *Codes) Locals(ci *Code, slots uint64) []Local {
	vars, err := cs.localVars(ci)
	if err != nil {
		return []Local{{Name: "?", Value: "<" + err.Error() + ">"}}
	}
	if len(vars) == 0 {
		return nil
	}
	b, err := cs.c.Bytes(slots, uint64(len(vars))*8)
	if err != nil {
		return []Local{{Name: "?", Value: "<" + err.Error() + ">"}}
	}
	var out []Local
	var pos []int
	for i, v := range vars {
		ref := mem.LE64(b[8*i:])
		if n, ok := cs.d.stackRefInt(ref); ok && !v.skip && !v.cell {
			out = append(out, Local{Name: v.name, Value: strconv.FormatInt(n, 10), Argument: v.arg})
			pos = append(pos, v.pos)
			continue
		}
		p := cs.d.Untag(ref)
		if p == 0 || v.skip {
			continue
		}
		if v.cell {
			// The slot may still hold the raw value if the cell has
			// not been made yet (3.11+, before MAKE_CELL).
			if name, _, err := cs.d.BuiltinType(p); err == nil && name == "cell" {
				ref, err := cs.d.Pointer(p + uint64(cs.l.Cell.Ref))
				if err != nil {
					out = append(out, Local{Name: v.name, Value: "<" + err.Error() + ">", Argument: v.arg})
					pos = append(pos, v.pos)
					continue
				}
				if ref == 0 {
					continue // an empty cell is an unbound variable
				}
				p = ref
			}
		}
		out = append(out, Local{Name: v.name, Value: cs.d.Repr(p), Argument: v.arg})
		pos = append(pos, v.pos)
	}
	sort.Stable(byPos{out, pos})
	return out
}

type byPos struct {
	l   []Local
	pos []int
}

func (b byPos) Len() int           { return len(b.l) }
func (b byPos) Less(i, j int) bool { return b.pos[i] < b.pos[j] }
func (b byPos) Swap(i, j int) {
	b.l[i], b.l[j] = b.l[j], b.l[i]
	b.pos[i], b.pos[j] = b.pos[j], b.pos[i]
}
