package pyrepr

import (
	"testing"
	"unicode"
)

func TestUnicodeTablesWellFormed(t *testing.T) {
	check := func(name string, spans []span) {
		for i, s := range spans {
			if s.lo > s.hi || s.hi > unicode.MaxRune || i > 0 && spans[i-1].hi+1 >= s.lo {
				t.Errorf("%s: span %d %x-%x is empty, out of range, unsorted or adjacent to the previous", name, i, s.lo, s.hi)
			}
		}
	}
	check("printableNewest", printableNewest)
	for _, tab := range unicodeTables {
		check(tab.version, tab.flips)
	}
	for minor := 6; minor <= newestMinor; minor++ {
		if minor >= len(minorTable) {
			t.Fatalf("no table for 3.%d", minor)
		}
	}
	if got := tableFor(Version{3, newestMinor}).version; got != newestUnicode {
		t.Errorf("3.%d maps to Unicode %s, want %s", newestMinor, got, newestUnicode)
	}
}

// TestGoUnicodeAgrees checks the generated tables against Go's own
// unicode.IsPrint, which applies Python's definition of printable (letters,
// marks, numbers, punctuation, symbols) to Go's Unicode version. That gives
// an interpreter-free check of the table for that version, and logs how far
// Go's tables are from each Python minor, which is why they are not used.
func TestGoUnicodeAgrees(t *testing.T) {
	matched := false
	for i := range unicodeTables {
		tab := &unicodeTables[i]
		var diff []rune
		for c := rune(0x80); c <= unicode.MaxRune; c++ {
			if printable(uint32(c), tab) != unicode.IsPrint(c) {
				diff = append(diff, c)
			}
		}
		if tab.version == unicode.Version {
			matched = true
			if len(diff) != 0 {
				t.Errorf("Unicode %s: table and unicode.IsPrint disagree on %d code points, first U+%04X", tab.version, len(diff), diff[0])
			}
			continue
		}
		t.Logf("Unicode %s differs from Go's Unicode %s on %d code points", tab.version, unicode.Version, len(diff))
	}
	if !matched {
		t.Logf("Go's Unicode %s matches no Python minor; only the interpreter comparison checks the tables", unicode.Version)
	}
}
