package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/testenv"
)

// circle plan --live compares the head with what a cluster target holds now: nothing after
// an apply; an object edited behind Circle's back as its field flagged drifted, in all
// three formats; the published build's files against the head's; and a cluster that
// cannot be read is the environment's error, not an empty target.
func TestPlanLive(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	ns := kube.Namespace(t)
	dir := copyExamples(t)
	testenv.SetNamespace(t, dir, "deploy/staging/kustomization.yaml", ns)
	write(t, dir, "circle.yaml", strings.Replace(readFileT(t, dir, "circle.yaml"), "targets:\n",
		"targets:\n  - name: kind\n    kind: cluster\n    environments: [staging]\n", 1))
	encryptWithSOPS(t, dir, "secrets/staging.sops.yaml", "db:\n  password: "+canary+"\n")
	kc := writeKubeconfig(t, kube)
	if code, out, errOut := run(t, "apply", dir, "--env", "staging", "--key-file", exampleKey, "--kubeconfig", kc, "--inventory-namespace", ns); code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	live := []string{"plan", dir, "--live", "--worktree", "--env", "staging", "--cluster", "kind=" + kc, "--inventory-namespace", ns, "--key-file", exampleKey}
	if code, out, errOut := run(t, live...); code != planNoChanges {
		t.Fatalf("right after the apply: exit %d\n%s%s", code, out, errOut)
	}

	// kubectl scale, as another field manager.
	cs := kube.Clientset(t)
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "shop-api", types.MergePatchType, []byte(`{"spec":{"replicas":7}}`),
		metav1.PatchOptions{FieldManager: "kubectl-scale"}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, append(live, "-o", "json")...)
	if code != planChanges {
		t.Fatalf("after a manual scale: exit %d\n%s%s", code, out, errOut)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	var dep *plan.ObjectChange
	for _, e := range p.Environments {
		for i, o := range e.Objects {
			if o.Kind == "Deployment" && o.Name == "shop-api" {
				dep = &e.Objects[i]
			}
		}
	}
	if dep == nil || !dep.Drifted || dep.Target != "kind" || len(dep.Fields) != 1 || dep.Fields[0].Path != "spec.replicas" ||
		dep.Fields[0].From != "7" || dep.Fields[0].To != "2" || !dep.Fields[0].Drifted {
		t.Fatalf("the scaled Deployment: %+v", dep)
	}
	for _, f := range []string{"text", "markdown"} {
		_, out, _ := run(t, append(live, "-o", f)...)
		if !strings.Contains(out, "drifted") || !strings.Contains(out, "spec.replicas") {
			t.Errorf("-o %s does not flag the drift:\n%s", f, out)
		}
		if strings.Contains(out, canary) {
			t.Errorf("-o %s shows the secret", f)
		}
	}
	// A head change to the same object is a change, not drift.
	if code, out, _ := run(t, "apply", dir, "--env", "staging", "--key-file", exampleKey, "--kubeconfig", kc, "--inventory-namespace", ns); code != exitOK {
		t.Fatalf("apply again: exit %d\n%s", code, out)
	}
	editFile(t, dir, "deploy/staging/kustomization.yaml", "value: 2", "value: 3")
	code, out, _ = run(t, append(live, "-o", "json")...)
	p = plan.Plan{}
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != planChanges {
		t.Fatalf("a head change: exit %d %v\n%s", code, err, out)
	}
	for _, e := range p.Environments {
		for _, o := range e.Objects {
			if o.Drifted {
				t.Errorf("a change of the head is flagged as drift: %+v", o)
			}
		}
	}

	// A cluster that cannot be reached is an error of the environment.
	bad := []string{"plan", dir, "--live", "--worktree", "--env", "staging", "--cluster", "kind=" + writeUnreachableKubeconfig(t), "--key-file", exampleKey}
	if code, out, errOut := run(t, bad...); code != planFailed || !strings.Contains(out+errOut, "target kind") {
		t.Errorf("an unreachable cluster: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(t, "plan", dir, "--live", "--key-file", exampleKey); code != planFailed || !strings.Contains(errOut, "--cluster") {
		t.Errorf("--live without a target: exit %d %s", code, errOut)
	}
}

// writeUnreachableKubeconfig is a kubeconfig naming a server nothing listens on.
func writeUnreachableKubeconfig(t *testing.T) string {
	t.Helper()
	p := t.TempDir() + "/kubeconfig"
	write(t, "/", strings.TrimPrefix(p, "/"), `apiVersion: v1
kind: Config
clusters: [{name: x, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: x, user: {token: t}}]
contexts: [{name: x, context: {cluster: x, user: x}}]
current-context: x
`)
	return p
}

// Against a storage target: nothing to do right after the daemon published, and a
// configuration change is the files it changes, by name and size.
func TestPlanLive_Storage(t *testing.T) {
	dir := copyExamples(t)
	ring := newKeyringFile(t)
	out := serveUntil(t, `"ready": true`, "--source", dir, "--key-file", exampleKey, "--storage-keyring", ring)
	live := []string{"plan", dir, "--live", "--worktree", "--publish", "file://" + out, "--storage-keyring", ring, "--key-file", exampleKey, "-o", "json"}
	code, got, errOut := run(t, live...)
	if code != planNoChanges {
		t.Fatalf("right after a publish: exit %d\n%s%s", code, got, errOut)
	}
	editFile(t, dir, "config/prod/app.yaml", "replicas: 4", "replicas: 6")
	code, got, errOut = run(t, live...)
	var p plan.Plan
	if err := json.Unmarshal([]byte(got), &p); err != nil || code != planChanges {
		t.Fatalf("after a change: exit %d %v\n%s%s", code, err, got, errOut)
	}
	for _, e := range p.Environments {
		// config.json, and manifests.yaml with it (the ConfigMap's content and name).
		changed := len(e.Storage) == 2 && e.Storage[0].Path == "config.json" && e.Storage[1].Path == "manifests.yaml"
		if (e.Name == "prod") != changed {
			t.Errorf("%s: storage changes %+v", e.Name, e.Storage)
		}
	}
	// The wrong keyring does not open the builds: an error of each environment.
	if code, got, errOut := run(t, "plan", dir, "--live", "--worktree", "--publish", "file://"+out, "--storage-keyring", newKeyringFile(t), "--key-file", exampleKey); code != planFailed {
		t.Errorf("another keyring: exit %d\n%s%s", code, got, errOut)
	}
}
