package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tool names, as keys of the env file install.sh writes and as CIRCLE_TESTENV_* variables
// that override it.
const (
	ToolEtcd           = "CIRCLE_TESTENV_ETCD"
	ToolKubeAPIServer  = "CIRCLE_TESTENV_KUBE_APISERVER"
	ToolVersityGW      = "CIRCLE_TESTENV_VERSITYGW"
	ToolFakeGCS        = "CIRCLE_TESTENV_FAKE_GCS"
	ToolAzurite        = "CIRCLE_TESTENV_AZURITE"
	ToolSSHD           = "CIRCLE_TESTENV_SSHD"
	ToolGitHTTPBackend = "CIRCLE_TESTENV_GIT_HTTP_BACKEND"
	ToolSOPS           = "CIRCLE_TESTENV_SOPS"
	ToolCUE            = "CIRCLE_TESTENV_CUE"
	ToolKustomize      = "CIRCLE_TESTENV_KUSTOMIZE"
	ToolRclone         = "CIRCLE_TESTENV_RCLONE"
	ToolChromium       = "CIRCLE_TESTENV_CHROMIUM"
	ToolLocalKMS       = "CIRCLE_TESTENV_LOCAL_KMS"
	ToolKubebuilder    = "KUBEBUILDER_ASSETS"
)

// ErrNotInstalled is returned when a server's binary is missing; its message tells the
// reader how to install it.
var ErrNotInstalled = errors.New("not installed: run `make testenv` (testenv/install.sh)")

// CacheDir is where install.sh keeps the tools.
func CacheDir() string {
	if d := os.Getenv("CIRCLE_TESTENV_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "circle-testenv")
	}
	return filepath.Join(home, ".cache", "circle-testenv")
}

var (
	envOnce sync.Once
	envFile map[string]string
)

// Tool returns the path of an installed tool, from its CIRCLE_TESTENV_* variable or the env
// file install.sh wrote, and checks that it exists.
func Tool(name string) (string, error) {
	path := os.Getenv(name)
	if path == "" {
		envOnce.Do(func() { envFile = readEnvFile(filepath.Join(CacheDir(), "env")) })
		path = envFile[name]
	}
	if path == "" {
		return "", fmt.Errorf("%s: %w", name, ErrNotInstalled)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s (%s): %w", name, path, ErrNotInstalled)
	}
	return path, nil
}

func readEnvFile(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// registry of running servers, stopped by Main (or Stop) when the test binary is done.
// Each key has its own lock so one server's start may use another (the git servers share
// the repositories' root) without deadlocking.
var (
	mu      sync.Mutex
	entries = map[string]*entry{}
	stops   []func()
)

type entry struct {
	mu      sync.Mutex
	value   any
	started bool
}

// shared starts a server once per test binary under key and hands the same value to every
// later caller. A failed start is not cached, so each test reports it.
func shared[T any](key string, start func() (T, func(), error)) (T, error) {
	mu.Lock()
	e := entries[key]
	if e == nil {
		e = &entry{}
		entries[key] = e
	}
	mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return e.value.(T), nil
	}
	v, stop, err := start()
	if err != nil {
		var zero T
		return zero, err
	}
	e.value, e.started = v, true
	mu.Lock()
	stops = append(stops, stop)
	mu.Unlock()
	return v, nil
}

// Stop stops every server this package started, newest first.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stops = nil
	entries = map[string]*entry{}
}

// Main runs the package's tests and then stops the servers they started.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// FreePort asks the kernel for a free loopback port. The port is released before the server
// binds it; servers that lose the race fail their readiness check and say so.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a server started by this package, with its output kept for error messages.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func startProcess(name, logDir string, env []string, bin string, args ...string) (*process, error) {
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// Own process group, so node's or sshd's children go with it; and killed with the test
	// binary if it dies without running Stop (a test timeout panics past Main).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and, after a grace period, SIGKILL: Azurite sometimes ignores SIGTERM.
func (p *process) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// tail returns the end of the process's output, for an error message.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitReady polls ready until it returns nil, the process exits, or timeout passes.
func (p *process) waitReady(timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %s", p.name, p.tail())
		case <-ctx.Done():
			p.stop()
			return fmt.Errorf("%s not ready after %s (%v): %s", p.name, timeout, last, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
	}
}

// httpReady reports whether url answers at all (any status: servers differ in what they
// answer for an anonymous GET of /).
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
}

// tcpReady reports whether addr accepts connections.
func tcpReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// tempDir makes a folder that outlives single tests but is removed by Stop.
func tempDir(name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "circle-testenv-"+name+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// start returns the shared server under key, starting it on first use, and fails the test
// with a message naming the missing piece when it cannot.
func start[T any](t testing.TB, key string, fn func() (T, func(), error)) T {
	t.Helper()
	v, err := shared(key, fn)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return v
}
