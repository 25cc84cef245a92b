package pyspy

import (
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/pyprof/pyprof/internal/pyrepr"
	"github.com/pyprof/pyprof/pyspy/mem"
)

// MaxValueLen is the longest rendered value; longer ones end in "...".
const MaxValueLen = 200

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

func (ci *codeInfo) nargs() int {
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
func (r *Reader) localVars(ci *codeInfo) ([]localVar, error) {
	if ci.vars != nil || ci.varsErr != nil {
		return ci.vars, ci.varsErr
	}
	ci.vars, ci.varsErr = r.decodeLocalVars(ci)
	return ci.vars, ci.varsErr
}

func (r *Reader) decodeLocalVars(ci *codeInfo) ([]localVar, error) {
	nargs := ci.nargs()
	var vars []localVar
	if ci.localsNames != 0 {
		names, _, err := r.seqItems(ci.localsNames, false, maxLocals)
		if err != nil {
			return nil, fmt.Errorf("co_localsplusnames: %w", err)
		}
		kinds, _, err := r.bytesData(ci.localsKinds, maxLocals)
		if err != nil {
			return nil, fmt.Errorf("co_localspluskinds: %w", err)
		}
		if len(kinds) < len(names) || len(names) > ci.nlocalsplus {
			return nil, fmt.Errorf("code object at %#x: %d local names, %d kinds, %d slots", ci.addr, len(names), len(kinds), ci.nlocalsplus)
		}
		for i, p := range names {
			name, err := r.str(p)
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
		names, _, err := r.seqItems(part.tuple, false, maxLocals)
		if err != nil {
			return nil, fmt.Errorf("local names: %w", err)
		}
		for _, p := range names {
			name, err := r.str(p)
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
				if r.py2 {
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

// frameLocals renders the bound variables of a frame whose fast locals
// start at slots. Errors are shown in place of values: a dump should show
// what it can.
func (r *Reader) frameLocals(ci *codeInfo, slots uint64) []Local {
	vars, err := r.localVars(ci)
	if err != nil {
		return []Local{{Name: "?", Value: "<" + err.Error() + ">"}}
	}
	if len(vars) == 0 {
		return nil
	}
	b, err := r.cache.Bytes(slots, uint64(len(vars))*8)
	if err != nil {
		return []Local{{Name: "?", Value: "<" + err.Error() + ">"}}
	}
	var out []Local
	var pos []int
	for i, v := range vars {
		ref := mem.LE64(b[8*i:])
		if n, ok := r.stackRefInt(ref); ok && !v.skip && !v.cell {
			out = append(out, Local{Name: v.name, Value: strconv.FormatInt(n, 10), Argument: v.arg})
			pos = append(pos, v.pos)
			continue
		}
		p := r.untag(ref)
		if p == 0 || v.skip {
			continue
		}
		if v.cell {
			// The slot may still hold the raw value if the cell has
			// not been made yet (3.11+, before MAKE_CELL).
			if name, _, err := r.builtinType(p); err == nil && name == "cell" {
				ref, err := r.pointer(p + uint64(r.l.Cell.Ref))
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
		out = append(out, Local{Name: v.name, Value: r.Repr(p), Argument: v.arg})
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

// Repr renders the object at addr as repr() would in the target, for the
// builtin types pyprof decodes, and as "<TypeName at 0xADDR>" otherwise.
//
// Containers nest to any depth, as in repr(): each one writes its opening
// bracket before its items, so the MaxValueLen cut also bounds how deep a
// value is followed (and what is read for it), even in corrupt memory.
func (r *Reader) Repr(addr uint64) string {
	c := reprCall{b: pyrepr.Builder{Max: MaxValueLen}}
	r.repr(&c, addr)
	return c.b.String()
}

// reprCall is one Repr: the text so far, and the containers whose repr
// is under way on the way down to the current object. CPython marks these
// with Py_ReprEnter, and a container met again inside its own repr (a
// cycle) prints as "[...]", "{...}" or "(...)" instead of its items; one
// merely met twice, side by side, prints in full both times.
type reprCall struct {
	b    pyrepr.Builder
	path []uint64
}

// enter reports whether the container at addr is already being printed,
// and if not puts it on the path; leave takes it off again.
func (c *reprCall) enter(addr uint64) bool {
	if slices.Contains(c.path, addr) {
		return false
	}
	c.path = append(c.path, addr)
	return true
}

func (c *reprCall) leave() { c.path = c.path[:len(c.path)-1] }

func (r *Reader) reprVersion() pyrepr.Version {
	return pyrepr.Version{Major: r.v.Major, Minor: r.v.Minor}
}

func (r *Reader) repr(c *reprCall, addr uint64) {
	b := &c.b
	if addr == 0 {
		b.WriteString("<NULL>")
		return
	}
	name, typ, err := r.builtinType(addr)
	if err != nil {
		fmt.Fprintf(b, "<unreadable object at %#x>", addr)
		return
	}
	if err := r.reprBuiltin(c, name, addr); err != nil {
		fmt.Fprintf(b, "<%s at %#x: %v>", name, addr, err)
	} else if name == "" || !reprable[name] {
		tn := name
		if tn == "" {
			if ti, err := r.typeInfo(typ); err == nil {
				tn = ti.name
			}
		}
		fmt.Fprintf(b, "<%s at %#x>", tn, addr)
	}
}

// reprable lists the builtin type names whose repr pyprof reproduces.
var reprable = map[string]bool{
	"NoneType": true, "bool": true, "int": true, "long": true, "float": true,
	"str": true, "unicode": true, "bytes": true,
	"tuple": true, "list": true, "dict": true, "set": true, "frozenset": true,
}

func (r *Reader) reprBuiltin(c *reprCall, name string, addr uint64) error {
	b := &c.b
	v := r.reprVersion()
	switch name {
	case "NoneType":
		b.WriteString("None")
	case "bool":
		isTrue, err := r.boolValue(addr)
		if err != nil {
			return err
		}
		if isTrue {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case "int", "long":
		if r.py2 && name == "int" {
			raw, err := r.cache.Bytes(addr+uint64(r.l.Int.Ival), 8)
			if err != nil {
				return err
			}
			b.WriteString(strconv.FormatInt(int64(mem.LE64(raw)), 10))
			return nil
		}
		d, neg, err := r.intDigits(addr)
		if err != nil {
			return err
		}
		b.WriteInt(d, neg)
		if name == "long" {
			b.WriteString(pyrepr.LongSuffix)
		}
	case "float":
		f, err := r.floatValue(addr)
		if err != nil {
			return err
		}
		b.WriteFloat(f)
	case "str", "unicode":
		if r.py2 && name == "str" {
			data, _, err := r.bytesData(addr, MaxValueLen+1)
			if err != nil {
				return err
			}
			b.WriteBytesRepr(data, true)
			return nil
		}
		// Escapes only lengthen a repr, so MaxValueLen code points are
		// enough to fill the display.
		cps, _, err := r.codePoints(addr, MaxValueLen+1)
		if err != nil {
			return err
		}
		b.WriteStrRepr(cps, v)
	case "bytes":
		data, _, err := r.bytesData(addr, MaxValueLen+1)
		if err != nil {
			return err
		}
		b.WriteBytesRepr(data, false)
	case "tuple", "list":
		// A tuple, immutable, can still be inside itself through a list
		// or dict it holds; tuplerepr guards against it as list_repr
		// does. (CPython returns "()" and "[]" before Py_ReprEnter; an
		// empty container holds nothing that leads back to it, so
		// entering it here changes nothing.)
		if !c.enter(addr) {
			if name == "list" {
				b.WriteString(pyrepr.RecursiveList)
			} else {
				b.WriteString(pyrepr.RecursiveTuple)
			}
			return nil
		}
		defer c.leave()
		items, n, err := r.seqItems(addr, name == "list", MaxValueLen)
		if err != nil {
			return err
		}
		open, close := "(", pyrepr.TupleClose(n)
		if name == "list" {
			open, close = "[", "]"
		}
		b.WriteString(open)
		for i, it := range items {
			if b.Full() {
				return nil
			}
			if i > 0 {
				b.WriteString(pyrepr.Sep)
			}
			r.repr(c, it)
		}
		b.WriteString(close)
	case "set", "frozenset":
		// set_repr has a guard too, but a set never meets itself here:
		// its elements are hashable, and no hashable builtin that pyprof
		// descends into (a tuple or frozenset) can hold a set, or be
		// inside itself without a list or dict, which are unhashable.
		items, n, err := r.setItems(addr, MaxValueLen)
		if err != nil {
			return err
		}
		b.WriteString(pyrepr.SetOpen(name, n, v))
		for i, it := range items {
			if b.Full() {
				return nil
			}
			if i > 0 {
				b.WriteString(pyrepr.Sep)
			}
			r.repr(c, it)
		}
		b.WriteString(pyrepr.SetClose(name, n, v))
	case "dict":
		if !c.enter(addr) {
			b.WriteString(pyrepr.RecursiveDict)
			return nil
		}
		defer c.leave()
		items, _, err := r.dictItems(addr, MaxValueLen)
		if err != nil {
			return err
		}
		b.WriteString("{")
		for i, it := range items {
			if b.Full() {
				return nil
			}
			if i > 0 {
				b.WriteString(pyrepr.Sep)
			}
			r.repr(c, it.key)
			b.WriteString(pyrepr.KeySep)
			r.repr(c, it.value)
		}
		b.WriteString("}")
	}
	return nil
}
