package reconciler_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/reconciler"
)

type issuer struct {
	t   *testing.T
	key ed25519.PrivateKey
}

func newIssuer(t *testing.T) (issuer, string) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := license.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return issuer{t, key}, string(b)
}

func (i issuer) license(id, envs string, expires time.Time) string {
	l := &license.License{ID: id, Licensee: "Example Corp", Product: "shop", Features: []string{"sso"},
		Limits: map[string]int64{"seats": 10}, IssuedAt: time.Now().Add(-48 * time.Hour), NotBefore: time.Now().Add(-48 * time.Hour), ExpiresAt: expires}
	if envs != "" {
		l.Metadata = map[string]string{"environments": envs}
	}
	b, err := license.Issue(l, i.key)
	if err != nil {
		i.t.Fatal(err)
	}
	return string(b)
}

func (i issuer) revoked(serial uint64, ids ...string) string {
	list := &license.RevocationList{Serial: serial}
	for _, id := range ids {
		list.Entries = append(list.Entries, license.Revocation{ID: id, Reason: "test", RevokedAt: time.Now()})
	}
	b, err := license.IssueRevocations(list, i.key)
	if err != nil {
		i.t.Fatal(err)
	}
	return string(b)
}

// Every license of a revision is verified: an environment using a refused one stays on its
// last good revision with the reason; the others take the revision and get the licenses
// in their builds (storage, and the circle-licenses Secret in their manifests); licenses
// close to expiry are flagged; an older revocation list is a replay.
func TestReconcile_Licenses(t *testing.T) {
	ctx := context.Background()
	iss, pub := newIssuer(t)
	root := copyExamples(t)
	write(t, root, "licenses/issuers.pub", pub)
	write(t, root, "licenses/circle-demo.lic", iss.license("lic_prod", "prod", time.Now().Add(10*24*time.Hour)))
	write(t, root, "licenses/dev.lic", iss.license("lic_dev", "dev", time.Now().Add(-24*time.Hour)))
	write(t, root, "licenses/revoked.list", iss.revoked(2))

	target, _ := newTarget(t, "mem://")
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Target: target})

	st, err := d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	dev, prod, staging := envByName(st, "dev"), envByName(st, "prod"), envByName(st, "staging")
	if dev.Reason != reconciler.ReasonLicenseRefused || !strings.Contains(dev.Message, "licenses/dev.lic") || !strings.Contains(dev.Message, "expired") {
		t.Errorf("dev = %+v", dev)
	}
	if !prod.Ready || !staging.Ready {
		t.Errorf("prod = %+v, staging = %+v", prod, staging)
	}
	var prodLic pipeline.LicenseStatus
	for _, l := range st.Licenses {
		if l.ID == "lic_prod" {
			prodLic = l
		}
	}
	if !prodLic.Expiring || prodLic.State != "valid" || len(st.Licenses) != 2 {
		t.Errorf("licenses = %+v", st.Licenses)
	}
	m, err := target.Current(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	lic, err := target.ReadFile(ctx, m, "licenses/circle-demo.lic")
	if err != nil || !strings.Contains(string(lic), "BEGIN CIRCLE LICENSE") {
		t.Errorf("prod's build lacks its license: %v", err)
	}
	if y, err := target.ReadFile(ctx, m, "manifests.yaml"); err != nil || !strings.Contains(string(y), "name: circle-licenses-") {
		t.Errorf("prod's manifests lack the license Secret: %v", err)
	}
	if m, err := target.Current(ctx, "staging"); err == nil {
		for _, f := range m.Files {
			if strings.HasSuffix(f.Path, ".lic") {
				t.Errorf("staging got a license that is not for it: %s", f.Path)
			}
		}
	}

	// An older revocation list: a replay, refused everywhere.
	write(t, root, "licenses/revoked.list", iss.revoked(1))
	st, err = d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Environments {
		if e.Ready || e.Reason != reconciler.ReasonLicenseRefused || !strings.Contains(e.Message, "revoked.list") {
			t.Errorf("%s after a replayed list: %+v", e.Name, e)
		}
	}

	// Revoking prod's license keeps prod on its last good revision.
	write(t, root, "licenses/dev.lic", iss.license("lic_dev", "dev", time.Now().Add(365*24*time.Hour)))
	write(t, root, "licenses/revoked.list", iss.revoked(3, "lic_prod"))
	st, err = d.Reconcile(ctx, snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if p := envByName(st, "prod"); p.Ready || !strings.Contains(p.Message, "revoked") {
		t.Errorf("prod with its license revoked: %+v", p)
	}
	if d := envByName(st, "dev"); !d.Ready {
		t.Errorf("dev with a renewed license: %+v", d)
	}
}
