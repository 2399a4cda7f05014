package main

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/circlecore/circle/testenv"
)

// circle diff then circle apply of examples' staging against a real kube-apiserver: diff
// changes nothing and masks secrets; apply creates what the daemon would (the license Secret
// too); a second diff says nothing would change.
func TestApplyAndDiff(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	dir := copyExamples(t)
	testenv.SetNamespace(t, dir, "deploy/staging/kustomization.yaml", ns)
	encryptWithSOPS(t, dir, "secrets/staging.sops.yaml", "db:\n  password: "+canary+"\n")
	kc := writeKubeconfig(t, kube)
	common := []string{dir, "--env", "staging", "--key-file", exampleKey, "--kubeconfig", kc, "--inventory-namespace", ns}

	code, out, errOut := run(t, append([]string{"diff"}, common...)...)
	if code != exitOK || !strings.Contains(out, "create Deployment/"+ns+"/shop-api") || !strings.Contains(out, "5 of 5 object(s) would change") {
		t.Fatalf("diff before apply: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, canary) {
		t.Fatal("diff shows the secret")
	}
	if _, err := kube.Clientset(t).AppsV1().Deployments(ns).Get(ctx, "shop-api", metav1.GetOptions{}); err == nil {
		t.Fatal("diff created the Deployment")
	}

	code, out, errOut = run(t, append([]string{"apply"}, common...)...)
	if code != exitOK || strings.Count(out, " created") != 5 || !strings.Contains(out, "Secret/"+ns+"/circle-licenses") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, append([]string{"diff", "--exit-code"}, common...)...)
	if code != exitOK || !strings.Contains(out, "0 of 5 object(s) would change") {
		t.Errorf("diff after apply: exit %d\n%s", code, out)
	}
	write(t, dir, "config/staging/db.yaml", "db:\n  host: db.staging.internal\n  port: 5433\n")
	code, out, _ = run(t, append([]string{"diff", "--exit-code"}, common...)...)
	if code != exitFailed || !strings.Contains(out, "create ConfigMap/"+ns+"/circle-config-") || !strings.Contains(out, "delete ConfigMap/"+ns+"/circle-config-") {
		t.Errorf("diff of a config change: exit %d\n%s", code, out)
	}
}
