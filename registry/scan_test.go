package registry

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var now = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func advisory(id, pkg, events, extra string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(`{"id": "` + id + `", "summary": "` + id + ` summary"` + extra + `,
  "affected": [{"package": {"ecosystem": "Circle", "name": "` + pkg + `"},
                "ranges": [{"type": "SEMVER", "events": ` + events + `}]}]}`)}
}

const critical = `, "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]`
const medium = `, "aliases": ["CVE-2026-1111"], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}]`

func scanTree() fstest.MapFS {
	fsys := tree()
	fsys["packages/lib/1.1.1.yaml"] = &fstest.MapFile{Data: []byte("name: lib\nversion: 1.1.1\nlicense: Apache-2.0\n")}
	fsys["advisories/CIRCLE-1.json"] = advisory("CIRCLE-1", "lib", `[{"introduced": "1.0.0"}, {"fixed": "1.1.1"}]`, critical)
	fsys["advisories/CIRCLE-2.json"] = advisory("CIRCLE-2", "lib", `[{"introduced": "0"}, {"fixed": "1.2.0-beta.1"}]`, medium)
	fsys["advisories/CIRCLE-3.json"] = advisory("CIRCLE-3", "web", `[{"introduced": "0"}]`, "")
	fsys["advisories/CIRCLE-4.json"] = advisory("CIRCLE-4", "web", `[{"introduced": "0"}]`, `, "withdrawn": "2026-01-01T00:00:00Z"`)
	fsys["advisories/README.md"] = &fstest.MapFile{Data: []byte("records")}
	return fsys
}

func scan(t *testing.T, fsys fstest.MapFS, env, prefer string) *Report {
	t.Helper()
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	var lock *Lock
	if prefer != "" {
		lock = &Lock{Packages: []LockedPackage{{Name: "lib", Version: prefer}}}
	}
	res, err := r.Resolve(context.Background(), env, ResolveOptions{Prefer: lock})
	if err != nil {
		t.Fatal(err)
	}
	return r.Scan(res, now)
}

func findings(rep *Report) string {
	var out []string
	for _, f := range rep.Vulnerabilities {
		verdict := "ok"
		if f.Fails {
			verdict = "FAIL"
		}
		out = append(out, strings.Join([]string{f.Package, f.Version, f.Advisory, verdict, "fixed=" + f.Fixed, "upgrade=" + f.Upgrade}, " "))
	}
	return strings.Join(out, "\n")
}

func TestScan_Policy(t *testing.T) {
	fsys := scanTree()
	cases := []struct {
		name, policy, prefer string
		want                 string
		reasons              []string
		failed               bool
	}{
		{"default fails on everything", "", "1.1.0",
			"lib 1.1.0 CIRCLE-1 FAIL fixed=1.1.1 upgrade=1.1.1\nlib 1.1.0 CIRCLE-2 FAIL fixed=1.2.0-beta.1 upgrade=\nweb 1.0.0 CIRCLE-3 FAIL fixed= upgrade=",
			[]string{"severity 9.8 CRITICAL, at or above the failOn threshold (any)", "severity 6.1 MEDIUM, at or above", "severity unknown: an advisory without a score fails every threshold but never"}, true},
		{"high lets medium pass", "failOn: high", "1.1.0", "",
			[]string{"severity 6.1 MEDIUM, below the failOn threshold (high)"}, true},
		{"newest lib is fixed", "failOn: high", "",
			"lib 1.1.1 CIRCLE-2 ok fixed=1.2.0-beta.1 upgrade=\nweb 1.0.0 CIRCLE-3 FAIL fixed= upgrade=", nil, true},
		{"allowances by id and alias", "failOn: medium\n      allow:\n        - {id: CIRCLE-3, until: 2026-09-01, reason: not reachable}\n        - {id: cve-2026-1111, until: 2026-12-31, reason: mitigated by the proxy}\n        - {id: CIRCLE-9, until: 2027-01-01, reason: old}", "",
			"lib 1.1.1 CIRCLE-2 ok fixed=1.2.0-beta.1 upgrade=\nweb 1.0.0 CIRCLE-3 ok fixed= upgrade=",
			[]string{"allowed until 2026-09-01: not reachable", "allowed until 2026-12-31: mitigated by the proxy"}, false},
		{"expired allowance", "allow:\n        - {id: CIRCLE-3, until: 2026-08-31, reason: not reachable}", "",
			"", []string{"severity unknown, and its allowance expired after 2026-08-31 (not reachable)"}, true},
		{"never only reports", "failOn: never", "1.1.0", "", []string{"severity 9.8 CRITICAL, below the failOn threshold (never)"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := "environments:\n  prod:\n    requires: {web: ^1.0.0}\n"
			if c.policy != "" {
				pol += "    vulnerabilities:\n      " + c.policy + "\n"
			}
			fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte(pol)}
			rep := scan(t, fsys, "prod", c.prefer)
			if c.want != "" && findings(rep) != c.want {
				t.Errorf("findings:\n%s\nwant:\n%s", findings(rep), c.want)
			}
			var reasons []string
			for _, f := range rep.Vulnerabilities {
				reasons = append(reasons, f.Reason)
			}
			all := strings.Join(reasons, "\n")
			for _, w := range c.reasons {
				if !strings.Contains(all, w) {
					t.Errorf("reasons lack %q:\n%s", w, all)
				}
			}
			if rep.Failed != c.failed {
				t.Errorf("failed = %v, want %v", rep.Failed, c.failed)
			}
		})
	}
	// The allowance for CIRCLE-9 matched nothing: say so.
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte("environments:\n  prod:\n    requires: {web: ^1.0.0}\n    vulnerabilities:\n      allow: [{id: CIRCLE-9, until: 2027-01-01, reason: old}]\n")}
	rep := scan(t, fsys, "prod", "")
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "packages/environments.yaml: the allowance for CIRCLE-9 (until 2027-01-01) matches no finding in prod") {
		t.Errorf("notes = %v", rep.Notes)
	}
	f := rep.Vulnerabilities[0]
	if f.File != "advisories/CIRCLE-2.json" || f.Summary != "CIRCLE-2 summary" || f.Aliases[0] != "CVE-2026-1111" || f.Score.From == "" {
		t.Errorf("finding = %+v", f)
	}
}

func TestScan_Licenses(t *testing.T) {
	fsys := scanTree()
	for name := range fsys {
		if strings.HasPrefix(name, "advisories/") {
			delete(fsys, name)
		}
	}
	fsys["packages/environments.yaml"] = &fstest.MapFile{Data: []byte(`defaults:
  licenses: {allow: [MIT, Apache-2.0]}
environments:
  prod:
    requires: {web: ^1.0.0}
  dev:
    requires: {web: ^1.0.0}
    licenses: {deny: [Apache-2.0]}
`)}
	rep := scan(t, fsys, "prod", "")
	if rep.Failed || len(rep.Licenses) != 2 || !rep.Licenses[0].OK || len(rep.Vulnerabilities) != 0 {
		t.Errorf("prod = %+v", rep)
	}
	rep = scan(t, fsys, "dev", "")
	if !rep.Failed || rep.Licenses[0].OK || rep.Licenses[0].Package != "lib" || rep.Licenses[0].Reason != "Apache-2.0 cannot be satisfied: Apache-2.0 denied" || !rep.Licenses[1].OK {
		t.Errorf("dev = %+v", rep.Licenses)
	}
}

func TestAdvisories_Problems(t *testing.T) {
	fsys := scanTree()
	fsys["advisories/dup.json"] = advisory("CIRCLE-1", "lib", `[{"introduced": "0"}]`, "")
	fsys["advisories/broken.json"] = &fstest.MapFile{Data: []byte("{\n  \"id\": \"X\",\n  \"affected\": [}\n")}
	fsys["advisories/noid.json"] = &fstest.MapFile{Data: []byte(`{"summary": "x"}`)}
	_, issues := load(t, fsys)
	all := strings.Join(issues, "\n")
	for _, w := range []string{
		"advisories/broken.json:3:16: invalid character '}'",
		"advisories/dup.json: id: advisory CIRCLE-1 is also in advisories/CIRCLE-1.json",
		"advisories/noid.json: OSV record without an id",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("issues lack %q:\n%s", w, all)
		}
	}
}

// Real records in the advisories folder: none is for the Circle ecosystem, so nothing in
// the examples is hit, and nothing fails to load.
func TestScan_RealRecordsLoad(t *testing.T) {
	dir := realworld + "/osv/golang-vulndb"
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		t.Skip("../shared/realworld/osv is not on this machine: real records are not loaded")
	}
	fsys := tree()
	for _, e := range entries {
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		fsys["advisories/"+e.Name()] = &fstest.MapFile{Data: data}
	}
	r, issues := load(t, fsys)
	if issues != nil {
		t.Fatal(issues)
	}
	if len(r.Advisories) != len(entries) {
		t.Errorf("%d advisories loaded of %d", len(r.Advisories), len(entries))
	}
	res, _ := r.Resolve(context.Background(), "prod", ResolveOptions{})
	if rep := r.Scan(res, now); len(rep.Vulnerabilities) != 0 || rep.Failed {
		t.Errorf("report = %+v", rep)
	}
}
