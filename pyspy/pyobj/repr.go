package pyobj

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/pyprof/pyprof/internal/pyrepr"
	"github.com/pyprof/pyprof/pyspy/mem"
)

// maxValueLen is the longest rendered value; longer ones end in "...".
const maxValueLen = 200

// Repr renders the object at addr as repr() would in the target, for the
// builtin types pyprof decodes, and as "<TypeName at 0xADDR>" otherwise.
//
// Containers nest to any depth, as in repr(): each one writes its opening
// bracket before its items, so the maxValueLen cut also bounds how deep a
// value is followed (and what is read for it), even in corrupt memory.
func (d *Decoder) Repr(addr uint64) string {
	c := reprCall{d: d, b: pyrepr.Builder{Max: maxValueLen}}
	c.repr(addr)
	return c.b.String()
}

// reprCall is one Repr: the decoder, the text so far, and the containers
// whose repr is under way on the way down to the current object. CPython
// marks these with Py_ReprEnter, and a container met again inside its own
// repr (a cycle) prints as "[...]", "{...}" or "(...)" instead of its
// items; one merely met twice, side by side, prints in full both times.
type reprCall struct {
	d    *Decoder
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

func (c *reprCall) repr(addr uint64) {
	b, d := &c.b, c.d
	if addr == 0 {
		b.WriteString("<NULL>")
		return
	}
	name, typ, err := d.BuiltinType(addr)
	if err != nil {
		fmt.Fprintf(b, "<unreadable object at %#x>", addr)
		return
	}
	if err := c.builtin(name, addr); err != nil {
		fmt.Fprintf(b, "<%s at %#x: %v>", name, addr, err)
	} else if name == "" || !reprable[name] {
		tn := name
		if tn == "" {
			if ti, err := d.typeInfo(typ); err == nil {
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

// builtin writes the repr of the object at addr, of the builtin type name.
func (c *reprCall) builtin(name string, addr uint64) error {
	switch name {
	case "tuple", "list":
		return c.sequence(name, addr)
	case "set", "frozenset":
		return c.set(name, addr)
	case "dict":
		return c.dict(addr)
	}
	return c.scalar(name, addr)
}

// scalar writes the repr of a builtin that holds no other object; a name
// it does not know writes nothing.
func (c *reprCall) scalar(name string, addr uint64) error {
	b, d := &c.b, c.d
	v := pyrepr.Version{Major: d.v.Major, Minor: d.v.Minor}
	switch name {
	case "NoneType":
		b.WriteString("None")
	case "bool":
		isTrue, err := d.Bool(addr)
		if err != nil {
			return err
		}
		if isTrue {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case "int", "long":
		if d.py2 && name == "int" {
			raw, err := d.c.Bytes(addr+uint64(d.l.Int.Ival), 8)
			if err != nil {
				return err
			}
			b.WriteString(strconv.FormatInt(int64(mem.LE64(raw)), 10))
			return nil
		}
		digits, neg, err := d.IntDigits(addr)
		if err != nil {
			return err
		}
		b.WriteInt(digits, neg)
		if name == "long" {
			b.WriteString(pyrepr.LongSuffix)
		}
	case "float":
		f, err := d.Float(addr)
		if err != nil {
			return err
		}
		b.WriteFloat(f)
	case "str", "unicode":
		if d.py2 && name == "str" {
			data, _, err := d.Bytes(addr, maxValueLen+1)
			if err != nil {
				return err
			}
			b.WriteBytesRepr(data, true)
			return nil
		}
		// Escapes only lengthen a repr, so maxValueLen code points are
		// enough to fill the display.
		cps, _, err := d.CodePoints(addr, maxValueLen+1)
		if err != nil {
			return err
		}
		b.WriteStrRepr(cps, v)
	case "bytes":
		data, _, err := d.Bytes(addr, maxValueLen+1)
		if err != nil {
			return err
		}
		b.WriteBytesRepr(data, false)
	}
	return nil
}

// sequence writes the repr of a tuple or list.
func (c *reprCall) sequence(name string, addr uint64) error {
	b, d := &c.b, c.d
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
	items, n, err := d.SeqItems(addr, name == "list", maxValueLen)
	if err != nil {
		return err
	}
	open, close := "(", pyrepr.TupleClose(n)
	if name == "list" {
		open, close = "[", "]"
	}
	c.elements(open, items, close)
	return nil
}

// set writes the repr of a set or frozenset.
func (c *reprCall) set(name string, addr uint64) error {
	d := c.d
	v := pyrepr.Version{Major: d.v.Major, Minor: d.v.Minor}
	// set_repr has a guard too, but a set never meets itself here:
	// its elements are hashable, and no hashable builtin that pyprof
	// descends into (a tuple or frozenset) can hold a set, or be
	// inside itself without a list or dict, which are unhashable.
	items, n, err := d.SetItems(addr, maxValueLen)
	if err != nil {
		return err
	}
	c.elements(pyrepr.SetOpen(name, n, v), items, pyrepr.SetClose(name, n, v))
	return nil
}

// elements writes the reprs of items between open and close; once the
// builder is full it stops, leaving close out.
func (c *reprCall) elements(open string, items []uint64, close string) {
	c.b.WriteString(open)
	for i, it := range items {
		if c.b.Full() {
			return
		}
		if i > 0 {
			c.b.WriteString(pyrepr.Sep)
		}
		c.repr(it)
	}
	c.b.WriteString(close)
}

// dict writes the repr of a dict.
func (c *reprCall) dict(addr uint64) error {
	b, d := &c.b, c.d
	if !c.enter(addr) {
		b.WriteString(pyrepr.RecursiveDict)
		return nil
	}
	defer c.leave()
	items, _, err := d.DictItems(addr, maxValueLen)
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
		c.repr(it.Key)
		b.WriteString(pyrepr.KeySep)
		c.repr(it.Value)
	}
	b.WriteString("}")
	return nil
}
