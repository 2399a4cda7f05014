package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/testenv"
)

// circle diff then circle apply of examples' staging against a real kube-apiserver: diff
// changes nothing and masks secrets; apply creates what the daemon would (the license Secret
// too); a second diff says nothing would change.
func TestApplyAndDiff(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	if _, err := kube.Clientset(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-staging"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := copyExamples(t)
	encryptWithSOPS(t, dir, "secrets/staging.sops.yaml", "db:\n  password: "+canary+"\n")
	kc := writeKubeconfig(t, kube)
	common := []string{dir, "--env", "staging", "--key-file", exampleKey, "--kubeconfig", kc, "--inventory-namespace", "shop-staging"}

	code, out, errOut := run(t, append([]string{"diff"}, common...)...)
	if code != exitOK || !strings.Contains(out, "create Deployment/shop-staging/shop-api") || !strings.Contains(out, "5 of 5 object(s) would change") {
		t.Fatalf("diff before apply: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, canary) {
		t.Fatal("diff shows the secret")
	}
	if _, err := kube.Clientset(t).AppsV1().Deployments("shop-staging").Get(ctx, "shop-api", metav1.GetOptions{}); err == nil {
		t.Fatal("diff created the Deployment")
	}

	code, out, errOut = run(t, append([]string{"apply"}, common...)...)
	if code != exitOK || strings.Count(out, " created") != 5 || !strings.Contains(out, "Secret/shop-staging/circle-licenses") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, append([]string{"diff", "--exit-code"}, common...)...)
	if code != exitOK || !strings.Contains(out, "0 of 5 object(s) would change") {
		t.Errorf("diff after apply: exit %d\n%s", code, out)
	}
	write(t, dir, "config/staging/db.yaml", "db:\n  host: db.staging.internal\n  port: 5433\n")
	code, out, _ = run(t, append([]string{"diff", "--exit-code"}, common...)...)
	if code != exitFailed || !strings.Contains(out, "create ConfigMap/shop-staging/circle-config-") || !strings.Contains(out, "delete ConfigMap/shop-staging/circle-config-") {
		t.Errorf("diff of a config change: exit %d\n%s", code, out)
	}
}
