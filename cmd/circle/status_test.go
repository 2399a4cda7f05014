package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/testenv"
)

// circle status and circle reconcile --now against a running daemon: the table, -o json,
// a refused token, and a reconcile that is waited for.
func TestStatusAndReconcile(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("http://127.0.0.1:%d", port)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "status", "--server", server); code != exitUsage || !strings.Contains(errOut, "daemon at "+server) {
		t.Errorf("no daemon: exit %d %q", code, errOut)
	}
	serveUntilThen(t, `"ready": true`, func() {
		code, out, errOut := run(t, "status", "--server", server)
		if code != exitOK || !strings.Contains(out, "ENVIRONMENT") || !strings.Contains(out, "prod") || !strings.Contains(out, "Succeeded") {
			t.Errorf("status: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = run(t, "status", "--server", server, "-o", "json")
		var st reconciler.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitOK || len(st.Environments) != 3 {
			t.Errorf("status -o json: exit %d %v\n%s", code, err, out)
		}

		t.Setenv("CIRCLE_TRIGGER_TOKEN", "wrong-token-wrong-token")
		if code, _, errOut := run(t, "reconcile", "--now", "--server", server); code != exitUsage || !strings.Contains(errOut, "401") {
			t.Errorf("a wrong token: exit %d %q", code, errOut)
		}
		if code, _, errOut := run(t, "reconcile", "--server", server, "--token-file", tokenFile); code != exitUsage || !strings.Contains(errOut, "--now") {
			t.Errorf("without --now: exit %d %q", code, errOut)
		}
		code, out, errOut = run(t, "reconcile", "--now", "--server", server, "--token-file", tokenFile, "-o", "json")
		var again reconciler.Status
		if err := json.Unmarshal([]byte(out), &again); err != nil || code != exitOK || again.ReconciledAt.Equal(st.ReconciledAt) || !again.Ready {
			t.Errorf("reconcile --now: exit %d %v\n%s%s", code, err, out, errOut)
		}
	}, "--source", examplesDir, "--key-file", exampleKey, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--trigger-token-file", tokenFile)

	// A daemon with a read token: status and reconcile send it, and without it are refused.
	readFile := filepath.Join(t.TempDir(), "read-token")
	if err := os.WriteFile(readFile, []byte("read-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serveUntilThen(t, `"ready": true`, func() {
		if code, _, errOut := run(t, "status", "--server", server); code != exitUsage || !strings.Contains(errOut, "401") {
			t.Errorf("status without the read token: exit %d %q", code, errOut)
		}
		if code, out, errOut := run(t, "status", "--server", server, "--read-token-file", readFile); code != exitOK || !strings.Contains(out, "prod") {
			t.Errorf("status with the read token: exit %d\n%s%s", code, out, errOut)
		}
		t.Setenv("CIRCLE_READ_TOKEN", "read-token-0123456789")
		if code, _, errOut := run(t, "reconcile", "--now", "--server", server, "--token-file", tokenFile); code != exitOK {
			t.Errorf("reconcile --now with CIRCLE_READ_TOKEN: exit %d %q", code, errOut)
		}
		if code, _, errOut := run(t, "status", "--server", server, "--read-token-file", filepath.Join(t.TempDir(), "none")); code != exitUsage ||
			!strings.Contains(errOut, "--read-token-file") {
			t.Errorf("a missing read token file: exit %d %q", code, errOut)
		}
	}, "--source", examplesDir, "--key-file", exampleKey, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--trigger-token-file", tokenFile,
		"--read-token-file", readFile)

	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "serve", "--source", examplesDir, "--listen", "", "--trigger-token-file", short); code != exitUsage || !strings.Contains(errOut, "at least 16") {
		t.Errorf("a short token: exit %d %q", code, errOut)
	}
}

func TestStatusTable(t *testing.T) {
	st := &reconciler.Status{Revision: "sha256:0123456789abcdef", Reason: "Invalid", Environments: []reconciler.EnvStatus{
		{Name: "prod", Reason: "Invalid", Message: "line one\nline two", LastGood: &reconciler.Good{Revision: "abcdef0123456789"},
			Published: &reconciler.Published{Revision: "abcdef0123456789", Seq: 4},
			Applied:   map[string]*reconciler.Applied{"b": {Revision: "r2"}, "a": {Revision: "r1"}}},
	}}
	out := statusTable(st, st.ReconciledAt)
	for _, want := range []string{"Revision 0123456789ab", "abcdef012345 (#4)", "a@r1,b@r2", "line one …"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
