package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circlecore/circle/testenv"
)

// outside stands in for what a repository must never reach: a git on PATH that records its
// calls (and succeeds, so kustomize would go on to the fetch that carries ?ref=), and an HTTP
// server on 127.0.0.1 that counts requests.
type outside struct {
	gitLog   string
	requests atomic.Int64
	url      string
}

func newOutside(t *testing.T) *outside {
	t.Helper()
	o := &outside{}
	bin := t.TempDir()
	o.gitLog = filepath.Join(bin, "git.log")
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte("#!/bin/sh\necho \"$@\" >> "+o.gitLog+"\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		fmt.Fprint(w, "token=from-the-network\n")
	}))
	t.Cleanup(srv.Close)
	o.url = srv.URL
	return o
}

func (o *outside) untouched(t *testing.T, what string) {
	t.Helper()
	if b, err := os.ReadFile(o.gitLog); err == nil {
		t.Errorf("%s ran git: %s", what, b)
	}
	if n := o.requests.Load(); n > 0 {
		t.Errorf("%s reached the network: %d requests", what, n)
	}
}

// A pull request whose overlay names a Git remote or a URL, in spellings the old guard did
// not list, is refused by every command that renders it, at the line it was written on; git
// never runs and nothing is fetched: `circle validate`, `circle render`, `circle plan
// --worktree` and `circle serve --source DIR`.
func TestBoundary_HostileOverlayThroughEveryCommand(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	g.commit(t, "base")
	o := newOutside(t) // after the repository is made: the test's own git is the real one

	host := strings.TrimPrefix(o.url, "http://")
	attacks := map[string]string{
		"a Git remote with an --upload-pack ref": "resources:\n  - ../base\n  - \"GitHub.com:org/repo?ref=--upload-pack=touch /tmp/circle-pwned\"\n",
		"user@host:org/repo.git":                 "resources:\n  - ../base\n  - \"user@" + host + ":org/repo.git\"\n",
		"a generator file by URL":                "resources:\n  - ../base\nconfigMapGenerator:\n  - name: stolen\n    files:\n      - \"token=" + o.url + "/latest/meta-data\"\n",
		"a patch by URL":                         "resources:\n  - ../base\npatches:\n  - path: \"" + o.url + "/patch.yaml\"\n",
	}
	const file = "deploy/prod/kustomization.yaml"
	for name, kust := range attacks {
		t.Run(name, func(t *testing.T) {
			write(t, dir, file, "namespace: shop-prod\n"+kust)
			for _, args := range [][]string{
				{"validate", dir, "--key-file", exampleKey},
				{"validate", dir, "--key-file", exampleKey, "-o", "json"},
				{"render", dir, "--env", "prod", "--key-file", exampleKey},
				{"plan", dir, "--base", "HEAD", "--worktree", "--key-file", exampleKey},
			} {
				code, out, errOut := run(t, args...)
				if code == exitOK {
					t.Errorf("%s: exit 0\n%s%s", args[0], out, errOut)
				}
				if !strings.Contains(out+errOut, file+":") {
					t.Errorf("%s %s: the problem does not name %s with a line:\n%s%s", args[0], strings.Join(args[2:], " "), file, out, errOut)
				}
				if strings.Contains(out+errOut, "from-the-network") {
					t.Errorf("%s: fetched content in the output", args[0])
				}
			}
			o.untouched(t, "the CLI")
		})
	}

	// The daemon on the folder: the revision fails, naming the file, and nothing is reached.
	write(t, dir, file, "namespace: shop-prod\n"+attacks["a Git remote with an --upload-pack ref"])
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	work := t.TempDir()
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := newRootCmd(&logs, &logs)
	cmd.SetArgs([]string{"serve", "--source", dir, "--key-file", exampleKey,
		"--publish", "file://" + filepath.Join(work, "out"), "--storage-keyring", newKeyringFile(t),
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--state-dir", filepath.Join(work, "state"), "--log-format", "json"})
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(serveCtx) }()
	waitRevision(ctx, t, base, "", false, &logs)
	stop()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if !strings.Contains(logs.String(), file+":") {
		t.Errorf("the daemon's log does not name %s:\n%s", file, logs.String())
	}
	if entries, _ := os.ReadDir(filepath.Join(work, "out")); len(entries) > 0 {
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(work, "out", e.Name(), "current.json")); err == nil {
				t.Errorf("the invalid revision was published for %s: %s", e.Name(), b)
			}
		}
	}
	o.untouched(t, "the daemon")
}

// leakForms are the forms a secret could leave in: as it is, encoded, re-cased, and in base64
// at each of the three alignments it could start at inside a longer encoded text.
func leakForms(secret string) []string {
	forms := []string{secret, strings.ToUpper(secret), strings.ToLower(secret), hex.EncodeToString([]byte(secret))}
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", pad) + secret))
		// Drop the characters the padding and the end touch: what is left appears in any
		// encoding of a text that holds the secret at that alignment.
		forms = append(forms, enc[(pad*4+2)/3+1:len(enc)-4])
	}
	return forms
}

func leaked(text, secret string) string {
	for _, f := range leakForms(secret) {
		if strings.Contains(text, f) {
			return f
		}
	}
	return ""
}

// A secret whose SOPS type tag an attacker flipped (no key needed: the tag is not
// authenticated) appears in no channel of the daemon, in any form: its log, the status API,
// the history, every dashboard page, the metrics, status.json in the bucket, the state
// store's bytes. The revision fails, naming the file and the key.
func TestBoundary_TypeTagFlipLeaksFromNoDaemonChannel(t *testing.T) {
	const secret = "Canary-4f1b-0d9a-TypeFlip-Secret"
	for _, tag := range []string{"int", "bool", "float", "time"} {
		t.Run(tag, func(t *testing.T) {
			dir := copyExamples(t)
			encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+secret+"\n")
			p := filepath.Join(dir, "secrets/prod.sops.yaml")
			b, err := os.ReadFile(p)
			if err != nil || !strings.Contains(string(b), "type:str]") {
				t.Fatalf("no str tag to flip (%v):\n%s", err, b)
			}
			if err := os.WriteFile(p, []byte(strings.Replace(string(b), "type:str]", "type:"+tag+"]", 1)), 0o644); err != nil {
				t.Fatal(err)
			}

			port, err := testenv.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			work := t.TempDir()
			var logs syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := newRootCmd(&logs, &logs)
			cmd.SetArgs([]string{"serve", "--source", dir, "--key-file", exampleKey,
				"--publish", "file://" + filepath.Join(work, "out"), "--storage-keyring", newKeyringFile(t),
				"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--state-dir", filepath.Join(work, "state"), "--log-format", "json"})
			serveCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- cmd.ExecuteContext(serveCtx) }()
			waitRevision(ctx, t, base, "", false, &logs)

			channels := map[string]string{}
			for _, u := range []string{"/api/v1/status", "/api/v1/history", "/metrics", "/ui/", "/ui/environments/prod", "/ui/environments/dev"} {
				resp, err := http.Get(base + u)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				channels[u] = string(body)
			}
			var st struct{ Revision string }
			_ = json.Unmarshal([]byte(channels["/api/v1/status"]), &st)
			if resp, err := http.Get(base + "/ui/revisions/" + st.Revision); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				channels["/ui/revisions/"+st.Revision] = string(body)
			}
			stop()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			channels["log"] = logs.String()
			_ = filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.HasSuffix(p, "ring.json") {
					b, _ := os.ReadFile(p)
					channels[strings.TrimPrefix(p, work)] = string(b)
				}
				return nil
			})
			for name, text := range channels {
				if f := leaked(text, secret); f != "" {
					t.Errorf("%s holds the secret (as %q)", name, f)
				}
			}
			if !strings.Contains(channels["/api/v1/status"], "secrets/prod.sops.yaml") || !strings.Contains(channels["/api/v1/status"], "password") {
				t.Errorf("the status does not name the file and key:\n%s", channels["/api/v1/status"])
			}
			if len(channels) < 10 {
				t.Errorf("only %d channels read; the state store or status.json is missing", len(channels))
			}
		})
	}
}

// The leak check sees a secret inside longer texts in every form it claims to.
func TestBoundary_LeakFormsSeeEncodings(t *testing.T) {
	const secret = "Canary-4f1b-0d9a-TypeFlip-Secret"
	for pre := range 4 {
		in := strings.Repeat("p", pre) + secret + "suffix"
		for _, enc := range []string{in, strings.ToUpper(in), base64.StdEncoding.EncodeToString([]byte(in)),
			base64.StdEncoding.EncodeToString([]byte("{\"v\":\"" + in + "\"}")), hex.EncodeToString([]byte(in))} {
			if leaked("before "+enc+" after", secret) == "" {
				t.Errorf("missed %q", enc)
			}
		}
	}
	if f := leaked("an error naming secrets/prod.sops.yaml:3 db.password", secret); f != "" {
		t.Errorf("false alarm on %q", f)
	}
}

// The size caps hold on every command that reads a pull request's folder, not only the
// daemon: a file over --max-file-size (or the default 16 MiB) refuses the repository with its
// name and the limit, before anything is parsed.
func TestBoundary_SizeCapsOnEveryCommand(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	base := g.commit(t, "base")
	write(t, dir, "config/base/big.yaml", "pad: \""+strings.Repeat("a", 8192)+"\"\n")
	g.commit(t, "head: a file over the cap")
	for _, args := range [][]string{
		{"validate", dir},
		{"render", dir, "--env", "dev"},
		{"secrets", "check", dir},
		{"package", "list", dir},
		{"plan", dir, "--base", base},
		{"plan", dir, "--base", base, "--worktree"},
	} {
		if args[0] != "package" {
			args = append(args, "--key-file", exampleKey)
		}
		code, out, errOut := run(t, append(args, "--max-file-size", "6Ki")...)
		if code == exitOK || !strings.Contains(out+errOut, "config/base/big.yaml") || !strings.Contains(out+errOut, "6144-byte file limit") {
			t.Errorf("circle %s with an 8 KiB file over --max-file-size 6Ki: exit %d\n%s%s", strings.Join(args[:2], " "), code, out, errOut)
		}
	}
	// Under the default caps the same repository is read and valid.
	if code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey); code != exitOK {
		t.Errorf("under the default cap: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--max-tree-size", "16Ki"); code == exitOK || !strings.Contains(out+errOut, "16384-byte limit") {
		t.Errorf("--max-tree-size 16Ki: exit %d\n%s%s", code, out, errOut)
	}
}
