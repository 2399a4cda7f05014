package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// gitRoot is the folder every repository of this test binary lives in, so the HTTP and SSH
// servers can serve all of them.
func gitRoot() (string, error) {
	return shared("gitroot", func() (string, func(), error) {
		return tempDir("git")
	})
}

// GitRepo is a bare repository on local disk that tests push commits into and Circle
// fetches from, over file://, HTTP or SSH.
type GitRepo struct {
	// Path is the bare repository's folder.
	Path string
	// Name is its path relative to the servers' root, e.g. "repo-3.git".
	Name string
	work string
}

var repoSeq atomic.Int64

// NewGitRepo creates a bare repository whose branch main holds one commit with files
// (path → content).
func NewGitRepo(t testing.TB, files map[string]string) *GitRepo {
	t.Helper()
	root, err := gitRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	name := fmt.Sprintf("repo-%d.git", repoSeq.Add(1))
	r := &GitRepo{Path: filepath.Join(root, name), Name: name, work: filepath.Join(root, "work-"+name)}
	git(t, root, "init", "--quiet", "--bare", "--initial-branch=main", r.Path)
	git(t, root, "init", "--quiet", "--initial-branch=main", r.work)
	git(t, r.work, "remote", "add", "origin", r.Path)
	r.Commit(t, files, "initial commit")
	return r
}

// Commit writes files into the branch main (an empty content deletes the file), commits and
// pushes, and returns the new commit's hash.
func (r *GitRepo) Commit(t testing.TB, files map[string]string, message string) string {
	t.Helper()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(r.work, filepath.FromSlash(p))
		if files[p] == "" {
			git(t, r.work, "rm", "--quiet", "--ignore-unmatch", p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, r.work, "add", "--all")
	git(t, r.work, "commit", "--quiet", "--allow-empty", "-m", message)
	git(t, r.work, "push", "--quiet", "origin", "main")
	return strings.TrimSpace(git(t, r.work, "rev-parse", "HEAD"))
}

// Tag creates an annotated tag at the head of main and pushes it.
func (r *GitRepo) Tag(t testing.TB, tag string) {
	t.Helper()
	git(t, r.work, "tag", "-a", "-m", tag, tag)
	git(t, r.work, "push", "--quiet", "origin", tag)
}

// FileURL is the repository's file:// URL.
func (r *GitRepo) FileURL() string { return "file://" + r.Path }

// Git runs the git CLI in the repository's work tree with extra environment, for what the
// other helpers do not cover (signing, rewriting history); the branch is not pushed.
func (r *GitRepo) Git(t testing.TB, env []string, args ...string) string {
	t.Helper()
	return gitEnv(t, r.work, env, args...)
}

// git runs the git CLI with a fixed identity and no user or system configuration.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gitEnv(t, dir, nil, args...)
}

func gitEnv(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Circle Test", "GIT_AUTHOR_EMAIL=test@circle.invalid",
		"GIT_COMMITTER_NAME=Circle Test", "GIT_COMMITTER_EMAIL=test@circle.invalid")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("testenv: git %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// GitHTTP serves every repository over git's smart HTTP protocol through the real
// git-http-backend. Paths under /public/ need no credentials; paths under /private/ need
// HTTP basic auth with Username and Password.
type GitHTTP struct {
	URL      string // http://127.0.0.1:PORT
	Username string
	Password string
}

// StartGitHTTP returns the package's git HTTP server, starting it on first use.
func StartGitHTTP(t testing.TB) *GitHTTP {
	t.Helper()
	return start(t, "githttp", startGitHTTP)
}

func startGitHTTP() (*GitHTTP, func(), error) {
	backend, err := Tool(ToolGitHTTPBackend)
	if err != nil {
		return nil, nil, err
	}
	root, err := gitRoot()
	if err != nil {
		return nil, nil, err
	}
	g := &GitHTTP{Username: "circle", Password: "circle-test-token"}
	env := []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"}
	mux := http.NewServeMux()
	mux.Handle("/public/", &cgi.Handler{Path: backend, Root: "/public", Env: env})
	private := &cgi.Handler{Path: backend, Root: "/private", Env: env}
	mux.Handle("/private/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != g.Username || p != g.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="circle-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		private.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	g.URL = srv.URL
	return g, srv.Close, nil
}

// PublicURL is the repository's URL that needs no credentials.
func (g *GitHTTP) PublicURL(r *GitRepo) string { return g.URL + "/public/" + r.Name }

// PrivateURL is the repository's URL that needs basic auth.
func (g *GitHTTP) PrivateURL(r *GitRepo) string { return g.URL + "/private/" + r.Name }

// GitSSH is Debian's OpenSSH server on a loopback port, letting one client key log in as
// the current user and run git-upload-pack on the repositories.
type GitSSH struct {
	Addr string // 127.0.0.1:PORT
	User string
	// ClientKey is the client's private key, OpenSSH PEM, no passphrase.
	ClientKey []byte
	// KnownHosts is a known_hosts line for the server's host key.
	KnownHosts string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
}

// StartGitSSH returns the package's SSH server, starting it on first use.
func StartGitSSH(t testing.TB) *GitSSH {
	t.Helper()
	return start(t, "gitssh", startGitSSH)
}

func startGitSSH() (*GitSSH, func(), error) {
	sshd, err := Tool(ToolSSHD)
	if err != nil {
		return nil, nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, nil, err
	}
	dir, rm, err := tempDir("ssh")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*GitSSH, func(), error) { rm(); return nil, nil, err }
	hostPub, hostPEM, err := newKey("host")
	if err != nil {
		return fail(err)
	}
	clientPub, clientPEM, err := newKey("client")
	if err != nil {
		return fail(err)
	}
	port, err := FreePort()
	if err != nil {
		return fail(err)
	}
	g := &GitSSH{
		Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		User:      u.Username,
		ClientKey: clientPEM,
		HostKey:   hostPub,
	}
	g.KnownHosts = fmt.Sprintf("[127.0.0.1]:%d %s", port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostPub))))
	files := map[string][]byte{
		"host_key":        hostPEM,
		"authorized_keys": ssh.MarshalAuthorizedKey(clientPub),
		"sshd_config": []byte(strings.Join([]string{
			"Port " + strconv.Itoa(port),
			"ListenAddress 127.0.0.1",
			"HostKey " + filepath.Join(dir, "host_key"),
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PubkeyAuthentication yes",
			"PermitRootLogin prohibit-password",
			// The temp folder is not owned the way sshd's strict checks want.
			"StrictModes no",
			"UsePAM no",
			"LogLevel ERROR",
			"",
		}, "\n")),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fail(err)
		}
	}
	// sshd refuses to start as root without its privilege-separation folder.
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	p, err := startProcess("sshd", dir, nil, sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	if err != nil {
		return fail(err)
	}
	if err := p.waitReady(15*time.Second, tcpReady(g.Addr)); err != nil {
		return fail(err)
	}
	return g, func() { p.stop(); rm() }, nil
}

// URL is the repository's ssh:// URL.
func (g *GitSSH) URL(r *GitRepo) string {
	return "ssh://" + g.User + "@" + g.Addr + r.Path
}

func newKey(comment string) (ssh.PublicKey, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return sshPub, pem.EncodeToMemory(block), nil
}
