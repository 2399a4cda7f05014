package reconciler_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/circlecore/circle/reconciler"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The HTTP API: health, readiness after the first revision, the status, and metrics
// that say per environment what happened — none of it holding a secret.
func TestHandler(t *testing.T) {
	root := copyExamples(t)
	encrypt(t, root, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t)})
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()

	if code, _ := get(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any revision = %d", code)
	}
	if code, _ := get(t, srv, "/api/v1/status"); code != http.StatusServiceUnavailable {
		t.Errorf("/api/v1/status before any revision = %d", code)
	}

	good := snapshot(t, root)
	if _, err := d.Reconcile(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	write(t, root, "config/prod/db.yaml", "db:\n  port: \"x\"\n")
	if _, err := d.Reconcile(context.Background(), snapshot(t, root)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, srv, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after a revision = %d", code)
	}
	code, body := get(t, srv, "/api/v1/status")
	var st reconciler.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK {
		t.Fatalf("/api/v1/status: %d %v\n%s", code, err, body)
	}
	if st.Ready || st.Reason != reconciler.ReasonInvalid || envByName(&st, "prod").LastGood.Revision != good.Revision {
		t.Errorf("status = %+v", st)
	}
	code, metrics := get(t, srv, "/metrics")
	for _, want := range []string{
		`circle_reconciles_total{result="Succeeded"} 1`,
		`circle_reconciles_total{result="Invalid"} 1`,
		`circle_environment_ready{env="prod",reason="Invalid"} 0`,
		`circle_reconcile_duration_seconds_count{result="Invalid"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, b := range []string{body, metrics} {
		if strings.Contains(b, canary) {
			t.Error("the secret is served")
		}
	}
}
