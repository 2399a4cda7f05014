package testenv

import (
	"fmt"
	"strings"
)

// BenchObjects is a kustomize resource file of n objects that pass Circle's default checks
// (3 in 5 ConfigMaps cm-I, 1 a ServiceAccount sa-I, 1 a Deployment web-I), for benchmarks.
func BenchObjects(n int) string {
	var b strings.Builder
	for i := range n {
		switch i % 5 {
		case 0, 1, 2:
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  labels: {app.kubernetes.io/name: bench}\ndata:\n  key: value-%d\n", i, i)
		case 3:
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-%d\n  labels: {app.kubernetes.io/name: bench}\n", i)
		default:
			fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-%d
  labels: {app.kubernetes.io/name: bench}
spec:
  selector: {matchLabels: {app: web-%d}}
  template:
    metadata: {labels: {app: web-%d}}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.%d
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`, i, i, i, i)
		}
	}
	return b.String()
}
