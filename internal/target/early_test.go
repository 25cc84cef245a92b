package target

import (
	"os/exec"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
)

// TestAttachDuringStartup attaches to interpreters as early as possible,
// retrying while they start, as record does with a program it launches.
// The first successful attach must read correct stacks: during start-up
// the runtime's roots are still empty, and an attach must then fail (and
// be retried) rather than settle on look-alikes in static data.
func TestAttachDuringStartup(t *testing.T) {
	for _, py := range testpython.For(t, "2.7", "3.6", "3.9", "3.11", "3.12", "3.13") {
		t.Run(py.Name, func(t *testing.T) {
			for round := range 8 {
				cmd := exec.Command(py.Path, "-c", "import time\nend = time.time() + 10\ndef spin():\n    while time.time() < end: pass\nspin()")
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				var p *Process
				deadline := time.Now().Add(10 * time.Second)
				for {
					var err error
					if p, err = Attach(cmd.Process.Pid, Options{}); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("round %d: no attach: %v", round, err)
					}
					time.Sleep(time.Millisecond)
				}
				// A loaded machine can take a while to reach spin(); what
				// matters is that the reader attached early reads it
				// right once it runs.
				for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
					ts, _ := p.Reader.Sample(pyspy.SampleOptions{})
					if len(ts) > 0 && len(ts[0].Frames) > 0 && ts[0].Frames[0].Name == "spin" {
						break
					}
				}
				spin := 0
				for range 20 {
					ts, err := p.Reader.Sample(pyspy.SampleOptions{})
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					for _, th := range ts {
						if len(th.Frames) > 0 && th.Frames[0].Name == "spin" {
							spin++
						}
					}
				}
				if spin < 15 {
					t.Errorf("round %d: spin innermost in %d of 20 samples", round, spin)
				}
				p.Close()
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
	}
}
