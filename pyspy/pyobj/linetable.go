package pyobj

import (
	"errors"
	"sort"
)

// maxLineTable bounds the line table bytes read for one code object. The
// largest tables in the standard library are a few tens of KiB.
const maxLineTable = 1 << 20

// lineEntry starts a step of the bytecode-offset → line function: every
// offset from start up to the next entry's start maps to line (-1: none).
type lineEntry struct {
	start int32
	line  int32
}

// lineTable maps byte offsets into a code object's bytecode to source lines.
// It is decoded once per code object and then searched per sample.
type lineTable struct {
	first   int32
	entries []lineEntry
}

// line returns the line of the instruction at byte offset addrq, following
// PyCode_Addr2Line: a negative offset (a frame that has not started) gives
// the first line.
func (t *lineTable) line(addrq int) int {
	if addrq < 0 || len(t.entries) == 0 {
		return int(t.first)
	}
	i := sort.Search(len(t.entries), func(i int) bool { return int(t.entries[i].start) > addrq })
	if i == 0 {
		return int(t.first)
	}
	return int(t.entries[i-1].line)
}

var errLineTable = errors.New("corrupt line table")

// parseLnotab decodes co_lnotab (up to 3.9): pairs of (bytecode delta, line
// delta). signed is false only for 2.7, whose line deltas are unsigned.
func parseLnotab(b []byte, first int32, signed bool) *lineTable {
	t := &lineTable{first: first, entries: make([]lineEntry, 0, len(b)/2+1)}
	addr, line := int32(0), first
	t.entries = append(t.entries, lineEntry{0, first})
	for i := 0; i+1 < len(b); i += 2 {
		addr += int32(b[i])
		if signed {
			line += int32(int8(b[i+1]))
		} else {
			line += int32(b[i+1])
		}
		t.entries = append(t.entries, lineEntry{addr, line})
	}
	return t
}

// parseLinetable310 decodes 3.10's co_linetable: pairs of (end-offset delta,
// signed line delta), where a line delta of -128 means "no line".
func parseLinetable310(b []byte, first int32) *lineTable {
	t := &lineTable{first: first, entries: make([]lineEntry, 0, len(b)/2+1)}
	end, computed, last := int32(0), first, first
	for i := 0; i+1 < len(b); i += 2 {
		start := end
		end += int32(b[i])
		// An instruction without a line of its own (-128) takes the
		// line of the code before it (see parseLocations).
		line := last
		if d := int8(b[i+1]); d != -128 {
			computed += int32(d)
			line = computed
		}
		if end > start {
			last = line
			t.entries = append(t.entries, lineEntry{start, line})
		}
	}
	// Past the table there is no line.
	t.entries = append(t.entries, lineEntry{end, -1})
	return t
}

// parseLocations decodes the 3.11+ location table. Each entry starts with a
// byte whose top bit is set; bits 3–6 hold the kind and the low 3 bits plus
// one give the code units it covers.
func parseLocations(b []byte, first int32) (*lineTable, error) {
	t := &lineTable{first: first, entries: make([]lineEntry, 0, len(b)/2+1)}
	end, computed := int32(0), first
	for i := 0; i < len(b); {
		head := b[i]
		if head&0x80 == 0 {
			return nil, errLineTable
		}
		kind := head >> 3 & 15
		var delta int32
		switch kind {
		case 15: // no location
		case 13, 14: // line delta only, or the long form
			d, ok := signedVarint(b[i+1:])
			if !ok {
				return nil, errLineTable
			}
			delta = d
		case 10, 11, 12: // one-line forms
			delta = int32(kind) - 10
		}
		// An instruction without a location of its own (a loop's back
		// edge, cleanup code) has no line for CPython either; a sample
		// of it is charged to the line of the code before it, where the
		// time goes for a reader of the profile, rather than to none.
		computed += delta
		line := computed
		start := end
		end += (int32(head&7) + 1) * 2
		t.entries = append(t.entries, lineEntry{start, line})
		i++
		for i < len(b) && b[i]&0x80 == 0 {
			i++
		}
	}
	t.entries = append(t.entries, lineEntry{end, -1})
	return t, nil
}

// varint reads the 6-bits-per-byte varint of the location table; bit 6
// means more bytes follow.
func varint(b []byte) (uint32, bool) {
	var v uint32
	for i, shift := 0, uint(0); i < len(b) && shift < 32; i, shift = i+1, shift+6 {
		v |= uint32(b[i]&63) << shift
		if b[i]&64 == 0 {
			return v, true
		}
	}
	return 0, false
}

func signedVarint(b []byte) (int32, bool) {
	u, ok := varint(b)
	if u&1 != 0 {
		return -int32(u >> 1), ok
	}
	return int32(u >> 1), ok
}
