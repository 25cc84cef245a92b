package target

import (
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
)

// TestParkedStacksVerify samples a target whose threads all wait, with the
// checks a sample that does not pause makes (pyspy.SampleOptions.Verify):
// stacks that stand still existed, so none may be called torn, and each
// must be what a plain read finds. Before 3.11 a caller is checked against
// the function object it called, whose code sits at a place in the object
// that 3.10 moved: read at the old one, every call looked like another
// function's, and every sample of a 3.10 target was torn and paused.
func TestParkedStacksVerify(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, testpython.DumpMinors...)) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := testpython.Start(t, py, "stacks.py")
			p, err := Attach(tg.Pid, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			plain, err := p.Reader.Sample(pyspy.SampleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				verified, err := p.Reader.Sample(pyspy.SampleOptions{Verify: true})
				if err != nil {
					t.Fatalf("parked stacks read as torn: %v", err)
				}
				if a, b := stackKey(plain), stackKey(verified); a != b {
					t.Errorf("verified stacks differ:\nplain:\n%s\nverified:\n%s", a, b)
				}
			}
		})
	}
}
