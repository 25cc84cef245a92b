package greenlet

import (
	"errors"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/pyversions"
)

// TestLayoutFor: the releases read are exactly those of the table; any
// other release, or a known release on a minor it was not printed for, is
// an UnknownReleaseError that says what is known.
func TestLayoutFor(t *testing.T) {
	for _, tc := range []struct {
		release, python string
		ok              bool
	}{
		{"2.0.2", "3.11.2", true},
		{"3.3.2", "3.14.10", true},
		{"3.3.2", "3.12.1", true},
		{"2.0.2", "3.14.0", false},
		{"2.0.1", "3.11.2", false},
		{"3.3.1", "3.14.0", false},
		{"0.4.17", "3.9.18", false},
	} {
		v, err := pyversions.Parse(tc.python)
		if err != nil {
			t.Fatal(err)
		}
		l, err := LayoutFor(tc.release, v)
		if tc.ok {
			if err != nil || l.Release != tc.release || l.Python != v.MinorString() {
				t.Errorf("%s on %s: %+v, %v", tc.release, tc.python, l, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnknownRelease) || !strings.Contains(err.Error(), "greenlet "+tc.release) || !strings.Contains(err.Error(), "2.0.2/3.11") {
			t.Errorf("%s on %s: %v", tc.release, tc.python, err)
		}
	}
}

// TestStackState: Decode reads stack_copy and _stack_saved as the two
// words after stack_stop, before stack_prev, as StackState declares them
// in every release of the table.
func TestStackState(t *testing.T) {
	for _, l := range layouts {
		if l.StackStop != l.StackStart+8 || l.StackPrev != l.StackStop+24 {
			t.Errorf("%s/%s: stack_start %d, stack_stop %d, stack_prev %d", l.Release, l.Python, l.StackStart, l.StackStop, l.StackPrev)
		}
	}
}
