package plan_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const canary = "CANARY-3d1e-never-in-plaintext"

func edit(t testing.TB, fsys fstest.MapFS, name, old, new string) {
	t.Helper()
	f, ok := fsys[name]
	if !ok || !bytes.Contains(f.Data, []byte(old)) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	fsys[name] = &fstest.MapFile{Data: bytes.Replace(f.Data, []byte(old), []byte(new), 1)}
}

func put(fsys fstest.MapFS, name, content string) {
	fsys[name] = &fstest.MapFile{Data: []byte(content)}
}

// outputs renders p in all three formats.
func outputs(t testing.TB, p *plan.Plan) (text, js, md string) {
	t.Helper()
	var a, b, c bytes.Buffer
	if err := p.WriteText(&a, false); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteMarkdown(&c, plan.MarkdownOptions{}); err != nil {
		t.Fatal(err)
	}
	return a.String(), b.String(), c.String()
}

func env(t testing.TB, p *plan.Plan, name string) *plan.Env {
	t.Helper()
	for _, e := range p.Environments {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no environment %s in the plan", name)
	return nil
}

func TestCompare_Config(t *testing.T) {
	base := examplesFS(t)
	head := clone(base)
	edit(t, head, "config/prod/app.yaml", "replicas: 4", "replicas: 5")
	edit(t, head, "config/base/app.yaml", "  recommendations: false\n", "")                          // removed everywhere
	edit(t, head, "config/dev/app.yaml", "newCheckout: true", "newCheckout: true\n  darkMode: true") // added in dev
	edit(t, head, "config/prod/db.yaml", "  name: shop_prod\n", "")                                  // prod falls back to base's value
	p := planOf(t, base, head)

	prod := env(t, p, "prod")
	want := []plan.ConfigChange{
		{Path: "app.replicas", Action: plan.Changed, From: "4", To: "5", Origin: "config/prod/app.yaml:2:13"},
		{Path: "db.name", Action: plan.Changed, From: `"shop_prod"`, To: `"shop"`, Origin: "config/base/db.yaml:4:9"},
		{Path: "features.recommendations", Action: plan.Removed, From: "false", Origin: "config/base/app.yaml:7:20"},
	}
	got, _ := json.Marshal(prod.Config)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("prod config:\n got %s\nwant %s", got, wantJSON)
	}
	dev := env(t, p, "dev")
	if len(dev.Config) != 2 || dev.Config[0].Path != "features.darkMode" || dev.Config[0].Action != plan.Added || dev.Config[0].Origin != "config/dev/app.yaml:5:13" {
		t.Errorf("dev config: %+v", dev.Config)
	}
	if prod.Status != plan.StatusChanged || !p.Summary.HasChanges || p.Summary.Invalid || p.Summary.Changed != 3 {
		t.Errorf("status %s, summary %+v", prod.Status, p.Summary)
	}
	// The hash-named ConfigMap is one replaced object, and the Deployment follows it.
	var actions []string
	for _, o := range prod.Objects {
		actions = append(actions, o.Action+" "+o.Kind)
	}
	if strings.Join(actions, ", ") != "replaced ConfigMap, changed Deployment" {
		t.Errorf("prod objects: %v", actions)
	}
	if o := prod.Objects[0]; !strings.HasPrefix(o.PreviousName, "circle-config-") || o.PreviousName == o.Name || len(o.Fields) != 1 || !strings.Contains(o.Fields[0].Diff, `+    "replicas": 5`) {
		t.Errorf("replaced ConfigMap: %+v", o)
	}
	if len(prod.Storage) != 2 || prod.Storage[0].Path != "config.json" || prod.Storage[1].Path != "manifests.yaml" {
		t.Errorf("prod storage: %+v", prod.Storage)
	}
}

// A secret changed in its SOPS file shows as two different masks, in every format, and
// its value appears in none, not even copied into a plain value or base64-encoded in the
// Secret.
func TestCompare_SecretNeverShown(t *testing.T) {
	base := examplesFS(t)
	head := clone(base)
	dir := t.TempDir()
	testenv.WriteFile(t, dir, ".sops.yaml", string(base[".sops.yaml"].Data))
	testenv.SOPSEncrypt(t, dir, "secrets/prod.sops.yaml", "db:\n  password: "+canary+"\napi:\n  token: tok-1234567\n")
	b, err := os.ReadFile(filepath.Join(dir, "secrets", "prod.sops.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	head["secrets/prod.sops.yaml"] = &fstest.MapFile{Data: b}
	// A plain URL carries the secret too: the redactor catches it.
	put(head, "config/prod/links.yaml", "links:\n  db: postgres://shop:"+canary+"@db.prod.internal/shop\n")
	p := planOf(t, base, head)
	prod := env(t, p, "prod")
	var pw *plan.ConfigChange
	for i, c := range prod.Config {
		if c.Path == "db.password" {
			pw = &prod.Config[i]
		}
	}
	if pw == nil || !pw.Sensitive || pw.From == pw.To || !strings.HasPrefix(pw.From, "**redacted:") || !strings.HasPrefix(pw.To, "**redacted:") || pw.Origin != "secrets/prod.sops.yaml:2:15" {
		t.Errorf("db.password: %+v", pw)
	}
	text, js, md := outputs(t, p)
	for format, out := range map[string]string{"text": text, "json": js, "markdown": md} {
		for _, s := range []string{canary, base64.StdEncoding.EncodeToString([]byte(canary))[:16], "tok-1234567"} {
			if strings.Contains(out, s) {
				t.Errorf("%s output holds %q", format, s)
			}
		}
	}
	if !strings.Contains(text, "postgres://shop:**redacted:") {
		t.Errorf("the URL's secret is not masked in place:\n%s", text)
	}
	var secret *plan.ObjectChange
	for i, o := range prod.Objects {
		if o.Kind == "Secret" && o.Action == plan.Replaced {
			secret = &prod.Objects[i]
		}
	}
	if secret == nil || !strings.Contains(secret.Name, "**redacted:") || !strings.Contains(secret.PreviousName, "**redacted:") {
		t.Fatalf("the Secret's hashed name is not masked: %+v", secret)
	}
	if len(secret.Fields) != 1 || !strings.HasPrefix(secret.Fields[0].From, "**redacted:") || secret.Fields[0].From == secret.Fields[0].To {
		t.Errorf("the Secret's data: %+v", secret.Fields)
	}
}

// A package upgrade pulls a vulnerable version: reported in dev, failing staging, which is
// planned anyway (what moved and why).
func TestCompare_Packages(t *testing.T) {
	base := examplesFS(t)
	head := clone(base)
	put(head, "artifacts/worker-0.4.0.tar.txt", "worker 0.4.0: an example artifact, not a real one.\n")
	put(head, "packages/worker/0.4.0.yaml", "name: worker\nversion: 0.4.0\nlicense: GPL-3.0-only\nartifacts:\n  - path: artifacts/worker-0.4.0.tar.txt\n    sha256: 41a7f315d5e02f233546ffa9b5d4ddde4680cd66ea6ad11d906c4acd44186c85\n    size: 51\n")
	put(head, "packages/api/1.3.0.yaml", "name: api\nversion: 1.3.0\nlicense: Apache-2.0\ndependencies:\n  worker: ^0.4.0\n")
	put(head, "packages/extra/1.0.0.yaml", "name: extra\nversion: 1.0.0\nlicense: MIT\n")
	put(head, "advisories/CIRCLE-2027-0001.json", `{"schema_version": "1.6.0", "id": "CIRCLE-2027-0001", "modified": "2027-01-02T09:00:00Z",
  "summary": "worker 0.4.0 runs jobs from any tenant's queue",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"}],
  "affected": [{"package": {"ecosystem": "Circle", "name": "worker"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.4.0"}, {"fixed": "0.4.1"}]}]}]}`)
	edit(t, head, "packages/environments.yaml", "  dev:\n    requires:\n      api: ^1.2.0", "  dev:\n    requires:\n      api: ^1.3.0\n      extra: ^1.0.0")
	edit(t, head, "packages/environments.yaml", "  staging:\n    requires:\n      api: ^1.2.0", "  staging:\n    requires:\n      api: ^1.3.0")
	// prod's only package manifest edited in place: same version, new digest.
	edit(t, head, "packages/api/1.2.0.yaml", "description: The shop's public HTTP API.", "description: The shop's HTTP API.")
	p := planOf(t, base, head)

	dev := env(t, p, "dev")
	byName := map[string]plan.PackageChange{}
	for _, pc := range dev.Packages {
		byName[pc.Name] = pc
	}
	if pc := byName["api"]; pc.Action != plan.Upgraded || pc.From != "1.2.0" || pc.To != "1.3.0" || strings.Join(pc.Why, ";") != "requires: ^1.2.0 → ^1.3.0" {
		t.Errorf("api: %+v", pc)
	}
	if pc := byName["worker"]; pc.Action != plan.Upgraded || strings.Join(pc.Why, ";") != "api@1.3.0 depends on it: ^0.3.0 → ^0.4.0" ||
		pc.LicenseOK || pc.License != "GPL-3.0-only" || strings.Join(pc.Advisories, ",") != "CIRCLE-2027-0001" {
		t.Errorf("worker: %+v", pc)
	}
	if pc := byName["extra"]; pc.Action != plan.Added || pc.To != "1.0.0" || strings.Join(pc.Why, ";") != "requires: ^1.0.0 (new)" {
		t.Errorf("extra: %+v", pc)
	}
	if len(dev.Advisories) != 1 || dev.Advisories[0].ID != "CIRCLE-2027-0001" || dev.Advisories[0].Severity != "HIGH" {
		t.Errorf("dev advisories: %+v", dev.Advisories)
	}
	staging := env(t, p, "staging")
	if staging.Status != plan.StatusFailed || !strings.Contains(staging.Error, "CIRCLE-2027-0001") || len(staging.Packages) != 2 || !staging.Advisories[0].Fails {
		t.Errorf("staging: %s %q %+v %+v", staging.Status, staging.Error, staging.Packages, staging.Advisories)
	}
	prod := env(t, p, "prod")
	if len(prod.Packages) != 1 || prod.Packages[0].Action != plan.Changed || !strings.Contains(prod.Packages[0].Why[0], "digest") {
		t.Errorf("prod: %+v", prod.Packages)
	}
	// dev reports the advisory but refuses worker's license.
	if !p.Summary.Invalid || p.Summary.Failed != 2 || !strings.Contains(dev.Error, "license GPL-3.0-only") {
		t.Errorf("summary: %+v", p.Summary)
	}
	text, _, md := outputs(t, p)
	for _, want := range []string{"↑ worker 0.3.1 → 0.4.0", "FAILS the policy", "GPL-3.0-only (refused:", "api 1.2.0 (manifest changed)", "+ extra 1.0.0"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{"#### Packages", "❌ **fails the policy**", "#### New advisories", "`GPL-3.0-only` ❌"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// issuerKey is the example license issuer's private key, decrypted.
func issuerKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	name := filepath.Join(examples, "keys", "license-issuer.example.key")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := keyring(t).Decrypt(context.Background(), name, b)
	if err != nil {
		t.Fatal(err)
	}
	k, err := license.ParsePrivateKey(plain)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t testing.TB, l *license.License) []byte {
	t.Helper()
	b, err := license.Issue(l, issuerKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCompare_Licenses(t *testing.T) {
	base := examplesFS(t)
	lic, err := license.Parse(base["licenses/circle-demo.lic"].Data)
	if err != nil {
		t.Fatal(err)
	}
	head := clone(base)
	// The demo license re-issued with other terms; a new one for prod only, expiring soon.
	changed := *lic
	changed.Features = []string{"audit-log", "sso", "support"}
	changed.Limits = map[string]int64{"clusters": 5, "environments": 5, "regions": 2}
	changed.ExpiresAt = lic.ExpiresAt.AddDate(1, 0, 0)
	changed.Licensee = "Example Corporation"
	head["licenses/circle-demo.lic"] = &fstest.MapFile{Data: issue(t, &changed)}
	head["licenses/prod-extra.lic"] = &fstest.MapFile{Data: issue(t, &license.License{ID: "lic_prod_extra", Licensee: "Example Corp",
		Product: "circle-demo", IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(10 * 24 * time.Hour), Metadata: map[string]string{"environments": "prod"}})}
	p := planOf(t, base, head)

	prod := env(t, p, "prod")
	if len(prod.Licenses) != 2 {
		t.Fatalf("prod licenses: %+v", prod.Licenses)
	}
	demo, extra := prod.Licenses[0], prod.Licenses[1]
	wantDetails := `licensee: "Example Corp" → "Example Corporation"; features: +support -multi-cluster; limits.clusters: 3 → 5; limits.regions: 2 (new); limits.seats: 25 (dropped); expires: 2036-12-31 → 2037-12-31`
	if demo.ID != "lic_example_corp" || demo.Action != plan.Changed || strings.Join(demo.Details, "; ") != wantDetails {
		t.Errorf("demo license: %+v\nwant details %s", demo, wantDetails)
	}
	if extra.ID != "lic_prod_extra" || extra.Action != plan.Issued || !strings.Contains(strings.Join(extra.Details, ";"), "expires in 10 day(s)") {
		t.Errorf("prod-extra license: %+v", extra)
	}
	if dev := env(t, p, "dev"); len(dev.Licenses) != 1 {
		t.Errorf("dev gets prod's license: %+v", dev.Licenses)
	}

	// The next plan: nothing changes but the clock runs on; the prod license expires soon,
	// a warning, not a change.
	q := planOf(t, head, head)
	prod = env(t, q, "prod")
	if len(prod.Licenses) != 1 || prod.Licenses[0].Action != plan.Expiring || prod.Counts.Warnings != 1 || q.Summary.HasChanges {
		t.Errorf("expiring: %+v %+v", prod.Licenses, q.Summary)
	}
	_, _, md := outputs(t, q)
	if !strings.Contains(md, "<details><summary><b>prod</b>: 1 warning</summary>") || !strings.Contains(md, "⚠️ **expiring**") || !strings.Contains(md, "(1 expiring)") {
		t.Errorf("markdown of a warning:\n%s", md)
	}

	// Removed, and refused for another reason than revocation.
	gone := clone(head)
	delete(gone, "licenses/prod-extra.lic")
	bad := clone(head)
	bad["licenses/prod-extra.lic"] = &fstest.MapFile{Data: issue(t, &license.License{ID: "lic_prod_extra", Licensee: "Example Corp",
		Product: "circle-demo", IssuedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-24 * time.Hour), Metadata: map[string]string{"environments": "prod"}})}
	r := planOf(t, head, gone)
	if l := env(t, r, "prod").Licenses; len(l) != 1 || l[0].Action != plan.Removed {
		t.Errorf("removed: %+v", l)
	}
	r = planOf(t, head, bad)
	if l := env(t, r, "prod").Licenses; len(l) != 1 || l[0].Action != plan.Refused || l[0].Reason != "Expired" || env(t, r, "prod").Status != plan.StatusFailed {
		t.Errorf("expired: %+v", l)
	}
	r = planOf(t, bad, head)
	if l := env(t, r, "prod").Licenses; len(l) != 1 || l[0].Action != plan.Accepted || !strings.Contains(l[0].Details[0], "was refused: Expired") {
		t.Errorf("accepted again: %+v", l)
	}
}

// Revoking the demo license refuses every environment.
func TestCompare_Revoked(t *testing.T) {
	base := examplesFS(t)
	head := clone(base)
	list, err := license.IssueRevocations(&license.RevocationList{Serial: 2, IssuedAt: now.Add(-time.Hour), Entries: []license.Revocation{
		{ID: "lic_example_corp", Reason: "contract ended", RevokedAt: now.Add(-2 * time.Hour)},
	}}, issuerKey(t))
	if err != nil {
		t.Fatal(err)
	}
	head["licenses/revoked.list"] = &fstest.MapFile{Data: list}
	p := planOf(t, base, head)
	for _, e := range p.Environments {
		if e.Status != plan.StatusFailed || len(e.Licenses) != 1 || e.Licenses[0].Action != plan.Revoked || e.Counts.Errors != 1 {
			t.Errorf("%s: %s %+v", e.Name, e.Status, e.Licenses)
		}
	}
	if !p.Summary.Invalid || p.Summary.Failed != 3 {
		t.Errorf("summary %+v", p.Summary)
	}
}

func TestCompare_Objects(t *testing.T) {
	base := examplesFS(t)
	put(base, "deploy/base/worker.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-worker
  labels: {app.kubernetes.io/name: shop-worker}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop-worker}}
  template:
    metadata: {labels: {app: shop-worker}}
    spec:
      containers:
        - name: worker
          image: registry.example.com/shop/worker:0.3.1
          args: ["--queue", "jobs"]
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
          resources: {requests: {cpu: 10m, memory: 16Mi}}
        - name: sidecar
          image: registry.example.com/proxy:1
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`)
	edit(t, base, "deploy/base/kustomization.yaml", "  - service.yaml\n", "  - service.yaml\n  - worker.yaml\n")
	head := clone(base)
	edit(t, head, "deploy/base/deployment.yaml", "image: registry.example.com/shop/api:1.2.0", "image: registry.example.com/shop/api:1.3.0")
	edit(t, head, "deploy/base/service.yaml", "  ports:\n", "  type: ClusterIP\n  ports:\n")
	delete(head, "deploy/base/worker.yaml")
	edit(t, head, "deploy/base/kustomization.yaml", "  - worker.yaml\n", "  - cron.yaml\n")
	put(head, "deploy/base/cron.yaml", "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  labels: {app.kubernetes.io/name: nightly}\nspec:\n  schedule: \"0 3 * * *\"\n"+
		"  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: \"busybox:1.36\", resources: {requests: {cpu: 10m, memory: 16Mi}}}]}}}}\n")
	p := planOf(t, base, head, "dev")
	if len(p.Environments) != 1 {
		t.Fatalf("--env dev planned %d environments", len(p.Environments))
	}
	dev := p.Environments[0]
	var got []string
	for _, o := range dev.Objects {
		s := o.Action + " " + o.ID
		for _, f := range o.Fields {
			s += " | " + f.Path + ": " + f.From + " → " + f.To
		}
		got = append(got, s)
	}
	want := []string{
		"created CronJob/shop-dev/nightly",
		`changed Deployment/shop-dev/shop-api | spec.template.spec.containers[name=api].image: "registry.example.com/shop/api:1.2.0" → "registry.example.com/shop/api:1.3.0"`,
		"deleted Deployment/shop-dev/shop-worker",
		`changed Service/shop-dev/shop-api | spec.type:  → "ClusterIP"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("objects:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !dev.Objects[2].Prune || dev.Counts.Deleted != 1 || p.Summary.Prunes != 1 {
		t.Errorf("the deletion is not a prune: %+v %+v", dev.Objects[2], p.Summary)
	}
	text, _, md := outputs(t, p)
	if !strings.Contains(text, "PRUNE: deleted from the cluster") || !strings.Contains(text, "Plan: 1 of 1 environment(s) change, 1 object(s) pruned.") {
		t.Errorf("text:\n%s", text)
	}
	prune := strings.Index(md, "⚠️ **PRUNE** `Deployment/shop-dev/shop-worker`")
	if !strings.Contains(md, "> ⚠️ **1 object(s) would be pruned**") || prune < 0 || prune > strings.Index(md, "**changed**") {
		t.Errorf("the prune is not first and loud:\n%s", md)
	}
}

// A change touching over 1,000 objects (334 in each of three environments, each
// differently) keeps the Markdown under a comment's limit, says what it left out, and
// writes the same bytes from two separate builds and plans.
func TestWriteMarkdown_Large(t *testing.T) {
	base := examplesFS(t)
	manyObjects(base, 334, "a")
	head := examplesFS(t)
	manyObjects(head, 334, "b")
	var first string
	for i := 0; i < 2; i++ {
		p := planOf(t, base, head)
		n := 0
		for _, e := range p.Environments {
			n += e.Counts.Objects()
		}
		if n < 1000 {
			t.Fatalf("%d objects change, want over 1,000", n)
		}
		var b bytes.Buffer
		if err := p.WriteMarkdown(&b, plan.DefaultMarkdownOptions()); err != nil {
			t.Fatal(err)
		}
		md := b.String()
		if len(md) >= plan.MaxCommentSize || len(md) > 60000 {
			t.Errorf("%d bytes of Markdown", len(md))
		}
		if strings.Count(md, "more item(s) not shown") != 3 || strings.Count(md, "<details>") != 3 || strings.Count(md, "</details>") != 3 ||
			strings.Count(md, "```")%2 != 0 {
			t.Errorf("the cut sections are not closed and noted:\n%s", md[len(md)-2000:])
		}
		if i == 1 && md != first {
			t.Error("two plans of the same revisions wrote different Markdown")
		}
		first = md
	}
}

// One line of the kustomize base relabels every object: objects changed alike are one
// item each in the Markdown, which then needs no cut.
func TestWriteMarkdown_Alike(t *testing.T) {
	base := examplesFS(t)
	manyObjects(base, 334, "a")
	head := clone(base)
	edit(t, head, "deploy/base/kustomization.yaml", "app.kubernetes.io/name: shop", "app.kubernetes.io/name: shop-v2")
	p := planOf(t, base, head, "prod")
	var b bytes.Buffer
	if err := p.WriteMarkdown(&b, plan.DefaultMarkdownOptions()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if len(md) > 5000 || strings.Contains(md, "not shown") || !strings.Contains(md, "- **changed** 111 ConfigMap objects alike: `ConfigMap/shop-prod/settings-0002`") ||
		!strings.Contains(md, " and 106 more\n") {
		t.Errorf("%d bytes:\n%s", len(md), md)
	}
}

func TestBuild(t *testing.T) {
	base := examplesFS(t)
	ctx := context.Background()
	opts := plan.BuildOptions{Load: repo.Options{Keyring: keyring(t), Redactor: newRedactor()}, Now: now}

	// Unchanged environments are not built, unless Full.
	b, err := plan.Build(ctx, base, base, opts)
	if err != nil || len(b.Unchanged) != 3 || len(b.Head.Outputs) != 0 || b.Head.Repo == nil {
		t.Fatalf("same revision: %v %+v", err, b)
	}
	opts.Full = true
	if b, err = plan.Build(ctx, base, base, opts); err != nil || len(b.Unchanged) != 0 || len(b.Head.Outputs) != 3 || len(b.Base.Outputs) != 3 {
		t.Fatalf("--full: %v %+v", err, b)
	}
	p := plan.Compare(ctx, b.Base, b.Head, plan.Options{Redactor: opts.Load.Redactor, Now: now})
	if p.Summary.HasChanges {
		t.Errorf("a revision against itself has changes: %+v", p.Summary)
	}
	opts.Full = false

	opts.Load.Envs = []string{"qa"}
	if _, err := plan.Build(ctx, base, base, opts); err == nil || !strings.Contains(err.Error(), `"qa"`) {
		t.Errorf("unknown environment: %v", err)
	}
	opts.Load.Envs = nil

	// A new environment at head, an environment gone from it, and one that fails.
	head := clone(base)
	edit(t, head, "circle.yaml", "  - name: dev\n", "  - name: qa\n")
	edit(t, head, "circle.yaml", "environments: [dev, staging, prod]", "environments: [qa, staging, prod]")
	edit(t, head, "packages/environments.yaml", "  dev:\n", "  qa:\n")
	delete(head, "packages/dev.lock.json")
	put(head, "deploy/qa/kustomization.yaml", "resources: [../base]\nnamespace: shop-qa\n")
	put(head, "config/qa/app.yaml", "app:\n  logLevel: error\ndb:\n  password: qa-password-1\n")
	p = planOf(t, base, head)
	var got []string
	for _, e := range p.Environments {
		got = append(got, e.Name+" "+e.Status)
	}
	if strings.Join(got, ", ") != "qa changed, staging unchanged, prod unchanged, dev removed" || !p.Summary.HasChanges {
		t.Errorf("environments: %v", got)
	}

	// Head whose circle.yaml does not parse; base likewise.
	broken := clone(base)
	put(broken, "circle.yaml", "environments: [\n")
	p = planOf(t, base, broken)
	text, _, md := outputs(t, p)
	if !p.Summary.Invalid || len(p.Problems) != 1 || !strings.HasPrefix(p.Problems[0].String(), "circle.yaml:1:") ||
		!strings.Contains(text, "The head revision is invalid") || !strings.Contains(md, "### ❌ The head revision is invalid: 1 problem(s)") {
		t.Errorf("broken head: %+v\n%s\n%s", p.Problems, text, md)
	}
	p = planOf(t, broken, base)
	text, _, md = outputs(t, p)
	if p.Summary.Invalid || p.BaseProblems != 1 || env(t, p, "prod").Status != plan.StatusChanged || env(t, p, "prod").BaseError == "" ||
		!strings.Contains(text, "compared as if empty") || !strings.Contains(md, "_Base did not build:_") {
		t.Errorf("broken base: %+v\n%s", p.Summary, text)
	}
	if c := env(t, p, "prod").Config; len(c) == 0 || c[0].Action != plan.Added {
		t.Errorf("everything is added against a broken base: %+v", c)
	}
}

func TestWriteText_Color(t *testing.T) {
	base := examplesFS(t)
	head := clone(base)
	edit(t, head, "config/prod/app.yaml", "replicas: 4", "replicas: 5")
	p := planOf(t, base, head, "prod")
	var b bytes.Buffer
	if err := p.WriteText(&b, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\x1b[33m~ app.replicas: 4 → 5\x1b[0m") || !strings.Contains(b.String(), "\x1b[31m-") {
		t.Errorf("no colour:\n%q", b.String())
	}
}

// The text view is for a terminal and shows the repository's text: an advisory whose
// summary holds escape sequences (an OSV file's JSON string may) is printed escaped, with
// colour or without; the plan's own colours stay.
func TestWriteText_EscapesControls(t *testing.T) {
	base := examplesFS(t)
	head := clone(base)
	put(head, "artifacts/worker-0.4.0.tar.txt", "worker 0.4.0: an example artifact, not a real one.\n")
	put(head, "packages/worker/0.4.0.yaml", "name: worker\nversion: 0.4.0\nlicense: MIT\nartifacts:\n  - path: artifacts/worker-0.4.0.tar.txt\n    sha256: 41a7f315d5e02f233546ffa9b5d4ddde4680cd66ea6ad11d906c4acd44186c85\n    size: 51\n")
	put(head, "packages/api/1.3.0.yaml", "name: api\nversion: 1.3.0\nlicense: Apache-2.0\ndependencies:\n  worker: ^0.4.0\n")
	put(head, "advisories/CIRCLE-2027-0001.json", `{"schema_version": "1.6.0", "id": "CIRCLE-2027-0001", "modified": "2027-01-02T09:00:00Z",
  "summary": "worker \u001b]0;pwned\u0007\u001b[2J\u009b2J runs jobs",
  "affected": [{"package": {"ecosystem": "Circle", "name": "worker"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.4.0"}, {"fixed": "0.4.1"}]}]}]}`)
	edit(t, head, "packages/environments.yaml", "  dev:\n    requires:\n      api: ^1.2.0", "  dev:\n    requires:\n      api: ^1.3.0")
	p := planOf(t, base, head, "dev")
	if a := env(t, p, "dev").Advisories; len(a) != 1 || !strings.Contains(a[0].Summary, "\x1b]0;pwned\x07") {
		t.Fatalf("dev advisories: %+v", a)
	}
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		if err := p.WriteText(&b, color); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if !strings.Contains(out, `worker \x1b]0;pwned\a\x1b[2J\u009b2J runs jobs`) {
			t.Errorf("color %t: the summary is not shown escaped:\n%s", color, out)
		}
		rest := out
		if color {
			if !strings.Contains(out, "\x1b[33m! worker@0.4.0 CIRCLE-2027-0001") {
				t.Errorf("the plan's own colours are gone:\n%q", out)
			}
			for _, c := range []string{"\x1b[0m", "\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m"} {
				rest = strings.ReplaceAll(rest, c, "")
			}
		}
		if i := strings.IndexAny(rest, "\x1b\x07\u009b"); i >= 0 {
			t.Errorf("color %t: a raw control character at %d:\n%q", color, i, rest)
		}
	}
}

// An Ingress host moved in the configuration is a change of that Ingress field in the
// plan; a claim made smaller is a problem at the size's line, and the plan is invalid.
func TestPlan_KubernetesObjects(t *testing.T) {
	base := examplesFS(t)
	base["config/base/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  volumes:\n    shop-data: {size: 10Gi}\n" +
		"  ingresses:\n    shop:\n      host: shop.example.com\n      paths:\n        /: {service: shop-api, port: 80}\n")}
	base["config/dev/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  ingresses:\n    shop: {host: shop.dev.example.com}\n")}
	base["config/staging/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  ingresses:\n    shop: {host: shop.staging.example.com}\n")}

	head := clone(base)
	head["config/dev/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  ingresses:\n    shop: {host: dev.shop.example.com}\n")}
	p := planOf(t, base, head)
	if p.Summary.Invalid || p.Summary.Changed != 1 {
		t.Fatalf("summary %+v, problems %v", p.Summary, p.Problems)
	}
	dev := envOf(t, p, "dev")
	var found bool
	for _, o := range dev.Objects {
		if o.Kind == "Ingress" && o.Name == "shop" && o.Action == plan.Changed {
			for _, f := range o.Fields {
				if f.Path == "spec.rules[0].host" && f.From == `"shop.dev.example.com"` && f.To == `"dev.shop.example.com"` {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("dev's objects %+v, want the Ingress host change", dev.Objects)
	}

	head = clone(base)
	head["config/prod/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  volumes:\n    shop-data:\n      size: 5Gi\n")}
	p = planOf(t, base, head)
	if !p.Summary.Invalid || len(p.Problems) != 1 {
		t.Fatalf("a shrinking claim: summary %+v, problems %v", p.Summary, p.Problems)
	}
	got := p.Problems[0].String()
	want := "config/prod/kubernetes.yaml:4:13: kubernetes.volumes.shop-data.size: the claim shrinks from 10Gi to 5Gi"
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "[prod]") {
		t.Errorf("problem %q, want it to start %q", got, want)
	}
	if e := envOf(t, p, "prod"); e.Status != plan.StatusFailed {
		t.Errorf("prod is %s, want failed", e.Status)
	}

	// Growing is fine.
	head["config/prod/kubernetes.yaml"] = &fstest.MapFile{Data: []byte("kubernetes:\n  volumes:\n    shop-data:\n      size: 20Gi\n")}
	if p = planOf(t, base, head); p.Summary.Invalid {
		t.Errorf("a growing claim: %v", p.Problems)
	}
}

func envOf(t *testing.T, p *plan.Plan, name string) *plan.Env {
	t.Helper()
	for _, e := range p.Environments {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no environment %s in the plan", name)
	return nil
}
