package pipeline

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"sync"

	"github.com/circlecore/circle/render"
)

// RenderCache keeps each environment's last rendered manifests with what they were rendered
// from, so a run over inputs already rendered (the daemon's forced reconcile, its retries,
// the drift of nothing) does not pay kustomize again: at 1,002 objects the render is most
// of a run. It holds one entry per environment, the newest, and is safe for concurrent use.
//
// An entry is found only when every input of the render is the same: the environment's
// input digest (every file its overlay and bases reach, Inputs) and the values the
// generated objects are made of (configuration, secrets, licenses, namespace, options).
// So a hit returns what render.Render would have returned, byte for byte.
type RenderCache struct {
	// key makes the lookup key an HMAC: it is derived from secret values, and a plain hash
	// of them could be checked against guesses if it were ever seen. It never leaves the
	// process.
	key     []byte
	mu      sync.Mutex
	entries map[string]cached
	hits    int
}

type cached struct {
	key       [sha256.Size]byte
	manifests []byte
}

// NewRenderCache returns an empty cache with its own random key.
func NewRenderCache() *RenderCache {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go ≥ 1.24)
	return &RenderCache{key: k, entries: map[string]cached{}}
}

// Hits returns how many renders the cache has saved.
func (c *RenderCache) Hits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

// render returns in's manifests from the cache when inputs (the environment's input
// digest) and every value of in are those of its last entry, and renders and keeps them
// otherwise. Without a digest it only renders: the files it would read are then unknown.
func (c *RenderCache) render(inputs string, in render.Input) ([]byte, error) {
	if c == nil || inputs == "" {
		return render.Render(in)
	}
	key, err := c.keyOf(inputs, in)
	if err != nil {
		return render.Render(in)
	}
	c.mu.Lock()
	e, ok := c.entries[in.Env]
	if ok && hmac.Equal(e.key[:], key[:]) {
		c.hits++
		c.mu.Unlock()
		// A copy: a caller that edits its manifests must not edit the next run's.
		return bytes.Clone(e.manifests), nil
	}
	c.mu.Unlock()
	y, err := render.Render(in)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[in.Env] = cached{key: key, manifests: bytes.Clone(y)}
	c.mu.Unlock()
	return y, nil
}

// keyOf is the HMAC of everything render.Render reads: the files (through their digest)
// and the values of in. encoding/json writes map keys sorted, so equal values give equal
// bytes.
func (c *RenderCache) keyOf(inputs string, in render.Input) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	values, err := json.Marshal(struct {
		Manifests, Env, Namespace string
		Config, Secrets           map[string]any
		Licenses                  map[string][]byte
		Limits                    render.Limits
		Kubernetes                *render.Kubernetes
		Origins                   bool
	}{in.Manifests, in.Env, in.Namespace, in.Config, in.Secrets, in.Licenses, in.Limits, in.Kubernetes, in.Origins})
	if err != nil {
		return out, err
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(inputs))
	m.Write([]byte{0})
	m.Write(values)
	copy(out[:], m.Sum(nil))
	return out, nil
}
