package reconciler

import (
	"errors"
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

// A target that failed is tried again, unless its revision was rolled back: trying would
// apply the revision and roll it back over and over.
func TestRetryable(t *testing.T) {
	for reason, want := range map[string]bool{ReasonPublishFailed: true, ReasonApplyFailed: true, ReasonRolledBack: false,
		ReasonInvalid: false, ReasonSucceeded: false} {
		st := &Status{Environments: []EnvStatus{{Name: "dev", Reason: ReasonSucceeded}, {Name: "prod", Reason: reason}}}
		if got := retryable(st, nil); got != want {
			t.Errorf("%s: retryable %v, want %v", reason, got, want)
		}
	}
	if !retryable(&Status{}, errors.New("record failed")) {
		t.Error("a failed record is not tried again")
	}
}
