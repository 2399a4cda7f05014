package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/state"
)

// Source is where the pages read the daemon's state. It is the reconciler's view of
// itself: API adapts the daemon's own HTTP API to it, and tests use a fake.
type Source interface {
	// Status returns the status the daemon last recorded, or nil (and no error) before its
	// first reconcile. Every page calls it, and every open event stream calls it each
	// Options.Poll, so it must be cheap and safe for concurrent use. The dashboard does
	// not change what it returns.
	Status(ctx context.Context) (*reconciler.Status, error)
	// History returns env's last n reconciles, newest first (all of them when n ≤ 0), and
	// none for an environment it does not know. It returns an error wrapping ErrNoHistory
	// when the daemon keeps no history (circle serve without --state-dir).
	History(ctx context.Context, env string, n int) ([]state.Entry, error)
}

// ErrNoHistory is wrapped by Source.History when the daemon keeps no history.
var ErrNoHistory = errors.New("dashboard: no history kept (circle serve --state-dir)")

// API returns a Source that asks h, the reconciler's HTTP API (reconciler.Handler), in
// process: GET /api/v1/status and /api/v1/history. Going through the API rather than the
// Reconciler keeps the reconciler's state private to it, and means the dashboard shows
// exactly what API clients see; a status round trip through JSON costs well under a
// millisecond for 50 environments.
func API(h http.Handler) Source { return apiSource{h: h} }

type apiSource struct{ h http.Handler }

var _ Source = apiSource{}

func (a apiSource) Status(ctx context.Context) (*reconciler.Status, error) {
	code, body, err := a.get(ctx, "/api/v1/status")
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusServiceUnavailable: // nothing reconciled yet
		return nil, nil
	case code != http.StatusOK:
		return nil, fmt.Errorf("read status: HTTP %d: %s", code, bytes.TrimSpace(body))
	}
	var st reconciler.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &st, nil
}

func (a apiSource) History(ctx context.Context, env string, n int) ([]state.Entry, error) {
	q := url.Values{"env": {env}, "limit": {strconv.Itoa(n)}}
	code, body, err := a.get(ctx, "/api/v1/history?"+q.Encode())
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusNotFound: // the API's answer without a state store
		return nil, ErrNoHistory
	case code != http.StatusOK:
		return nil, fmt.Errorf("read history of %s: HTTP %d: %s", env, code, bytes.TrimSpace(body))
	}
	var out struct {
		History []state.Entry `json:"history"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", env, err)
	}
	return out.History, nil
}

func (a apiSource) get(ctx context.Context, target string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, err
	}
	rec := &recorder{header: http.Header{}}
	a.h.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec.code, rec.body.Bytes(), nil
}

// recorder is the least of an http.ResponseWriter that keeps the response. (httptest's
// ResponseRecorder would do, but httptest does not belong in the daemon's binary.)
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
