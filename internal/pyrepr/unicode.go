package pyrepr

import "unicode/utf8"

//go:generate go run gen_unicode.go

// span is an inclusive range of code points.
type span struct{ lo, hi uint32 }

type unicodeTable struct {
	version string // Unicode version, as unicodedata.unidata_version reports it
	flips   []span
}

// lookup reports whether c lies in spans, together with the widest range
// around c that gets the same answer, so callers can skip the next search
// while text stays within one block.
func lookup(spans []span, c uint32) (in bool, lo, hi uint32) {
	i, j := 0, len(spans)
	for i < j {
		m := int(uint(i+j) >> 1)
		if spans[m].hi < c {
			i = m + 1
		} else {
			j = m
		}
	}
	if i < len(spans) && spans[i].lo <= c {
		return true, spans[i].lo, spans[i].hi
	}
	lo, hi = 0, utf8.MaxRune
	if i > 0 {
		lo = spans[i-1].hi + 1
	}
	if i < len(spans) {
		hi = spans[i].lo - 1
	}
	return false, lo, hi
}

// printableRange reports whether Python 3's repr() copies the non-ASCII
// code point c unescaped under table t, and the range around c where that
// answer holds.
func printableRange(c uint32, t *unicodeTable) (p bool, lo, hi uint32) {
	p, lo, hi = lookup(printableNewest, c)
	if len(t.flips) != 0 {
		flip, flo, fhi := lookup(t.flips, c)
		if flip {
			p = !p
		}
		lo, hi = max(lo, flo), min(hi, fhi)
	}
	return p, lo, hi
}

func printable(c uint32, t *unicodeTable) bool {
	p, _, _ := printableRange(c, t)
	return p
}

// tableFor picks the Unicode version a Python 3 minor was built with.
// Minors before 3.6 get 3.6's table and minors after the newest generated
// one get the newest table; both are the nearest data we have.
func tableFor(v Version) *unicodeTable {
	m := v.Minor
	switch {
	case v.Major != 3 || m > newestMinor:
		m = newestMinor
	case m < 6:
		m = 6
	}
	return &unicodeTables[minorTable[m]]
}
