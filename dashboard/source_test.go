package dashboard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/dashboard"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/testenv"
)

func snapshot(t *testing.T, root string) *sources.Snapshot {
	t.Helper()
	src, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The dashboard on a real reconciler, through its HTTP API: the example repository with a
// SOPS secret, reconciled once, then broken in prod. The pages show what the daemon
// recorded, and not the secret it decrypted.
func TestAPI_Daemon(t *testing.T) {
	ctx := context.Background()
	root := testenv.CopyTree(t, "../examples")
	testenv.SOPSEncrypt(t, root, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")
	var keys secrets.Keyring
	if err := keys.AddFile("../examples/keys/age.example.key"); err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	red := redact.New()
	rec := reconciler.New(nil, memStore(t), zerolog.Nop(), reconciler.Options{Keyring: &keys, Redactor: red, State: store})
	src := dashboard.API(rec.Handler())
	h := dashboard.New(src, dashboard.Options{Redactor: red})

	if st, err := src.Status(ctx); st != nil || err != nil {
		t.Fatalf("status before any reconcile = %v, %v", st, err)
	}
	if _, page := get(t, h, "/ui/"); !strings.Contains(page, "No revision reconciled yet") {
		t.Error("the overview before any reconcile")
	}

	good := snapshot(t, root)
	if _, err := rec.Reconcile(ctx, good); err != nil {
		t.Fatal(err)
	}
	if red.Len() == 0 {
		t.Fatal("the load stage taught the redactor nothing")
	}
	testenv.WriteFile(t, root, "config/prod/db.yaml", "db:\n  port: \"x\"\n")
	bad := snapshot(t, root)
	if _, err := rec.Reconcile(ctx, bad); err != nil {
		t.Fatal(err)
	}

	st, err := src.Status(ctx)
	if err != nil || st == nil || st.Revision != bad.Revision || st.Reason != reconciler.ReasonInvalid {
		t.Fatalf("status = %+v, %v", st, err)
	}
	hist, err := src.History(ctx, "dev", 10)
	if err != nil || len(hist) != 2 || hist[0].Revision != bad.Revision || hist[1].Revision != good.Revision || !hist[1].Ready {
		t.Fatalf("dev's history = %+v, %v", hist, err)
	}

	_, page := get(t, h, "/ui/")
	mustContain(t, page, `data-env="dev"`, `data-env="staging"`, `data-env="prod"`, "<strong>0</strong> in sync",
		"Invalid: ", "config/prod/db.yaml", "<code>"+strings.TrimPrefix(good.Revision, "sha256:")[:12]+"</code>",
		`<li class="sync" title="`+strings.TrimPrefix(good.Revision, "sha256:")[:12])
	for _, p := range []string{"/ui/", "/ui/environments/dev", "/ui/environments/prod", "/ui/revisions/" + good.Revision, "/ui/revisions/" + bad.Revision} {
		resp, body := get(t, h, p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
		noCanary(t, p, body)
	}
	_, page = get(t, h, "/ui/environments/prod")
	mustContain(t, page, "Problems at the last revision", "config/prod/db.yaml:")

	// Without a state store the API has no history, and the dashboard says so.
	bare := reconciler.New(nil, memStore(t), zerolog.Nop(), reconciler.Options{Keyring: &keys})
	if _, err := bare.Reconcile(ctx, good); err != nil {
		t.Fatal(err)
	}
	if _, err := dashboard.API(bare.Handler()).History(ctx, "dev", 10); !errors.Is(err, dashboard.ErrNoHistory) {
		t.Errorf("history without a store: %v", err)
	}
}

// The adapter reports an API that answers what it should not.
func TestAPI_Errors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		status  string
		history string
	}{
		{"server error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }, "HTTP 500: boom", "HTTP 500: boom"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, "read status: invalid", "read history of dev: invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := dashboard.API(tc.h)
			if _, err := src.Status(ctx); err == nil || !strings.Contains(err.Error(), tc.status) {
				t.Errorf("status: %v, want %q", err, tc.status)
			}
			if _, err := src.History(ctx, "dev", 1); err == nil || !strings.Contains(err.Error(), tc.history) {
				t.Errorf("history: %v, want %q", err, tc.history)
			}
		})
	}
	// A request the adapter cannot make (a nil context) is an error, not a panic.
	if _, err := dashboard.API(http.NotFoundHandler()).Status(nil); err == nil {
		t.Error("a nil context: no error")
	}
}

// memStore is an in-process store for a reconciler's status (storage's mem:// backend).
func memStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
