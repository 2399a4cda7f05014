package main

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
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
	// circle render shows what apply (the daemon's pipeline) applied: the same objects,
	// the license Secret included; only the masked Secret's name suffix differs.
	applied := objectSet(regexp.MustCompile(`(?m)^\s*(\S+/\S+/\S+) created`), out)
	code, rendered, errOut := run(t, "render", dir, "--env", "staging", "--key-file", exampleKey, "-o", "json")
	var list []struct {
		Kind     string `json:"kind"`
		Metadata struct{ Namespace, Name string }
	}
	if err := json.Unmarshal([]byte(rendered), &list); code != exitOK || err != nil {
		t.Fatalf("render: exit %d, %v\n%s", code, err, errOut)
	}
	var names []string
	for _, o := range list {
		names = append(names, o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name)
	}
	if got := objectSet(nil, strings.Join(names, "\n")); !slices.Equal(got, applied) || len(got) != 5 {
		t.Errorf("render shows\n%v\napply applied\n%v", got, applied)
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

// objectSet is the sorted Kind/namespace/name list of out's objects (the lines re picks, or
// every line for a nil re), with circle-secrets' content-hash suffix dropped: render masks
// the values the hash is of.
func objectSet(re *regexp.Regexp, out string) []string {
	var set []string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if re != nil {
		lines = nil
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			lines = append(lines, m[1])
		}
	}
	hash := regexp.MustCompile(`/circle-secrets-[a-z0-9]+$`)
	for _, l := range lines {
		set = append(set, hash.ReplaceAllString(l, "/circle-secrets-*"))
	}
	slices.Sort(set)
	return set
}
