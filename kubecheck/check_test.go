package kubecheck_test

import (
	"os"
	"strings"
	"testing"

	"github.com/circlecore/circle/kubecheck"
)

// deployment is a valid Deployment that passes every policy; cases break it.
const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
`

// edit replaces old with new in the Deployment, failing the test if old is not there.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	y := deployment
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(y, pairs[i]) {
			t.Fatalf("the Deployment has no %q", pairs[i])
		}
		y = strings.Replace(y, pairs[i], pairs[i+1], 1)
	}
	return y
}

func check(t *testing.T, opts kubecheck.Options, envs ...kubecheck.Environment) *kubecheck.Report {
	t.Helper()
	r, err := kubecheck.Check(envs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lines(ps []kubecheck.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// The schemas are those of the Kubernetes version the tests run against.
func TestKubernetesVersion(t *testing.T) {
	if v := kubecheck.KubernetesVersion(); v != "v1.37.2" {
		t.Errorf("KubernetesVersion() = %q, want v1.37.2 (regenerate with go generate ./manifests/ after a version bump)", v)
	}
}

func TestCheck(t *testing.T) {
	crd, err := os.ReadFile("testdata/crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prod, dev := kubecheck.DefaultPolicy("prod"), kubecheck.DefaultPolicy("dev")
	for _, tc := range []struct {
		name   string
		env    string
		policy kubecheck.Policy
		yaml   string
		want   []string
		notes  []string
	}{
		{name: "valid", env: "prod", policy: prod, yaml: deployment},
		{name: "unknown field", env: "dev", policy: dev, yaml: edit(t, "  replicas: 2\n", "  replica: 2\n"),
			want: []string{`rendered.yaml:8:3: Deployment/web spec.replica: unknown field "replica" [schema]`}},
		{name: "wrong type", env: "dev", policy: dev, yaml: edit(t, "replicas: 2", `replicas: "2"`),
			want: []string{`rendered.yaml:8:3: Deployment/web spec.replicas: expected integer, got string [schema]`}},
		{name: "wrong type, a fraction for an integer", env: "dev", policy: dev, yaml: edit(t, "replicas: 2", "replicas: 2.5"),
			want: []string{`rendered.yaml:8:3: Deployment/web spec.replicas: expected integer, got number [schema]`}},
		{name: "a whole number written as a fraction is an integer", env: "dev", policy: dev, yaml: edit(t, "replicas: 2", "replicas: 2.0")},
		{name: "wrong type, object for a string", env: "dev", policy: dev, yaml: edit(t, "image: nginx:1.27", "image: {name: nginx}"),
			want: []string{`rendered.yaml:19:11: Deployment/web spec.template.spec.containers[0].image: expected string, got object [schema]`}},
		{name: "missing required field", env: "dev", policy: dev, yaml: edit(t, "        - name: web\n          image", "        - image"),
			want: []string{`rendered.yaml:18:11: Deployment/web spec.template.spec.containers[0]: missing required field "name" [schema]`}},
		{name: "YAML 1.1 boolean in a string field", env: "dev", policy: dev,
			yaml: edit(t, "          resources:", "          env:\n            - name: DEBUG\n              value: on\n          resources:"),
			want: []string{`rendered.yaml:22:15: Deployment/web spec.template.spec.containers[0].env[0].value: expected string, got boolean (a plain on is a boolean in YAML 1.1, as kubectl reads it: quote it) [schema]`}},
		{name: "enum", env: "dev", policy: dev, yaml: edit(t, "          resources:", "          imagePullPolicy: Sometimes\n          resources:"),
			want: []string{`rendered.yaml:20:11: Deployment/web spec.template.spec.containers[0].imagePullPolicy: unsupported value "Sometimes": supported values: "Always", "IfNotPresent", "Never" [schema]`}},
		{name: "duplicate keyed list entry", env: "dev", policy: dev,
			yaml: edit(t, "          resources:", "          ports:\n            - containerPort: 80\n            - {containerPort: 80, protocol: TCP}\n          resources:"),
			want: []string{`rendered.yaml:22:15: Deployment/web spec.template.spec.containers[0].ports[1]: duplicate entry containerPort="80", protocol="TCP": also at [0] (the list is keyed by containerPort, protocol) [schema]`}},
		{name: "an integer beyond format int32", env: "dev", policy: dev, yaml: edit(t, "replicas: 2", "replicas: 9223372036854775807"),
			want: []string{`rendered.yaml:8:3: Deployment/web spec.replicas: "9223372036854775807" is out of range for format int32 (-2147483648 to 2147483647) [schema]`}},
		{name: "format int32, one past each bound and as a float", env: "dev", policy: dev,
			yaml: edit(t, "replicas: 2", "replicas: 2147483648", "  template:\n", "  revisionHistoryLimit: -2147483649\n  progressDeadlineSeconds: 3e9\n  template:\n"),
			want: []string{
				`rendered.yaml:8:3: Deployment/web spec.replicas: "2147483648" is out of range for format int32 (-2147483648 to 2147483647) [schema]`,
				`rendered.yaml:12:3: Deployment/web spec.revisionHistoryLimit: "-2147483649" is out of range for format int32 (-2147483648 to 2147483647) [schema]`,
				`rendered.yaml:13:3: Deployment/web spec.progressDeadlineSeconds: "3e9" is out of range for format int32 (-2147483648 to 2147483647) [schema]`,
			}},
		{name: "format int32 and int64 at their bounds", env: "dev", policy: dev,
			yaml: edit(t, "replicas: 2", "replicas: 2147483647", "  template:\n", "  revisionHistoryLimit: -2147483648\n  minReadySeconds: 0x10\n  template:\n",
				"    spec:\n      containers:", "    spec:\n      terminationGracePeriodSeconds: 9223372036854775807\n      activeDeadlineSeconds: 1_000\n      containers:")},
		{name: "an integer beyond format int64", env: "dev", policy: dev,
			yaml: edit(t, "    spec:\n      containers:", "    spec:\n      terminationGracePeriodSeconds: 9223372036854775808\n      activeDeadlineSeconds: 99999999999999999999\n      containers:"),
			want: []string{
				`rendered.yaml:17:7: Deployment/web spec.template.spec.terminationGracePeriodSeconds: "9223372036854775808" is out of range for format int64 (-9223372036854775808 to 9223372036854775807) [schema]`,
				`rendered.yaml:18:7: Deployment/web spec.template.spec.activeDeadlineSeconds: "99999999999999999999" is out of range for format int64 (-9223372036854775808 to 9223372036854775807) [schema]`,
			}},
		{name: "duplicate field", env: "dev", policy: dev, yaml: edit(t, "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n"),
			want: []string{`rendered.yaml:9:3: Deployment/web spec.replicas: duplicate field "replicas" [schema]`}},
		{name: "null is unset, Quantity takes numbers, int-or-string takes names", env: "dev", policy: dev,
			yaml: edit(t, "  name: web\n", "  name: web\n  creationTimestamp: null\n", "cpu: 100m", "cpu: 1",
				"          resources:", "          livenessProbe:\n            httpGet: {port: http, path: /}\n          resources:")},
		{name: "removed apiVersion", env: "dev", policy: dev,
			yaml: "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  labels: {app.kubernetes.io/name: web}\n",
			want: []string{`rendered.yaml:1:1: Ingress/web apiVersion: no schema for kind Ingress in apiVersion extensions/v1beta1 (Kubernetes v1.37.2 serves it as networking.k8s.io/v1) [schema]`}},
		{name: "misspelt kind", env: "dev", policy: dev, yaml: edit(t, "kind: Deployment", "kind: Deploymnet"),
			want: []string{`rendered.yaml:1:1: Deploymnet/web apiVersion: no schema for kind Deploymnet in apiVersion apps/v1 [schema]`}},
		{name: "no kind", env: "dev", policy: dev, yaml: edit(t, "kind: Deployment\n", ""),
			want: []string{`rendered.yaml:1:1: /web: missing required field "kind" [schema]`}},
		{name: "not YAML", env: "dev", policy: dev, yaml: "---\nkind: [\n---\n" + edit(t, "replicas: 2", "replicas: two"),
			want: []string{
				`rendered.yaml:1:1: the document is not valid YAML: did not find expected node content [schema]`,
				`rendered.yaml:11:3: Deployment/web spec.replicas: expected integer, got string [schema]`,
			}},
		{name: "not an object", env: "dev", policy: dev, yaml: deployment + "---\n- a list\n",
			want: []string{`rendered.yaml:25:1: the document is not an object [schema]`}},
		{name: "empty documents", env: "dev", policy: dev, yaml: "---\n" + deployment + "---\n---\n# nothing\n"},
		{name: "Secret values never shown", env: "dev", policy: dev,
			yaml: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  labels: {app.kubernetes.io/name: web}\ntype: Opaque\nstringData:\n  password: 12345\n",
			want: []string{`rendered.yaml:8:3: Secret/s stringData.password: expected string, got integer [schema]`}},

		{name: "latest tag in prod", env: "prod", policy: prod, yaml: edit(t, "nginx:1.27", "nginx:latest"),
			want: []string{`rendered.yaml:19:11: Deployment/web spec.template.spec.containers[0].image: image tag "latest" is not allowed in prod [no-latest-tag]`}},
		{name: "untagged image in prod", env: "prod", policy: prod, yaml: edit(t, "nginx:1.27", "registry.example.com:5000/nginx"),
			want: []string{`rendered.yaml:19:11: Deployment/web spec.template.spec.containers[0].image: image "registry.example.com:5000/nginx" without a tag (which pulls "latest") is not allowed in prod [no-latest-tag]`}},
		{name: "latest pinned by digest in prod", env: "prod", policy: prod,
			yaml: edit(t, "nginx:1.27", "nginx:latest@sha256:0000000000000000000000000000000000000000000000000000000000000000")},
		{name: "latest tag in dev", env: "dev", policy: dev, yaml: edit(t, "nginx:1.27", "nginx:latest")},
		{name: "privileged container", env: "dev", policy: dev,
			yaml: edit(t, "          resources:", "          securityContext:\n            privileged: true\n          resources:"),
			want: []string{`rendered.yaml:21:13: Deployment/web spec.template.spec.containers[0].securityContext.privileged: container "web" is privileged [no-privileged]`}},
		{name: "host namespaces", env: "dev", policy: dev,
			yaml: edit(t, "      containers:", "      hostNetwork: true\n      hostPID: true\n      hostIPC: false\n      containers:"),
			want: []string{
				`rendered.yaml:17:7: Deployment/web spec.template.spec.hostNetwork: the pod shares the node's network namespace (hostNetwork: true) [no-host-namespaces]`,
				`rendered.yaml:18:7: Deployment/web spec.template.spec.hostPID: the pod shares the node's process (PID) namespace (hostPID: true) [no-host-namespaces]`,
			}},
		{name: "missing requests", env: "dev", policy: dev, yaml: edit(t, "              cpu: 100m\n", ""),
			want: []string{`rendered.yaml:21:13: Deployment/web spec.template.spec.containers[0].resources.requests: container "web" has no cpu request [resource-requests]`}},
		{name: "no resources at all, in an init container", env: "dev", policy: dev,
			yaml: edit(t, "      containers:", "      initContainers:\n        - name: init\n          image: busybox:1.36\n      containers:"),
			want: []string{`rendered.yaml:18:11: Deployment/web spec.template.spec.initContainers[0].resources.requests: container "init" has no cpu or memory request [resource-requests]`}},
		{name: "a limit is a request", env: "dev", policy: dev, yaml: edit(t, "requests:\n              cpu: 100m", "limits:\n              cpu: 100m\n            requests:")},
		{name: "missing required label", env: "dev", policy: dev, yaml: edit(t, "  labels:\n    app.kubernetes.io/name: web\nspec", "  labels:\n    app: web\nspec"),
			want: []string{`rendered.yaml:5:3: Deployment/web metadata.labels: missing required label "app.kubernetes.io/name" [required-labels]`}},
		{name: "empty required label", env: "dev", policy: dev, yaml: edit(t, "    app.kubernetes.io/name: web\nspec", "    app.kubernetes.io/name: \"\"\nspec"),
			want: []string{`rendered.yaml:6:5: Deployment/web metadata.labels[app.kubernetes.io/name]: required label "app.kubernetes.io/name" is empty [required-labels]`}},
		{name: "no labels at all, configured labels", env: "dev", policy: kubecheck.Policy{RequiredLabels: []string{"team"}},
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
			want: []string{`rendered.yaml:3:1: ConfigMap/c metadata: missing required label "team" [required-labels]`}},
		{name: "skip-checks annotation", env: "prod", policy: prod,
			yaml: edit(t, "  labels:\n    app.kubernetes.io/name: web\nspec", "  annotations:\n    circle.circlecore.io/skip-checks: no-privileged, no-latest-tag,nonsense\nspec",
				"nginx:1.27", "nginx:latest", "          resources:", "          securityContext:\n            privileged: true\n          resources:"),
			want: []string{
				`rendered.yaml:6:5: Deployment/web metadata.annotations[circle.circlecore.io/skip-checks]: unknown check "nonsense" (known: schema, required-labels, no-latest-tag, resource-requests, no-privileged, no-host-namespaces, unique-ingress-hosts) [skip-checks]`,
				`rendered.yaml:3:1: Deployment/web metadata: missing required label "app.kubernetes.io/name" [required-labels]`,
			}},
		{name: "skip the schema", env: "dev", policy: dev,
			yaml: edit(t, "  labels:\n", "  annotations: {circle.circlecore.io/skip-checks: schema}\n  labels:\n", "replicas: 2", "replicas: two")},
		{name: "checks disabled for the environment", env: "prod",
			policy: kubecheck.Policy{DenyLatestTag: true, Disabled: []string{kubecheck.CheckNoLatestTag, kubecheck.CheckResourceRequests}},
			yaml:   edit(t, "nginx:1.27", "nginx", "              cpu: 100m\n", "")},
		{name: "pod templates of other workloads", env: "dev", policy: dev,
			yaml: `apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, labels: {app.kubernetes.io/name: web}}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: job, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: debug, labels: {app.kubernetes.io/name: web}}
spec:
  containers: [{name: sh, image: busybox:1.36, securityContext: {privileged: true}, resources: {requests: {cpu: 1, memory: 1Gi}}}]
`,
			want: []string{
				`rendered.yaml:11:24: CronJob/nightly spec.jobTemplate.spec.template.spec.containers[0].resources.requests: container "job" has no cpu or memory request [resource-requests]`,
				`rendered.yaml:17:66: Pod/debug spec.containers[0].securityContext.privileged: container "sh" is privileged [no-privileged]`,
			}},
		{name: "custom resources with their CRD in the stream", env: "dev", policy: dev, yaml: string(crd),
			want: []string{
				`rendered.yaml:103:3: Widget/bad spec.sise: unknown field "sise" [schema]`,
				`rendered.yaml:104:3: Widget/bad spec.color: unsupported value "green": supported values: "red", "blue" [schema]`,
				`rendered.yaml:105:3: Widget/bad spec.port: expected string or integer, got boolean [schema]`,
				`rendered.yaml:106:3: Widget/bad spec.name: must be at most 8 characters long [schema]`,
				`rendered.yaml:106:3: Widget/bad spec.name: "NotLowerCaseAndLong" does not match ^[a-z]+$ [schema]`,
				`rendered.yaml:107:3: Widget/bad spec.tags: must have at most 2 items [schema]`,
				`rendered.yaml:107:13: Widget/bad spec.tags[1]: duplicate entry "a": also at [0] (the list is keyed by value) [schema]`,
				`rendered.yaml:108:12: Widget/bad spec.labels.a: expected string, got integer [schema]`,
				`rendered.yaml:109:3: Widget/bad spec.source: matches more than one of the schemas oneOf allows [schema]`,
				`rendered.yaml:102:1: Widget/bad spec: missing required field "size" [schema]`,
				`rendered.yaml:118:3: Widget/small spec.size: must be at least 1 [schema]`,
				`rendered.yaml:119:3: Widget/small spec.source: does not match any of the allowed schemas (the first: missing required field "git") [schema]`,
				`rendered.yaml:130:1: Widget/no-crd-version apiVersion: the CustomResourceDefinition of kind Widget defines no version v3 (it defines v1, v2) [schema]`,
			},
			notes: []string{
				`rendered.yaml:121:1: Widget/unchecked: the CustomResourceDefinition of kind Widget in apiVersion example.com/v2 has no schema: not checked [schema]`,
			}},
		{name: "anchors and aliases", env: "dev", policy: dev,
			yaml: edit(t, "  labels:\n    app.kubernetes.io/name: web\nspec", "  labels: &labels\n    app.kubernetes.io/name: web\nspec",
				"    matchLabels:\n      app.kubernetes.io/name: web\n", "    matchLabels: *labels\n")},
		{name: "a Secret's values are hidden in every message", env: "dev", policy: dev,
			yaml: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  labels: {app.kubernetes.io/name: web}\n  finalizers: [hunter2, hunter2]\n",
			want: []string{`rendered.yaml:6:25: Secret/s metadata.finalizers[1]: duplicate entry (value hidden): also at [0] (the list is keyed by value) [schema]`}},
		{name: "number and boolean enums, exclusive bounds, long values", env: "dev", policy: dev,
			yaml: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com, labels: {app.kubernetes.io/name: gadgets}}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
          properties:
            replicas: {type: integer, enum: [1, 3]}
            enabled: {type: boolean, enum: [true]}
            ratio: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true}
            code: {type: string, minLength: 2, pattern: "^[a-z]+$"}
            list: {type: array, minItems: 1, items: {type: object, properties: {id: {type: integer}}}}
            any: {}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g, labels: {app.kubernetes.io/name: gadgets}}
replicas: 2
enabled: false
ratio: 1
code: "a"
list: []
any: [1, {a: b}]
extra: fields are kept
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: h, labels: {app.kubernetes.io/name: gadgets}}
replicas: 3
enabled: true
ratio: 0
code: ThisIsAVeryLongValueThatGoesOnAndOnAndOnAndOnAndOnForMoreThanSixtyCharacters
list: [{id: 1.0}, {id: 1.5}]
`,
			want: []string{
				`rendered.yaml:27:1: Gadget/g replicas: unsupported value "2": supported values: 1, 3 [schema]`,
				`rendered.yaml:28:1: Gadget/g enabled: unsupported value "false": supported values: true [schema]`,
				`rendered.yaml:29:1: Gadget/g ratio: must be less than 1 [schema]`,
				`rendered.yaml:30:1: Gadget/g code: must be at least 2 characters long [schema]`,
				`rendered.yaml:31:1: Gadget/g list: must have at least 1 items [schema]`,
				`rendered.yaml:40:1: Gadget/h ratio: must be greater than 0 [schema]`,
				`rendered.yaml:41:1: Gadget/h code: "ThisIsAVeryLongValueThatGoesOnAndOnAndOnAndOnAndOnForMore..." does not match ^[a-z]+$ [schema]`,
				`rendered.yaml:42:20: Gadget/h list[1].id: expected integer, got number [schema]`,
			}},
		{name: "custom resource without its CRD", env: "dev", policy: dev,
			yaml: "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: tls\n  labels: {app.kubernetes.io/name: web}\nspec: {anything: goes}\n",
			notes: []string{
				`rendered.yaml:1:1: Certificate/tls: no CustomResourceDefinition for kind Certificate in apiVersion cert-manager.io/v1 in the manifests: not checked against a schema [schema]`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := check(t, kubecheck.Options{}, kubecheck.Environment{Name: tc.env, Manifests: []byte(tc.yaml), Source: "rendered.yaml", Policy: tc.policy})
			equal(t, "problems", lines(r.Problems), tc.want)
			equal(t, "notes", lines(r.Notes), tc.notes)
		})
	}
}

// Check may run from several goroutines at once: the schemas are shared and never written
// after they are loaded.
func TestCheck_Concurrent(t *testing.T) {
	bad := edit(t, "replicas: 2", "replicas: two")
	done := make(chan []string)
	for i := 0; i < 8; i++ {
		go func() {
			r, err := kubecheck.Check([]kubecheck.Environment{{Name: "dev", Manifests: []byte(bad), Policy: kubecheck.DefaultPolicy("dev")}}, kubecheck.Options{})
			if err != nil {
				done <- []string{err.Error()}
				return
			}
			done <- lines(r.Problems)
		}()
	}
	for i := 0; i < 8; i++ {
		equal(t, "problems", <-done, []string{`Deployment/web spec.replicas: expected integer, got string [schema]`})
	}
}
