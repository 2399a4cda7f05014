package secrets

import (
	"context"
	"sync/atomic"

	"github.com/getsops/sops/v3/keyservice"
)

// CountForwarded makes every data-key request that leaves the process go through a counter
// first, then on to sops' key service as before; it returns the counter and a function
// that undoes it. Tests that count must not run in parallel with each other.
func CountForwarded() (*atomic.Int64, func()) {
	var n atomic.Int64
	old := forward
	forward = func(ctx context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
		n.Add(1)
		return old(ctx, req)
	}
	return &n, func() { forward = old }
}
