package reconciler

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/storage/publish"
)

// ExpiryWarning is how close to its expiry a license is reported as expiring.
const ExpiryWarning = 30 * 24 * time.Hour

// LicenseStatus is one license file of a revision as the licenses stage found it.
type LicenseStatus struct {
	File      string    `json:"file"`
	ID        string    `json:"id,omitempty"`
	Licensee  string    `json:"licensee,omitempty"`
	Product   string    `json:"product,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitempty"`
	// State is valid or in-grace for an accepted license; Reason says why one was refused.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Expiring is true when the license expires within ExpiryWarning.
	Expiring bool `json:"expiring,omitempty"`
	// Environments are those it applies to: its metadata "environments" (comma-separated),
	// or all.
	Environments []string `json:"environments"`
}

// licenses is what the licenses stage found in a revision.
type licenses struct {
	status []LicenseStatus
	// files are the license files, revocation list and issuer keys, by path, to go out with
	// the builds of the environments they apply to.
	files map[string][]byte
	// refused is why each environment cannot take the revision, if a license it uses fails.
	refused map[string]string
	serial  uint64
}

// checkLicenses verifies every license file in the repository's licenses folder against
// the daemon's issuer keys, or, without them, the repository's own licenses/issuers.pub,
// and the revocation list licenses/revoked.list, whose serial may never go down.
func (r *Reconciler) checkLicenses(snap *sources.Snapshot, s *repo.Settings, now time.Time) (*licenses, error) {
	dir := s.Paths.Licenses
	out := &licenses{files: map[string][]byte{}, refused: map[string]string{}, serial: r.revSerial}
	entries, err := fs.ReadDir(snap.FS, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var lics []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".lic") {
			lics = append(lics, path.Join(dir, e.Name()))
		}
	}
	if len(lics) == 0 {
		return out, nil
	}
	keys := r.opts.LicenseKeys
	if keys == nil {
		b, err := fs.ReadFile(snap.FS, path.Join(dir, "issuers.pub"))
		if err != nil {
			return nil, fmt.Errorf("licenses: no issuer keys configured and no %s/issuers.pub: %w", dir, err)
		}
		if keys, err = license.ParseKeyring(b); err != nil {
			return nil, fmt.Errorf("%s/issuers.pub: %w", dir, err)
		}
		out.files[path.Join(dir, "issuers.pub")] = b
	}
	opts := license.DefaultVerifyOptions("")
	opts.AnyProduct, opts.IgnoreBinding = true, true // the services check these; the daemon checks the files
	v, err := license.NewVerifier(keys, opts)
	if err != nil {
		return nil, err
	}
	all := s.EnvNames()
	if b, err := fs.ReadFile(snap.FS, path.Join(dir, "revoked.list")); err == nil {
		list, err := license.VerifyRevocations(b, keys, r.revSerial)
		if err != nil {
			// A bad or replayed list puts every license in doubt.
			for _, env := range all {
				out.refused[env] = fmt.Sprintf("%s/revoked.list: %v", dir, err)
			}
			return out, nil
		}
		if _, err := v.LoadRevocations(b); err != nil {
			return nil, err
		}
		out.serial = list.Serial
		out.files[path.Join(dir, "revoked.list")] = b
	}
	for _, f := range lics {
		b, err := fs.ReadFile(snap.FS, f)
		if err != nil {
			return nil, err
		}
		st := LicenseStatus{File: f, Environments: all}
		l, err := v.Verify(b, now)
		if p, perr := license.Parse(b); perr == nil {
			st.ID, st.Licensee, st.Product, st.ExpiresAt = p.ID, p.Licensee, p.Product, p.ExpiresAt
			if envs := p.Metadata["environments"]; envs != "" {
				st.Environments = strings.Split(envs, ",")
				for i := range st.Environments {
					st.Environments[i] = strings.TrimSpace(st.Environments[i])
				}
			}
		}
		if err != nil {
			st.Reason, st.Error = string(license.ReasonOf(err)), err.Error()
			for _, env := range st.Environments {
				if _, ok := out.refused[env]; !ok {
					out.refused[env] = fmt.Sprintf("license %s: %v", f, err)
				}
			}
		} else {
			st.State = l.State().String()
			st.Expiring = l.ExpiresAt.Sub(now) < ExpiryWarning
			out.files[f] = b
		}
		out.status = append(out.status, st)
	}
	sort.Slice(out.status, func(i, j int) bool { return out.status[i].File < out.status[j].File })
	return out, nil
}

// forEnv is the license files that go out with env's build.
func (l *licenses) forEnv(env string, s *repo.Settings) []publish.File {
	applies := map[string]bool{}
	for _, st := range l.status {
		if st.Reason == "" && contains(st.Environments, env) {
			applies[st.File] = true
		}
	}
	if len(applies) == 0 {
		return nil
	}
	var out []publish.File
	for p, b := range l.files {
		if applies[p] || !strings.HasSuffix(p, ".lic") {
			out = append(out, publish.File{Path: p, Data: b, ContentType: "text/plain; charset=utf-8"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
