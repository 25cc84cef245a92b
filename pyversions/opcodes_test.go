package pyversions

import "testing"

// TestOpcodeTables checks that every supported minor from 3.11 has an
// opcode table and that the tables tell calls from other instructions.
// Which opcode value is which differs per minor, so the probes are the
// values each minor's opcode module gives.
func TestOpcodeTables(t *testing.T) {
	tests := []struct {
		minor             string
		call, loadFast    int
		callCaches        uint8
		unknown, resumeOp int
	}{
		{"3.11", 171, 124, 4, 181, 151},
		{"3.12", 171, 124, 3, 169, 151},
		{"3.13", 53, 85, 3, 119, 149},
		{"3.14", 52, 84, 3, 121, 128},
		{"3.15", 50, 83, 3, 120, 128},
	}
	for _, tc := range tests {
		t.Run(tc.minor, func(t *testing.T) {
			o := OpcodesFor(tc.minor)
			if o == nil {
				t.Fatal("no table")
			}
			if o.Class[tc.call] != OpCall || o.Caches[tc.call] != tc.callCaches {
				t.Errorf("CALL (%d): class %d caches %d, want call with %d", tc.call, o.Class[tc.call], o.Caches[tc.call], tc.callCaches)
			}
			if o.Class[tc.loadFast] != OpPlain {
				t.Errorf("LOAD_FAST (%d): class %d, want plain", tc.loadFast, o.Class[tc.loadFast])
			}
			if o.Class[tc.resumeOp] != OpPlain {
				t.Errorf("RESUME (%d): class %d, want plain", tc.resumeOp, o.Class[tc.resumeOp])
			}
			if o.Class[tc.unknown] != OpUnknown {
				t.Errorf("opcode %d: class %d, want unknown", tc.unknown, o.Class[tc.unknown])
			}
		})
	}
	if OpcodesFor("3.10") != nil {
		t.Error("3.10 has a table: frames before 3.11 are not checked by opcode")
	}
}
