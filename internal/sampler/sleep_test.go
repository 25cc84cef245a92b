package sampler

import (
	"context"
	"testing"
	"time"
)

func TestSleepUntil(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		next time.Time
		want bool
	}{
		{"deadline passed", context.Background(), time.Now().Add(-time.Second), true},
		{"short nap", context.Background(), time.Now().Add(5 * time.Millisecond), true},
		{"longer than one nap", context.Background(), time.Now().Add(maxNap + 10*time.Millisecond), true},
		{"cancelled before", cancelled, time.Now().Add(time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sleepUntil(tc.ctx, tc.next); got != tc.want {
				t.Fatalf("sleepUntil = %v, want %v", got, tc.want)
			}
			if tc.want && time.Now().Before(tc.next) {
				t.Fatalf("returned %v before its time", time.Until(tc.next))
			}
		})
	}
}

// A cancellation while it naps is seen within a nap or so, not at next.
func TestSleepUntilCancelledAsleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(3*maxNap/2, cancel)
	if sleepUntil(ctx, time.Now().Add(time.Hour)) {
		t.Fatal("sleepUntil = true after a cancellation")
	}
}
