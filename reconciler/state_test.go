package reconciler_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/state"
)

// With a state store, a restarted daemon keeps each environment's last good revision, its
// history and the highest revocation serial (so an old list is still a replay), even when
// the publish target lost status.json.
func TestReconcile_StateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	iss, pub := newIssuer(t)
	root := copyExamples(t)
	write(t, root, "licenses/issuers.pub", pub)
	write(t, root, "licenses/circle-demo.lic", iss.license("lic_all", "", time.Now().Add(365*24*time.Hour)))
	write(t, root, "licenses/revoked.list", iss.revoked(5))

	store, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), State: store})
	good := snapshot(t, root)
	if st, err := d.Reconcile(ctx, good); err != nil || !st.Ready {
		t.Fatalf("first revision: %+v %v", st, err)
	}
	write(t, root, "config/dev/app.yaml", "app:\n  colour: blue\n")
	if st, err := d.Reconcile(ctx, snapshot(t, root)); err != nil || st.Ready {
		t.Fatalf("bad revision: %+v %v", st, err)
	}
	srv := httptest.NewServer(d.Handler())
	code, body := get(t, srv, "/api/v1/history?env=dev")
	srv.Close()
	var h struct{ History []state.Entry }
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || len(h.History) != 2 || h.History[0].Ready || !h.History[1].Ready {
		t.Errorf("/api/v1/history: %d %v %s", code, err, body)
	}
	store.Close()

	// Restart: a new daemon, a publish target without status.json.
	store, err = state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	write(t, root, "config/dev/app.yaml", "app:\n  logLevel: debug\n")
	write(t, root, "licenses/revoked.list", iss.revoked(4))
	d2 := newDaemon(t, staticSource{snap: snapshot(t, root)}, memStore(t), reconciler.Options{Keyring: exampleKeys(t), State: store})
	runCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	go func() { _ = d2.Run(runCtx) }()
	var st reconciler.Status
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		srv := httptest.NewServer(d2.Handler())
		code, body := get(t, srv, "/api/v1/status")
		srv.Close()
		if code == 200 && json.Unmarshal([]byte(body), &st) == nil && st.Revision != good.Revision && strings.Contains(body, "revoked.list") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted daemon did not reconcile: %s", body)
		}
	}
	dev := envByName(&st, "dev")
	if dev.Ready || !strings.Contains(dev.Message, "revoked.list") || dev.LastGood == nil || dev.LastGood.Revision != good.Revision {
		t.Errorf("after the restart, an older revocation list: %+v", dev)
	}
	if hist, _ := store.History("dev", 0); len(hist) != 3 {
		t.Errorf("history after the restart: %d entries", len(hist))
	}
}

func TestHistoryWithoutState(t *testing.T) {
	d := newDaemon(t, nil, memStore(t), reconciler.Options{})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	if code, _ := get(t, srv, "/api/v1/history?env=dev"); code != 404 {
		t.Errorf("history without a store: %d", code)
	}
}
