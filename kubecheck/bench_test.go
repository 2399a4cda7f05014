package kubecheck_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/circlecore/circle/kubecheck"
)

// stream is n objects as a renderer writes them: Deployments, Services and ConfigMaps in
// turn, each valid.
func stream(n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString("---\n")
		}
		switch i % 3 {
		case 0:
			b.WriteString(strings.ReplaceAll(deployment, "name: web\n", fmt.Sprintf("name: web-%d\n", i)))
		case 1:
			fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-%d\n  labels:\n    app.kubernetes.io/name: web\nspec:\n  selector:\n    app.kubernetes.io/name: web\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n", i)
		default:
			fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-%d\n  labels:\n    app.kubernetes.io/name: web\ndata:\n  config.json: '{\"a\": %d}'\n", i, i)
		}
	}
	return []byte(b.String())
}

// BenchmarkCheck checks 1,000 objects (one environment, every check on).
func BenchmarkCheck(b *testing.B) {
	env := kubecheck.Environment{Name: "prod", Manifests: stream(1000), Source: "rendered.yaml", Policy: kubecheck.DefaultPolicy("prod")}
	if _, err := kubecheck.Check(nil, kubecheck.Options{}); err != nil { // load the schemas outside the timing
		b.Fatal(err)
	}
	b.SetBytes(int64(len(env.Manifests)))
	b.ResetTimer()
	for b.Loop() {
		r, err := kubecheck.Check([]kubecheck.Environment{env}, kubecheck.Options{})
		if err != nil || r.Objects["prod"] != 1000 || len(r.Problems) != 0 {
			b.Fatalf("%v %v objects %v", err, r.Objects, r.Problems)
		}
	}
}
