package apply_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/testenv"
)

// objects1000 is an environment of 1,000 objects: 600 ConfigMaps, 250 ServiceAccounts and
// 150 Deployments (which never roll out here: there is no kubelet, and no wait is asked).
func objects1000(ns string) []byte {
	var b strings.Builder
	for i := range 600 {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: %s\ndata:\n  key: value-%d\n", i, ns, i)
	}
	for i := range 250 {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-%d\n  namespace: %s\n", i, ns)
	}
	for i := range 150 {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-%d
  namespace: %s
spec:
  replicas: 1
  selector: {matchLabels: {app: web-%d}}
  template:
    metadata: {labels: {app: web-%d}}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.%d
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`, i, ns, i, i, i)
	}
	return []byte(b.String())
}

// cpu is the process's user+system CPU time so far.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkApply_1000Objects is the first apply of a 1,000-object environment into an
// empty namespace (issue 8's goal: ≤ 20 s), then two applies of the same manifests, which
// change nothing (goal: ≤ 100 ms of Circle's CPU; the API server's is not counted). The
// first of those dry-runs every object it created (noop-first), the later ones only list
// (noop): see unchanged in seen.go.
func BenchmarkApply_1000Objects(b *testing.B) {
	kube := testenv.StartKube(b)
	a, err := apply.New(kube.Config)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var cold, first, firstCPU, noop, noopCPU time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := fmt.Sprintf("bench-apply-%d-%d", time.Now().UnixNano(), i)
		if _, err := kube.Clientset(b).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		m := objects1000(ns)
		opts := apply.Options{InventoryNamespace: ns, Prune: true}
		b.StartTimer()
		start := time.Now()
		res, err := a.Apply(ctx, "bench", m, opts)
		if err != nil || len(res.Created) != 1000 {
			b.Fatalf("cold apply: %v (%d created)", err, len(res.Created))
		}
		cold += time.Since(start)
		start, c0 := time.Now(), cpu()
		if _, err = a.Apply(ctx, "bench", m, opts); err != nil {
			b.Fatal(err)
		}
		first += time.Since(start)
		firstCPU += cpu() - c0
		start, c0 = time.Now(), cpu()
		res, err = a.Apply(ctx, "bench", m, opts)
		if err != nil || len(res.Unchanged) != 1000 {
			b.Fatalf("no-op apply: %v (%d unchanged)", err, len(res.Unchanged))
		}
		noop += time.Since(start)
		noopCPU += cpu() - c0
	}
	b.ReportMetric(cold.Seconds()/float64(b.N), "cold-s")
	b.ReportMetric(first.Seconds()/float64(b.N), "noop-first-s")
	b.ReportMetric(float64(firstCPU.Milliseconds())/float64(b.N), "noop-first-cpu-ms")
	b.ReportMetric(noop.Seconds()/float64(b.N), "noop-s")
	b.ReportMetric(float64(noopCPU.Milliseconds())/float64(b.N), "noop-cpu-ms")
}
