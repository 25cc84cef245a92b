package frames

import "testing"

func TestBrent(t *testing.T) {
	for _, tc := range []struct {
		seq  []uint64
		loop bool
	}{
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, false},
		{[]uint64{1, 1}, true},
		{[]uint64{1, 2, 3, 2, 3, 2, 3, 2, 3}, true},
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7}, true},
	} {
		var b Brent
		found := false
		for _, a := range tc.seq {
			if b.Step(a) {
				found = true
				break
			}
		}
		if found != tc.loop {
			t.Errorf("%v: cycle found = %v", tc.seq, found)
		}
	}
}
