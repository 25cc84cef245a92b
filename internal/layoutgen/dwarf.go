package layoutgen

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"strings"
)

// Types indexes the named structs, unions and typedefs of one binary's DWARF
// so that fields can be looked up by C path ("_ts.cframe").
type Types struct {
	d     *dwarf.Data
	named map[string][]dwarf.Offset
	// tags records how C spells each name: a typedef or base type as is,
	// a struct or union tag after its keyword.
	tags map[string]dwarf.Tag
}

// Open reads the DWARF of the ELF file at path.
func Open(path string) (*Types, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("read dwarf of %s: %w", path, err)
	}
	t := &Types{d: d, named: map[string][]dwarf.Offset{}, tags: map[string]dwarf.Tag{}}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("read dwarf of %s: %w", path, err)
		}
		if e == nil {
			break
		}
		switch e.Tag {
		case dwarf.TagStructType, dwarf.TagUnionType, dwarf.TagTypedef, dwarf.TagBaseType:
		default:
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if name == "" {
			continue
		}
		if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); decl {
			continue
		}
		// Every definition is kept: in some compilation units a typedef
		// names a struct that is only declared there.
		t.named[name] = append(t.named[name], e.Offset)
		if prev, ok := t.tags[name]; !ok || prev == dwarf.TagStructType || prev == dwarf.TagUnionType {
			t.tags[name] = e.Tag
		}
	}
	return t, nil
}

// CName spells the named type as C source must: "PyThreadState" for a
// typedef, "struct _dictkeysobject" for a bare struct tag.
func (t *Types) CName(name string) (string, error) {
	switch tag, ok := t.tags[name]; {
	case !ok:
		return "", fmt.Errorf("no type %q", name)
	case tag == dwarf.TagStructType:
		return "struct " + name, nil
	case tag == dwarf.TagUnionType:
		return "union " + name, nil
	default:
		return name, nil
	}
}

// Type returns the named type with typedefs stripped.
func (t *Types) Type(name string) (dwarf.Type, error) {
	offs, ok := t.named[name]
	if !ok {
		return nil, fmt.Errorf("no type %q", name)
	}
	for _, off := range offs {
		typ, err := t.d.Type(off)
		if err != nil {
			return nil, fmt.Errorf("type %q: %w", name, err)
		}
		typ = strip(typ)
		if st, ok := typ.(*dwarf.StructType); ok && st.Incomplete {
			continue
		}
		return typ, nil
	}
	return nil, fmt.Errorf("type %q is only declared", name)
}

func strip(typ dwarf.Type) dwarf.Type {
	for {
		switch x := typ.(type) {
		case *dwarf.TypedefType:
			typ = x.Type
		case *dwarf.QualType:
			typ = x.Type
		default:
			return typ
		}
	}
}

// Field is a resolved member.
type Field struct {
	Offset  int64 // byte offset from the start of the outermost struct
	Size    int64
	BitOff  int64 // bit offset within the storage unit at Offset, for bitfields
	BitSize int64 // zero unless a bitfield
}

// Lookup resolves "Type.a.b" to the member's offset. Anonymous struct and
// union members are searched transparently, as C does.
func (t *Types) Lookup(path string) (Field, error) {
	parts := strings.Split(path, ".")
	typ, err := t.Type(parts[0])
	if err != nil {
		return Field{}, err
	}
	var f Field
	for _, name := range parts[1:] {
		st, ok := typ.(*dwarf.StructType)
		if !ok {
			return Field{}, fmt.Errorf("%s: %s is not a struct", path, typ)
		}
		base, field, ok := findField(st, name)
		if !ok {
			return Field{}, fmt.Errorf("%s: no field %q in %s", path, name, st.StructName)
		}
		f.Size = field.Type.Size()
		f.BitSize = field.BitSize
		f.BitOff = 0
		if field.BitSize == 0 {
			f.Offset += base + field.ByteOffset
		} else {
			// DataBitOffset counts from the start of the struct that
			// holds the bitfield.
			f.Offset += base + field.DataBitOffset/8
			f.BitOff = field.DataBitOffset % 8
			f.Size = 1
		}
		typ = strip(field.Type)
	}
	return f, nil
}

// findField returns the member and the offset of the struct that directly
// holds it, relative to st.
func findField(st *dwarf.StructType, name string) (int64, *dwarf.StructField, bool) {
	for _, f := range st.Field {
		if f.Name == name {
			return 0, f, true
		}
	}
	for _, f := range st.Field {
		if f.Name != "" {
			continue
		}
		if inner, ok := strip(f.Type).(*dwarf.StructType); ok {
			if off, g, ok := findField(inner, name); ok {
				return f.ByteOffset + off, g, true
			}
		}
	}
	return 0, nil, false
}

// Sizeof returns the size of the named type.
func (t *Types) Sizeof(name string) (int64, error) {
	typ, err := t.Type(name)
	if err != nil {
		return 0, err
	}
	if typ.Size() <= 0 {
		return 0, fmt.Errorf("type %q has no size", name)
	}
	return typ.Size(), nil
}

// Dump describes a struct's members for exploration.
func (t *Types) Dump(name string) (string, error) {
	typ, err := t.Type(name)
	if err != nil {
		return "", err
	}
	st, ok := typ.(*dwarf.StructType)
	if !ok {
		return typ.String(), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (size %d)\n", st.Kind, name, st.Size())
	for _, f := range st.Field {
		fmt.Fprintf(&b, "  %4d %-28s %s", f.ByteOffset, f.Name, f.Type)
		if f.BitSize > 0 {
			fmt.Fprintf(&b, " bits %d@%d", f.BitSize, f.DataBitOffset)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// Leaf is a member that is not itself a struct, with its dotted path from
// the outermost struct.
type Leaf struct {
	Path   string
	Offset int64
	Size   int64
}

// Leaves lists the non-struct members of the named struct, depth first in
// declaration order, and the struct's size.
func (t *Types) Leaves(name string) ([]Leaf, int64, error) {
	typ, err := t.Type(name)
	if err != nil {
		return nil, 0, err
	}
	st, ok := typ.(*dwarf.StructType)
	if !ok {
		return nil, 0, fmt.Errorf("%s is not a struct", name)
	}
	var out []Leaf
	var walk func(st *dwarf.StructType, prefix string, base int64)
	walk = func(st *dwarf.StructType, prefix string, base int64) {
		for _, f := range st.Field {
			path := prefix + f.Name
			if inner, ok := strip(f.Type).(*dwarf.StructType); ok {
				walk(inner, path+".", base+f.ByteOffset)
				continue
			}
			out = append(out, Leaf{Path: path, Offset: base + f.ByteOffset, Size: f.Type.Size()})
		}
	}
	walk(st, "", 0)
	return out, st.Size(), nil
}
