package reconciler

import (
	"testing"
	"time"
)

// Delays double from the base, stay within ±20%, and stop growing at five minutes.
func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: time.Second, 1: 2 * time.Second, 3: 8 * time.Second, 30: 5 * time.Minute} {
		for range 50 {
			d := backoff(0, n)
			if d < want*8/10 || d > want*12/10 {
				t.Fatalf("backoff(%d) = %v, want %v ±20%%", n, d, want)
			}
		}
	}
	if d := backoff(10*time.Millisecond, 0); d > 12*time.Millisecond {
		t.Errorf("a base of 10ms gave %v", d)
	}
}
