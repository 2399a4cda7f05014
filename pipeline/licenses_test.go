package pipeline_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/testenv"
)

func settings(t *testing.T, dir string) *repo.Settings {
	t.Helper()
	s, problems := repo.LoadSettings(os.DirFS(dir))
	if problems != nil {
		t.Fatal(problems)
	}
	return s
}

var now = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)

// The licenses step: the daemon's keys or the repository's, the revocation list's serial
// never going down, and the files each environment carries.
func TestCheckLicenses(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	s := settings(t, dir)
	keys, err := license.ReadKeyring(dir + "/licenses/issuers.pub")
	if err != nil {
		t.Fatal(err)
	}

	// With the daemon's keys, issuers.pub is not needed and not carried.
	l, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{Keys: keys}, now)
	if err != nil || len(l.Refused) != 0 || len(l.Status) != 1 || l.Status[0].State != "valid" || l.Serial == 0 {
		t.Fatalf("with keys: %+v %v", l, err)
	}
	var paths []string
	for _, f := range l.ForEnv("prod") {
		paths = append(paths, f.Path)
	}
	if strings.Join(paths, ",") != "licenses/circle-demo.lic,licenses/revoked.list" {
		t.Errorf("prod carries %v", paths)
	}

	// A revocation list older than one already seen is a replay: every license is in doubt.
	l, err = pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{Keys: keys, MinSerial: l.Serial + 1}, now)
	if err != nil || !strings.Contains(l.Refused["dev"], "revoked.list") || len(l.ForEnv("dev")) != 0 {
		t.Errorf("replayed list: %+v %v", l.Refused, err)
	}

	// An expired license is refused for the environments it names; expiring is flagged.
	l, err = pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{Keys: keys}, time.Date(2036, 12, 20, 0, 0, 0, 0, time.UTC))
	if err != nil || len(l.Refused) != 0 || !l.Status[0].Expiring {
		t.Errorf("close to expiry: %+v %v", l.Status, err)
	}
	l, err = pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{Keys: keys}, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || l.Refused["prod"] == "" || l.Status[0].Reason == "" {
		t.Errorf("expired: %+v %v", l.Status, err)
	}

	// Without the daemon's keys the repository's are required.
	if err := os.Remove(dir + "/licenses/issuers.pub"); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{}, now); err == nil || !strings.Contains(err.Error(), "issuers.pub") {
		t.Errorf("no keys at all: %v", err)
	}
	testenv.WriteFile(t, dir, "licenses/issuers.pub", "not a key\n")
	if _, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{}, now); err == nil {
		t.Error("a broken issuers.pub was accepted")
	}

	// No licenses folder, or one without license files: nothing to check.
	if err := os.RemoveAll(dir + "/licenses"); err != nil {
		t.Fatal(err)
	}
	if l, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{}, now); err != nil || len(l.Status) != 0 || l.ForEnv("dev") != nil {
		t.Errorf("no licenses: %+v %v", l, err)
	}
	testenv.WriteFile(t, dir, "licenses/README.md", "none yet\n")
	if l, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{}, now); err != nil || len(l.Status) != 0 {
		t.Errorf("no license files: %+v %v", l, err)
	}
}

// A revocation list, once accepted, only moves forward: kept by the caller, it still
// revokes when a later revision deletes the list, an older list is refused as a replay
// (the kept one staying in force), and only a newer one replaces it. The attacker is
// whoever can commit: they can delete files and put back old ones, but not sign.
func TestCheckLicenses_KeptList(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := license.NewKeyring(pub)
	issue := func(id string) string {
		b, err := license.Issue(&license.License{ID: id, Licensee: "Example Corp", Product: "shop",
			IssuedAt: now.Add(-time.Hour), NotBefore: now.Add(-time.Hour), ExpiresAt: now.Add(365 * 24 * time.Hour)}, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	revoke := func(serial uint64, ids ...string) []byte {
		list := &license.RevocationList{Serial: serial, IssuedAt: now}
		for _, id := range ids {
			list.Entries = append(list.Entries, license.Revocation{ID: id, Reason: "stolen", RevokedAt: now})
		}
		b, err := license.IssueRevocations(list, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dir := testenv.CopyTree(t, "../examples")
	s := settings(t, dir)
	if err := os.Remove(dir + "/licenses/circle-demo.lic"); err != nil {
		t.Fatal(err)
	}
	testenv.WriteFile(t, dir, "licenses/stolen.lic", issue("lic_stolen"))
	testenv.WriteFile(t, dir, "licenses/good.lic", issue("lic_good"))
	check := func(lo pipeline.LicenseOptions) *pipeline.Licenses {
		t.Helper()
		lo.Keys = keys
		l, err := pipeline.CheckLicenses(os.DirFS(dir), s, lo, now)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	status := func(l *pipeline.Licenses, file string) pipeline.LicenseStatus {
		for _, st := range l.Status {
			if st.File == file {
				return st
			}
		}
		t.Fatalf("no status for %s in %+v", file, l.Status)
		return pipeline.LicenseStatus{}
	}

	// Serial 2 revokes lic_stolen: the caller keeps the list.
	list2 := revoke(2, "lic_stolen")
	testenv.WriteFile(t, dir, "licenses/revoked.list", string(list2))
	l := check(pipeline.LicenseOptions{})
	if st := status(l, "licenses/stolen.lic"); st.Reason != "Revoked" || l.Serial != 2 || !bytes.Equal(l.List, list2) ||
		l.Revocations == nil || l.Revocations.Kept || l.Revocations.Serial != 2 {
		t.Fatalf("serial 2 in the revision: %+v %+v %+v", st, l.Revocations, l.Serial)
	}

	// The list is deleted: the one kept still revokes, says so, and goes out with the builds.
	if err := os.Remove(dir + "/licenses/revoked.list"); err != nil {
		t.Fatal(err)
	}
	l = check(pipeline.LicenseOptions{Kept: list2})
	st := status(l, "licenses/stolen.lic")
	if st.Reason != "Revoked" || !strings.Contains(st.Error, "kept from an earlier revision: this revision has no licenses/revoked.list") {
		t.Errorf("lic_stolen after the list was deleted: %+v", st)
	}
	if r := l.Revocations; r == nil || !r.Kept || r.Serial != 2 || r.Reason != "" || !strings.Contains(r.Error, "the list accepted before (serial 2) applies") {
		t.Errorf("revocations after the list was deleted: %+v", r)
	}
	if !bytes.Equal(l.List, list2) || l.Serial != 2 || status(l, "licenses/good.lic").Reason != "" {
		t.Errorf("after the list was deleted: serial %d, list kept %t, good %+v", l.Serial, bytes.Equal(l.List, list2), status(l, "licenses/good.lic"))
	}
	var carried []byte
	for _, f := range l.ForEnv("prod") {
		if f.Path == "licenses/revoked.list" {
			carried = f.Data
		}
	}
	if !bytes.Equal(carried, list2) {
		t.Errorf("prod's build does not carry the list its licenses were checked against: %q", carried)
	}
	// Without the kept list (what the daemon did before it kept one), the deletion worked.
	if l := check(pipeline.LicenseOptions{}); status(l, "licenses/stolen.lic").Reason != "" || l.Revocations != nil {
		t.Errorf("control: with nothing kept and no list, lic_stolen = %+v", status(l, "licenses/stolen.lic"))
	}

	// An older list, revoking nothing: a replay, refused everywhere; the kept one stays.
	testenv.WriteFile(t, dir, "licenses/revoked.list", string(revoke(1)))
	l = check(pipeline.LicenseOptions{Kept: list2})
	if r := l.Revocations; r == nil || r.Reason != "Replayed" || !r.Kept || r.Serial != 2 || !strings.Contains(r.Error, "serial 1 is older than serial 2") {
		t.Errorf("an older list: %+v", r)
	}
	if !strings.Contains(l.Refused["prod"], "revoked.list") || !bytes.Equal(l.List, list2) || l.Serial != 2 {
		t.Errorf("an older list: refused %v, serial %d", l.Refused, l.Serial)
	}

	// A newer list replaces the kept one: lic_stolen is back (the issuer said so).
	list3 := revoke(3)
	testenv.WriteFile(t, dir, "licenses/revoked.list", string(list3))
	l = check(pipeline.LicenseOptions{Kept: list2})
	if status(l, "licenses/stolen.lic").Reason != "" || !bytes.Equal(l.List, list3) || l.Serial != 3 || l.Revocations.Kept {
		t.Errorf("a newer list: %+v %+v", l.Status, l.Revocations)
	}

	// A serial recorded without its list (a state written before lists were kept), and no
	// list: nothing can say what was revoked, so every license is in doubt.
	if err := os.Remove(dir + "/licenses/revoked.list"); err != nil {
		t.Fatal(err)
	}
	l = check(pipeline.LicenseOptions{MinSerial: 2})
	if r := l.Revocations; r == nil || r.Reason != "Replayed" || r.Kept || !strings.Contains(l.Refused["dev"], "serial 2 was accepted before") {
		t.Errorf("a serial without its list: %+v %v", r, l.Refused)
	}

	// A list that is not a file cannot be read, and is not taken for no list.
	if err := os.Mkdir(dir+"/licenses/revoked.list", 0o755); err != nil {
		t.Fatal(err)
	}
	if l := check(pipeline.LicenseOptions{Kept: list2}); l.Refused["prod"] == "" || !bytes.Equal(l.List, list2) {
		t.Errorf("a folder for a list: %+v", l.Revocations)
	}

	// A kept list that does not parse is the caller's error; so is an empty keyring.
	if _, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{Keys: keys, Kept: []byte("junk")}, now); err == nil ||
		!strings.Contains(err.Error(), "kept from an earlier revision") {
		t.Errorf("a kept list that does not parse: %v", err)
	}
	if _, err := pipeline.CheckLicenses(os.DirFS(dir), s, pipeline.LicenseOptions{Keys: license.NewKeyring()}, now); err == nil {
		t.Error("an empty keyring was accepted")
	}
}

// circle.yaml's manifest policy replaces the defaults, per environment; the check then
// holds the built manifests to it.
func TestManifestPolicy(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	s := settings(t, dir)
	if p := pipeline.ManifestPolicy(s, "prod"); !p.DenyLatestTag || len(p.RequiredLabels) != 1 {
		t.Errorf("prod default: %+v", p)
	}
	testenv.WriteFile(t, dir, "circle.yaml", strings.Replace(readFile(t, dir+"/circle.yaml"), "  - name: dev\n",
		"  - name: dev\n    policy:\n      manifests:\n        requiredLabels: [team]\n        denyLatestTag: true\n        disable: [resource-requests]\n", 1))
	s = settings(t, dir)
	if p := pipeline.ManifestPolicy(s, "dev"); !p.DenyLatestTag || strings.Join(p.RequiredLabels, ",") != "team" || len(p.Disabled) != 1 {
		t.Errorf("dev from circle.yaml: %+v", p)
	}
	res := revision(t, dir)
	if len(res.Problems) == 0 || !strings.Contains(res.Problems[0].Message, "[required-labels]") || res.Problems[0].Envs[0] != "dev" ||
		res.Problems[0].File != "deploy/dev (rendered)" {
		t.Errorf("problems: %v", res.Problems)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
