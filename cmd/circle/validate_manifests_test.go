package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/circlecore/circle/kubecheck"
	"github.com/circlecore/circle/testenv"
)

// A Deployment with something for every check; the lines of the fields matter.
const badDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-api
spec:
  replica: 2
  template:
    spec:
      containers:
        - name: api
          image: registry.example.com/shop/api:latest
          securityContext:
            privileged: true
          volumeMounts:
            - name: config
              mountPath: /etc/shop
      volumes:
        - name: config
          projected:
            sources:
              - configMap:
                  name: circle-config
              - secret:
                  name: circle-secrets
`

// The rendered manifests are checked against Kubernetes' schema and each environment's
// policy (circle.yaml's, over the defaults); a problem in a base shared by every overlay
// is listed once with its environments, at the file and line it was written.
func TestValidate_Manifests(t *testing.T) {
	dir := copyExamples(t)
	settings, err := os.ReadFile(dir + "/circle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(settings), "  - name: dev\n", "  - name: dev\n    policy:\n      manifests:\n        disable: [resource-requests]\n", 1)
	s = strings.Replace(s, "  - name: staging\n", "  - name: staging\n    policy:\n      manifests:\n        requiredLabels: [app.kubernetes.io/name, team]\n        denyLatestTag: true\n", 1)
	write(t, dir, "circle.yaml", s)
	write(t, dir, "deploy/base/deployment.yaml", badDeployment)
	encryptWithSOPS(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\n")

	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
	}
	if strings.Contains(out+errOut, canary) {
		t.Fatalf("the secret is in the output:\n%s%s", out, errOut)
	}
	want := `deploy/base/deployment.yaml:6:3: Deployment/shop-api spec.replica: unknown field "replica" [schema] [dev, staging, prod]
deploy/base/deployment.yaml:13:13: Deployment/shop-api spec.template.spec.containers[0].securityContext.privileged: container "api" is privileged [no-privileged] [dev, staging, prod]
deploy/base/service.yaml:3:1: Service/shop-api metadata.labels: missing required label "team" [required-labels] [staging]
deploy/base/deployment.yaml:3:1: Deployment/shop-api metadata.labels: missing required label "team" [required-labels] [staging]
deploy/base/deployment.yaml:11:11: Deployment/shop-api spec.template.spec.containers[0].image: image tag "latest" is not allowed in staging [no-latest-tag] [staging]
deploy/base/deployment.yaml:10:11: Deployment/shop-api spec.template.spec.containers[0].resources.requests: container "api" has no cpu or memory request [resource-requests] [staging, prod]
deploy/base/deployment.yaml:11:11: Deployment/shop-api spec.template.spec.containers[0].image: image tag "latest" is not allowed in prod [no-latest-tag] [prod]

7 problem(s) in dev, prod, staging
`
	if out != want {
		t.Errorf("output:\n%s\nwant\n%s", out, want)
	}

	code, out, _ = run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev", "-o", "json")
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitFailed {
		t.Fatalf("exit %d, -o json: %v\n%s", code, err, out)
	}
	if res.Valid || len(res.Problems) != 2 || res.Problems[0].Path != "Deployment/shop-api spec.replica" || res.Problems[0].Line != 6 {
		t.Errorf("-o json = %+v", res)
	}

	// A kustomization that does not build is a problem of its environment, at the line that
	// names what is missing.
	write(t, dir, "deploy/dev/kustomization.yaml", "resources:\n  - missing.yaml\n")
	code, out, _ = run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev")
	if code != exitFailed || !strings.Contains(out, "deploy/dev/kustomization.yaml:2") || !strings.Contains(out, "missing.yaml") {
		t.Errorf("a broken overlay: exit %d\n%s", code, out)
	}
}

// A custom resource whose CRD the manifests do not carry is noted, not failed.
func TestValidate_ManifestNotes(t *testing.T) {
	dir := copyExamples(t)
	write(t, dir, "deploy/dev/cert.yaml", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: shop\n  labels: {app.kubernetes.io/name: shop}\nspec: {secretName: shop-tls}\n")
	write(t, dir, "deploy/dev/kustomization.yaml", "namespace: shop-dev\nresources:\n  - ../base\n  - cert.yaml\n")
	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "dev: valid (10 values, 2 secret, 6 objects)\n") ||
		!strings.Contains(out, "note: deploy/dev/cert.yaml:1:1: Certificate/shop: no CustomResourceDefinition for kind Certificate in apiVersion cert-manager.io/v1 in the manifests: not checked against a schema [schema] [dev]\n") {
		t.Errorf("output:\n%s", out)
	}
}

// --server-side dry-runs every object against a real API server, which knows what no
// schema says (a name's format); an object in a namespace the manifests create is noted.
func TestValidate_ServerSide(t *testing.T) {
	kube := testenv.StartKube(t)
	kubeconfig := writeKubeconfig(t, kube)
	ns := kube.Namespace(t)
	dir := copyExamples(t)
	write(t, dir, "deploy/dev/kustomization.yaml", "namespace: "+ns+"\nresources:\n  - ../base\n")
	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev", "--server-side", "--kubeconfig", kubeconfig, "--context", "test")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}

	fresh := ns + "-new"
	write(t, dir, "deploy/dev/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_DNS_Name\n  labels: {app.kubernetes.io/name: shop}\n")
	write(t, dir, "deploy/staging/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+fresh+"\n  labels: {app.kubernetes.io/name: shop}\n")
	write(t, dir, "deploy/dev/crd.yaml", `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.validate.example.com
  labels: {app.kubernetes.io/name: shop}
spec:
  group: validate.example.com
  names: {kind: Gizmo, plural: gizmos}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: validate.example.com/v1
kind: Gizmo
metadata:
  name: g
  labels: {app.kubernetes.io/name: shop}
`)
	write(t, dir, "deploy/dev/kustomization.yaml", "namespace: "+ns+"\nresources:\n  - ../base\n  - bad.yaml\n  - crd.yaml\n")
	write(t, dir, "deploy/staging/kustomization.yaml", "namespace: "+fresh+"\nresources:\n  - namespace.yaml\n  - ../base\n")
	code, out, errOut = run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev", "--env", "staging", "--server-side", "--kubeconfig", kubeconfig)
	if code != exitFailed {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("circle validate --server-side:\n%s", out)
	for _, want := range []string{
		`deploy/dev/bad.yaml: ConfigMap/Not_A_DNS_Name: ConfigMap "Not_A_DNS_Name" is invalid: metadata.name: Invalid value: "Not_A_DNS_Name": `,
		" [server-side] [dev]\n",
		"note: deploy/base/deployment.yaml: Deployment/shop-api: not dry-run: its namespace " + fresh + " does not exist yet (these manifests create it) [server-side] [staging]\n",
		"note: deploy/dev/crd.yaml: Gizmo/g: not dry-run: its kind is not in the cluster yet (a CustomResourceDefinition of these manifests defines it) [server-side] [dev]\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Namespace/"+fresh) || strings.Contains(out, "CustomResourceDefinition/") {
		t.Errorf("the Namespace or the CRD itself was refused:\n%s", out)
	}

	code, _, errOut = run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev", "--server-side", "--kubeconfig", kubeconfig+".missing")
	if code != exitUsage || !strings.Contains(errOut, "--server-side") {
		t.Errorf("no cluster: exit %d, %q", code, errOut)
	}
}

// circle.yaml's schema lists the same check IDs the manifests package has.
func TestValidate_CheckIDsInSchema(t *testing.T) {
	b, err := os.ReadFile("../../schema/circle.cue")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#CheckID: (.*)$`).FindSubmatch(b)
	quoted := make([]string, 0, len(kubecheck.CheckIDs()))
	for _, id := range kubecheck.CheckIDs() {
		quoted = append(quoted, strconv.Quote(id))
	}
	if m == nil || string(m[1]) != strings.Join(quoted, " | ") {
		t.Errorf("#CheckID in schema/circle.cue is %q, want %q", m, strings.Join(quoted, " | "))
	}
}

// An overlay that sets no namespace, whose objects name their own, leaves Circle's generated
// ConfigMap and Secret without one: validate and plan say so at the overlay's file, and
// circle.yaml's environments[].namespace gives them a home. (Found pointing the daemon at a
// plain repository: every apply failed with "namespace not specified", retried forever.)
func TestValidate_GeneratedObjectsNeedANamespace(t *testing.T) {
	dir := copyExamples(t)
	g := newGitRepo(t, dir)
	rev := g.commit(t, "base")
	deployment := readFileT(t, dir, "deploy/base/deployment.yaml")
	write(t, dir, "deploy/base/deployment.yaml", strings.Replace(deployment, "  name: shop-api\n", "  name: shop-api\n  namespace: shop-dev\n", 1))
	write(t, dir, "deploy/dev/kustomization.yaml", "resources:\n  - ../base\n")
	for _, args := range [][]string{{"validate", dir}, {"plan", dir, "--worktree", "--base", rev}} {
		code, out, errOut := run(t, append(args, "--key-file", exampleKey, "--env", "dev")...)
		if code != exitFailed || !strings.Contains(out+errOut, "deploy/dev/kustomization.yaml:1: namespace: the overlay sets no namespace") {
			t.Errorf("circle %s: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
	settings := readFileT(t, dir, "circle.yaml")
	write(t, dir, "circle.yaml", strings.Replace(settings, "  - name: dev\n", "  - name: dev\n    namespace: shop-dev\n", 1))
	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--env", "dev")
	if code != exitOK {
		t.Errorf("with environments[dev].namespace: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "render", dir, "--key-file", exampleKey, "--env", "dev")
	if code != exitOK || !regexp.MustCompile(`kind: ConfigMap\nmetadata:\n  name: circle-config-[a-z0-9]{10}\n  namespace: shop-dev\n`).MatchString(out) {
		t.Errorf("circle render: exit %d: the ConfigMap is not in shop-dev\n%s%s", code, out, errOut)
	}
}

// An integer the schema's format cannot hold is refused at its file, line and field:
// replicas is an int32, and the API server would refuse 2^63-1 where validate passed it.
func TestValidate_IntegerFormat(t *testing.T) {
	dir := copyExamples(t)
	write(t, dir, "deploy/prod/kustomization.yaml", "namespace: shop-prod\nresources:\n  - ../base\n")
	b, err := os.ReadFile(dir + "/deploy/base/deployment.yaml")
	if err != nil || !strings.Contains(string(b), "  replicas: 1\n") {
		t.Fatalf("the example Deployment has no replicas: 1 (%v)", err)
	}
	write(t, dir, "deploy/base/deployment.yaml", strings.Replace(string(b), "  replicas: 1\n", "  replicas: 9223372036854775807\n", 1))
	code, out, errOut := run(t, "validate", dir, "--key-file", exampleKey, "--env", "prod")
	want := `deploy/base/deployment.yaml:6:3: Deployment/shop-api spec.replicas: "9223372036854775807" is out of range for format int32 (-2147483648 to 2147483647) [schema] [prod]`
	if code != exitFailed || !strings.Contains(out, want) {
		t.Errorf("exit %d, want 1 with\n%s\ngot\n%s%s", code, want, out, errOut)
	}
}
