package reconciler_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/testenv"
)

// proxy is a TCP pass-through to the API server that the test can cut and restore, so a
// cluster target goes away without stopping the server other tests share.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, up: true}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			up := p.up
			if up {
				p.conns = append(p.conns, c)
			}
			p.mu.Unlock()
			if !up {
				c.Close()
				continue
			}
			go func() {
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				_, _ = io.Copy(c, s)
				c.Close()
			}()
		}
	}()
	return p
}

// set cuts (closing every open connection) or restores the way through.
func (p *proxy) set(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// The storage server, the API server and the Git remote each go away for a while: the
// daemon retries with backoff, the target that is up proceeds, and once everything is back
// storage and cluster converge on the latest revision.
func TestRun_OutagesConverge(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	s3 := testenv.NewS3(t)
	target, _ := newTarget(t, s3.NewBucket(t))
	u, err := url.Parse(kube.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	cfg := rest.CopyConfig(kube.Config)
	cfg.Host = "https://" + px.ln.Addr().String()
	cfg.Timeout = 5 * time.Second
	cluster, err := apply.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	root := copyExamples(t)
	testenv.SetNamespace(t, root, "deploy/dev/kustomization.yaml", ns)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+"  - name: kind\n    kind: cluster\n    environments: [dev]\n")
	remote := testenv.NewGitRepo(t, testenv.ReadTree(t, root))
	var pollErrors atomic.Int32
	src, err := git.New(git.Options{URL: remote.FileURL(), Interval: 100 * time.Millisecond,
		OnError: func(error) { pollErrors.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	status := memStore(t)
	d := newDaemon(t, src, status, reconciler.Options{Keyring: exampleKeys(t), Target: target, RetryBase: 100 * time.Millisecond,
		Clusters: map[string]reconciler.Cluster{"kind": cluster}, Apply: apply.Options{InventoryNamespace: ns, Prune: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	dev := func(st *reconciler.Status) reconciler.EnvStatus { return envByName(st, "dev") }
	rev := func(a *reconciler.Applied) string {
		if a == nil {
			return ""
		}
		return a.Revision
	}
	first := waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return st.Ready })

	// Storage down: the cluster still gets the new revision.
	s3.Kill()
	rev2 := remote.Commit(t, map[string]string{"config/dev/extra.yaml": "app:\n  replicas: 2\n"}, "two")
	st := waitStatus(t, ctx, status, func(st *reconciler.Status) bool {
		return rev(dev(st).Applied["kind"]) == rev2 && dev(st).Reason == reconciler.ReasonPublishFailed
	})
	if dev(st).Published.Revision != first.Revision {
		t.Errorf("published during the outage: %+v", dev(st).Published)
	}

	// Storage back, API server away: storage gets the next revision.
	s3.Restart(t)
	px.set(false)
	rev3 := remote.Commit(t, map[string]string{"config/dev/extra.yaml": "app:\n  replicas: 3\n"}, "three")
	st = waitStatus(t, ctx, status, func(st *reconciler.Status) bool {
		return dev(st).Published != nil && dev(st).Published.Revision == rev3 && dev(st).Reason == reconciler.ReasonApplyFailed
	})
	if rev(dev(st).Applied["kind"]) != rev2 {
		t.Errorf("the cluster target moved while away: %+v", dev(st).Applied["kind"])
	}

	// The API server back, the Git remote away: the retried revision lands in the cluster;
	// polls fail and are logged; a push after the remote is back lands everywhere.
	hidden := remote.Path + ".away"
	if err := os.Rename(remote.Path, hidden); err != nil {
		t.Fatal(err)
	}
	px.set(true)
	waitStatus(t, ctx, status, func(st *reconciler.Status) bool { return st.Ready && rev(dev(st).Applied["kind"]) == rev3 })
	for pollErrors.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("polls of a missing remote did not fail")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Rename(hidden, remote.Path); err != nil {
		t.Fatal(err)
	}
	rev4 := remote.Commit(t, map[string]string{"config/dev/extra.yaml": "app:\n  replicas: 4\n"}, "four")
	st = waitStatus(t, ctx, status, func(st *reconciler.Status) bool {
		return st.Ready && st.Revision == rev4 && rev(dev(st).Applied["kind"]) == rev4 && dev(st).Published.Revision == rev4
	})
	if !strings.Contains(d.logs.String(), "trying the revision again") {
		t.Error("no retry was logged")
	}
	if c := st.Commit; c == nil || !strings.HasPrefix(c.Message, "four") || c.Author == "" || c.Signed {
		t.Errorf("the status's commit: %+v", c)
	}
	d.noSecret(t)
}
