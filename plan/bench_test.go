package plan_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circlecore/circle/plan"
)

// manyObjects adds n objects to the example's kustomize base: a third each Deployments,
// Services and ConfigMaps, so every environment renders n more. Each carries an
// annotation made of its index and rev: another rev changes every object differently.
func manyObjects(fsys fstest.MapFS, n int, rev string) {
	var res []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("obj-%04d.yaml", i)
		var doc string
		switch i % 3 {
		case 0:
			doc = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-%04d
  annotations: {index: "%d-%s"}
spec:
  replicas: 2
  selector:
    matchLabels: {app: svc-%04d}
  template:
    metadata:
      labels: {app: svc-%04d}
    spec:
      containers:
        - name: main
          image: registry.example.com/app:1.0.0
          args: ["--port", "8080"]
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: INDEX
              value: "%d"
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`, i, i, rev, i, i, i)
		case 1:
			doc = fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: svc-%04d
  annotations: {index: "%d-%s"}
spec:
  selector: {app: svc-%04d}
  ports:
    - name: http
      port: 80
      targetPort: http
`, i, i, rev, i)
		default:
			doc = fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-%04d
  annotations: {index: "%d-%s"}
data:
  index: "%d"
  owner: team-%d
`, i, i, rev, i, i%7)
		}
		fsys["deploy/base/"+name] = &fstest.MapFile{Data: []byte(doc)}
		res = append(res, "  - "+name)
	}
	k := string(fsys["deploy/base/kustomization.yaml"].Data)
	k = strings.Replace(k, "resources:\n", "resources:\n"+strings.Join(res, "\n")+"\n", 1)
	fsys["deploy/base/kustomization.yaml"] = &fstest.MapFile{Data: []byte(k)}
}

// BenchmarkPlan is `circle plan` of a one-line change (prod's replica count) in a
// repository with 3 environments: both revisions built as the daemon builds them (only
// prod, whose inputs changed), compared, and written as Markdown. The goal is 3 s.
// "per-env" puts 1,000 objects in the kustomize base, so each environment renders over
// 1,000 ("3000-per-env": 3,000, for how it grows); "total" puts 334 there, about 1,000
// across the three. Kustomize's render is nearly all of the time, and grows faster than
// linearly with the objects.
func BenchmarkPlan(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
	}{{"objects=1000-per-env", 1000}, {"objects=3000-per-env", 3000}, {"objects=1000-total", 334}} {
		b.Run(c.name, func(b *testing.B) {
			base := examplesFS(b)
			manyObjects(base, c.n, "1")
			head := clone(base)
			head["config/prod/app.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(string(base["config/prod/app.yaml"].Data), "replicas: 4", "replicas: 5", 1))}
			b.ResetTimer()
			for b.Loop() {
				p := planOf(b, base, head)
				if err := p.WriteMarkdown(io.Discard, plan.DefaultMarkdownOptions()); err != nil {
					b.Fatal(err)
				}
				if p.Summary.Changed != 1 {
					b.Fatalf("%d environments change, want 1", p.Summary.Changed)
				}
			}
		})
	}
}
