package build_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/circlecore/circle/build"
	"github.com/circlecore/circle/license"
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
	l, err := build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{Keys: keys}, now)
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
	l, err = build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{Keys: keys, MinSerial: l.Serial + 1}, now)
	if err != nil || !strings.Contains(l.Refused["dev"], "revoked.list") || len(l.ForEnv("dev")) != 0 {
		t.Errorf("replayed list: %+v %v", l.Refused, err)
	}

	// An expired license is refused for the environments it names; expiring is flagged.
	l, err = build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{Keys: keys}, time.Date(2036, 12, 20, 0, 0, 0, 0, time.UTC))
	if err != nil || len(l.Refused) != 0 || !l.Status[0].Expiring {
		t.Errorf("close to expiry: %+v %v", l.Status, err)
	}
	l, err = build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{Keys: keys}, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || l.Refused["prod"] == "" || l.Status[0].Reason == "" {
		t.Errorf("expired: %+v %v", l.Status, err)
	}

	// Without the daemon's keys the repository's are required.
	if err := os.Remove(dir + "/licenses/issuers.pub"); err != nil {
		t.Fatal(err)
	}
	if _, err := build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{}, now); err == nil || !strings.Contains(err.Error(), "issuers.pub") {
		t.Errorf("no keys at all: %v", err)
	}
	testenv.WriteFile(t, dir, "licenses/issuers.pub", "not a key\n")
	if _, err := build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{}, now); err == nil {
		t.Error("a broken issuers.pub was accepted")
	}

	// No licenses folder, or one without license files: nothing to check.
	if err := os.RemoveAll(dir + "/licenses"); err != nil {
		t.Fatal(err)
	}
	if l, err := build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{}, now); err != nil || len(l.Status) != 0 || l.ForEnv("dev") != nil {
		t.Errorf("no licenses: %+v %v", l, err)
	}
	testenv.WriteFile(t, dir, "licenses/README.md", "none yet\n")
	if l, err := build.CheckLicenses(os.DirFS(dir), s, build.LicenseOptions{}, now); err != nil || len(l.Status) != 0 {
		t.Errorf("no license files: %+v %v", l, err)
	}
}

// circle.yaml's manifest policy replaces the defaults, per environment; the check then
// holds the built manifests to it.
func TestManifestPolicy(t *testing.T) {
	dir := testenv.CopyTree(t, "../examples")
	s := settings(t, dir)
	if p := build.ManifestPolicy(s, "prod"); !p.DenyLatestTag || len(p.RequiredLabels) != 1 {
		t.Errorf("prod default: %+v", p)
	}
	testenv.WriteFile(t, dir, "circle.yaml", strings.Replace(readFile(t, dir+"/circle.yaml"), "  - name: dev\n",
		"  - name: dev\n    policy:\n      manifests:\n        requiredLabels: [team]\n        denyLatestTag: true\n        disable: [resource-requests]\n", 1))
	s = settings(t, dir)
	if p := build.ManifestPolicy(s, "dev"); !p.DenyLatestTag || strings.Join(p.RequiredLabels, ",") != "team" || len(p.Disabled) != 1 {
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
