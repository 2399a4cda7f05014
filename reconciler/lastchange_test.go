package reconciler_test

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/circlecore/circle/reconciler"
)

// Each environment's status says what its last accepted build changed: the first build
// since the daemon started has nothing to compare with; a config change replaces the
// hash-named ConfigMap and the Secret and changes the Deployment that mounts them, by
// field path; a secret's value is never in the status.
func TestReconcile_LastChange(t *testing.T) {
	root := copyExamples(t)
	encrypt(t, root, "secrets/dev.sops.yaml", "db:\n  password: "+canary+"\n")
	bucket := memStore(t)
	d := newDaemon(t, nil, bucket, reconciler.Options{Keyring: exampleKeys(t)})
	ctx := context.Background()

	first := snapshot(t, root)
	st, err := d.Reconcile(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	lc := envByName(st, "dev").LastChange
	if lc == nil || !lc.FirstSinceStart || lc.To != first.Revision || lc.From != "" || len(lc.Objects) != 0 || lc.At.IsZero() {
		t.Fatalf("first build: %+v", lc)
	}

	write(t, root, "config/dev/app.yaml", "app:\n  logLevel: info\nfeatures:\n  newCheckout: true\n")
	encrypt(t, root, "secrets/dev.sops.yaml", "db:\n  password: "+canary+"-rotated\n")
	second := snapshot(t, root)
	st, err = d.Reconcile(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	lc = envByName(st, "dev").LastChange
	if lc == nil || lc.FirstSinceStart || lc.From != first.Revision || lc.To != second.Revision {
		t.Fatalf("second build: %+v", lc)
	}
	raw, _ := json.MarshalIndent(lc, "", "  ")
	t.Logf("last change:\n%s", raw)
	byKind := map[string]reconciler.ChangedObject{}
	for _, o := range lc.Objects {
		byKind[strings.SplitN(o.ID, "/", 2)[0]+"/"+o.Action] = o
	}
	cm, ok := byKind["ConfigMap/replaced"]
	if !ok || !strings.HasPrefix(cm.ID, "ConfigMap/shop-dev/circle-config-") || cm.PreviousName == "" ||
		!slices.ContainsFunc(cm.Fields, func(f reconciler.ChangedField) bool { return strings.Contains(f.Path, "config.json") }) {
		t.Errorf("ConfigMap: %+v in %s", cm, raw)
	}
	dep, ok := byKind["Deployment/changed"]
	if !ok || len(dep.Fields) == 0 {
		t.Errorf("Deployment: %+v in %s", dep, raw)
	}
	if !slices.ContainsFunc(lc.Files, func(f reconciler.ChangedFile) bool { return f.Path == "config.json" && f.Action == "changed" }) {
		t.Errorf("files: %+v", lc.Files)
	}
	// No value at all: neither the secret nor the config's.
	all := statusJSON(t, d)
	for _, v := range []string{canary, "logLevel"} {
		if strings.Contains(string(lastChangeJSON(t, all, "dev")), v) {
			t.Errorf("%q is in the last change:\n%s", v, lastChangeJSON(t, all, "dev"))
		}
	}
	d.noSecret(t)

	// The same revision again (a forced reconcile) keeps the change it made.
	st, err = d.Reconcile(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if again := envByName(st, "dev").LastChange; again == nil || again.From != first.Revision || len(again.Objects) != len(lc.Objects) {
		t.Errorf("after a forced reconcile: %+v", again)
	}
}

func statusJSON(t *testing.T, d *daemon) []byte {
	t.Helper()
	rc, _, err := d.bucket.Get(context.Background(), reconciler.StatusKey)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// lastChangeJSON is env's lastChange as status.json holds it.
func lastChangeJSON(t *testing.T, status []byte, env string) []byte {
	t.Helper()
	var st struct {
		Environments []struct {
			Name       string          `json:"name"`
			LastChange json.RawMessage `json:"lastChange"`
		} `json:"environments"`
	}
	if err := json.Unmarshal(status, &st); err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Environments {
		if e.Name == env {
			return e.LastChange
		}
	}
	t.Fatalf("no %s in the status", env)
	return nil
}
