package pyspy

import (
	"os"
	"testing"
)

// loadSnapshot reads and decodes a snapshot file, failing the test if it
// cannot.
func loadSnapshot(t testing.TB, file string) *Snapshot {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := DecodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// LoadSnapshot is loadSnapshot for the tests of package pyspy_test.
var LoadSnapshot = loadSnapshot
