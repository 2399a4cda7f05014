package build

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/repo"
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

// LicenseOptions are what the licenses step checks files against.
type LicenseOptions struct {
	// Keys are the issuer keys license files must be signed with. Nil uses the
	// repository's own licenses/issuers.pub (which proves the files intact, not who made
	// them).
	Keys *license.Keyring
	// MinSerial is the highest revocation-list serial accepted before: a lower one is a
	// replay and puts every license in doubt.
	MinSerial uint64
}

// Licenses is what the licenses step found in a revision.
type Licenses struct {
	// Status is each license file, by path.
	Status []LicenseStatus
	// Refused is why each environment cannot take the revision, if a license it uses
	// fails (or the revocation list does).
	Refused map[string]string
	// Serial is the revocation list's serial, or MinSerial without one.
	Serial uint64
	// files are the license files, revocation list and issuer keys, by path, to go out with
	// the builds of the environments they apply to.
	files map[string][]byte
}

// CheckLicenses verifies every license file in the repository's licenses folder against
// the issuer keys, and the revocation list licenses/revoked.list, whose serial may never go
// down.
func CheckLicenses(fsys fs.FS, s *repo.Settings, lo LicenseOptions, now time.Time) (*Licenses, error) {
	dir := s.Paths.Licenses
	out := &Licenses{files: map[string][]byte{}, Refused: map[string]string{}, Serial: lo.MinSerial}
	entries, err := fs.ReadDir(fsys, dir)
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
	keys := lo.Keys
	if keys == nil {
		b, err := fs.ReadFile(fsys, path.Join(dir, "issuers.pub"))
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
	if b, err := fs.ReadFile(fsys, path.Join(dir, "revoked.list")); err == nil {
		list, err := license.VerifyRevocations(b, keys, lo.MinSerial)
		if err != nil {
			// A bad or replayed list puts every license in doubt.
			for _, env := range all {
				out.Refused[env] = fmt.Sprintf("%s/revoked.list: %v", dir, err)
			}
			return out, nil
		}
		if _, err := v.LoadRevocations(b); err != nil {
			return nil, err
		}
		out.Serial = list.Serial
		out.files[path.Join(dir, "revoked.list")] = b
	}
	for _, f := range lics {
		b, err := fs.ReadFile(fsys, f)
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
				if _, ok := out.Refused[env]; !ok {
					out.Refused[env] = fmt.Sprintf("license %s: %v", f, err)
				}
			}
		} else {
			st.State = l.State().String()
			st.Expiring = l.ExpiresAt.Sub(now) < ExpiryWarning
			out.files[f] = b
		}
		out.Status = append(out.Status, st)
	}
	sort.Slice(out.Status, func(i, j int) bool { return out.Status[i].File < out.Status[j].File })
	return out, nil
}

// ForEnv is the license files that go out with env's build: the accepted licenses that
// apply to it, with the revocation list and issuer keys they were checked against.
func (l *Licenses) ForEnv(env string) []publish.File {
	applies := map[string]bool{}
	for _, st := range l.Status {
		if st.Reason == "" && slices.Contains(st.Environments, env) {
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
