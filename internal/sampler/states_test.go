package sampler

import (
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/testpython"
)

// TestPausedThreadsNeverActive samples a target with threads parked on an
// event beside one that spins, pausing for every sample, and checks that
// no parked thread is ever reported active. A thread read right after it
// is resumed shows as running while it goes back to waiting, so run
// states must come from before the pause; and a thread that was not
// stopped must be read as it is. Back to back, as a sampler that runs
// late pauses again at once, a pause of every thread stops parked threads
// that the previous one woke before they are back in their wait.
func TestPausedThreadsNeverActive(t *testing.T) {
	for _, py := range testpython.OnePerMinor(testpython.For(t, "3.9", "3.11", "3.13")) {
		for _, tc := range []struct {
			name       string
			pauseAll   bool // forget the GIL holder, so that every thread is stopped
			backToBack bool // no pause between rounds
		}{{"GIL holder stopped", false, false}, {"every thread stopped", true, false}, {"every thread stopped back to back", true, true}} {
			t.Run(py.Name+"/"+tc.name, func(t *testing.T) {
				tg := testpython.Start(t, py, "busy.py", "--idle", "20")
				s, err := New(tg.Pid, Options{Rate: 100, Mode: Blocking, Idle: true})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				idle, spinning := 0, 0
				for range 100 {
					if !tc.backToBack {
						// The sampler's cadence at 100 Hz.
						time.Sleep(10 * time.Millisecond)
					}
					if tc.pauseAll {
						for _, p := range s.procs {
							p.holder = 0
						}
					}
					s.Round(func(smp Sample) {
						for _, th := range smp.Threads {
							if !strings.HasPrefix(th.Name, "idle-") {
								if th.Active {
									spinning++
								}
								continue
							}
							idle++
							if th.Active {
								t.Errorf("parked thread %d (%s) reported active", th.NativeID, th.Name)
							}
						}
					})
				}
				if idle < 100*20 || spinning < 90 {
					t.Errorf("%d parked thread samples, %d of the spinning thread active", idle, spinning)
				}
				st := s.Stats()
				t.Logf("%d of 100 samples stopped only the GIL holder", st.PausedThreads)
				if tc.pauseAll == (st.PausedThreads > 0) {
					t.Errorf("%d of 100 samples stopped only the GIL holder", st.PausedThreads)
				}
				testpython.CheckResumed(t, tg.Pid)
			})
		}
	}
}
