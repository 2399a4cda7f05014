package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/testenv"
)

// circle serve --cluster records Kubernetes Events: after its first apply, an Applied event
// of the revision is on the environment's inventory ConfigMap, from component circle.
func TestServe_ClusterEvents(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	ns := kube.Namespace(t)
	dir := copyExamples(t)
	testenv.SetNamespace(t, dir, "deploy/dev/kustomization.yaml", ns)
	write(t, dir, "circle.yaml", strings.Replace(readFileT(t, dir, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [dev]\n", 1))
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs syncBuffer
	cmd := newRootCmd(&logs, &logs)
	cmd.SetArgs([]string{"serve", "--source", dir, "--key-file", exampleKey, "--interval", "1h",
		"--publish", "file://" + filepath.Join(work, "out"), "--storage-keyring", newKeyringFile(t), "--listen", "",
		"--cluster", "kind=" + writeKubeconfig(t, kube), "--inventory-namespace", ns, "--log-format", "json"})
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(serveCtx) }()
	ended := false
	defer func() {
		stop()
		if ended {
			return
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	var seen []corev1.Event
	for ctx.Err() == nil {
		l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=circle-inventory-dev"})
		if err != nil {
			t.Fatal(err)
		}
		seen = l.Items
		for _, e := range seen {
			if e.Reason == "Applied" && e.Type == corev1.EventTypeNormal && e.Source.Component == "circle" &&
				strings.HasPrefix(e.Message, "Applied revision sha256:") {
				return
			}
		}
		select {
		case err := <-done:
			ended = true
			t.Fatalf("serve ended: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("no Applied event on circle-inventory-dev; saw %+v\nlog:\n%s", seen, logs.String())
}
