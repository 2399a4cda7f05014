package pipeline

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
	// Kept is the revocation list accepted before, as its file (the daemon keeps it in its
	// state store). It applies when the revision has no list of its own or a refused one,
	// so deleting the list, or putting back an older one, revokes nothing less; its serial
	// counts as MinSerial. It was verified when it was accepted, and a revocation only ever
	// refuses, so it is not verified again: issuer keys rotated since do not drop it.
	Kept []byte
}

// RevocationStatus is the revocation list the licenses step checked licenses against, and
// why the revision's own list was not it, if it was not.
type RevocationStatus struct {
	File string `json:"file"`
	// Serial is the serial of the list licenses were checked against; 0 for none.
	Serial uint64 `json:"serial"`
	// Kept is true when that list is one accepted before (LicenseOptions.Kept), not the
	// revision's own.
	Kept bool `json:"kept,omitempty"`
	// Reason and Error say why the revision's own list was refused (license.ErrReplayed's
	// reason when it is older than the one kept), or Error that it has none.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
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
	// List is the revocation list in force after this revision: the revision's own when it
	// verified, else LicenseOptions.Kept. The caller keeps it for the next revision.
	List []byte
	// Revocations says which list licenses were checked against, and why when it is not
	// the revision's; nil when there is no list, or no license to check.
	Revocations *RevocationStatus
	// files are the license files, revocation list and issuer keys, by path, to go out with
	// the builds of the environments they apply to.
	files map[string][]byte
}

// CheckLicenses verifies every license file in the repository's licenses folder against
// the issuer keys, and the revocation list licenses/revoked.list, whose serial may never go
// down: a list older than the one kept is refused, and without a list the one kept
// applies.
func CheckLicenses(fsys fs.FS, s *repo.Settings, lo LicenseOptions, now time.Time) (*Licenses, error) {
	dir := s.Paths.Licenses
	var kept *license.RevocationList
	if lo.Kept != nil {
		var err error
		if kept, err = license.ParseRevocations(lo.Kept); err != nil {
			return nil, fmt.Errorf("the revocation list kept from an earlier revision: %w", err)
		}
		lo.MinSerial = max(lo.MinSerial, kept.Serial)
	}
	out := &Licenses{files: map[string][]byte{}, Refused: map[string]string{}, Serial: lo.MinSerial, List: lo.Kept}
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
	if keys.Len() == 0 {
		return nil, fmt.Errorf("licenses: the issuer keyring is empty")
	}
	opts := license.DefaultVerifyOptions("")
	opts.AnyProduct, opts.IgnoreBinding = true, true // the services check these; the daemon checks the files
	all := s.EnvNames()
	revs, refusal := revocations(fsys, path.Join(dir, "revoked.list"), keys, lo, kept, out)
	if refusal != "" {
		// A bad or replayed list, or a missing one whose predecessor was not kept, puts
		// every license in doubt.
		for _, env := range all {
			out.Refused[env] = refusal
		}
		return out, nil
	}
	for _, f := range lics {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		st := LicenseStatus{File: f, Environments: all}
		l, err := license.Verify(b, keys, revs, now, opts)
		if err != nil && out.Revocations != nil && out.Revocations.Kept && errors.Is(err, license.ErrRevoked) {
			err = fmt.Errorf("%w, kept from an earlier revision: this revision has no %s", err, out.Revocations.File)
		}
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

// revocations finds the revocation list licenses are checked against, fills in
// out.Revocations, and out.Serial, out.List and the file builds carry when it is in force.
// The revision's own list (at file) is that list when it verifies and is not older than
// the one kept; without a list the one kept is. A non-empty refusal says why no list can
// be trusted, and then none is returned.
func revocations(fsys fs.FS, file string, keys *license.Keyring, lo LicenseOptions, kept *license.RevocationList, out *Licenses) (*license.RevocationList, string) {
	st := &RevocationStatus{File: file}
	out.Revocations = st
	b, err := fs.ReadFile(fsys, file)
	if err == nil {
		var list *license.RevocationList
		if list, err = license.VerifyRevocations(b, keys, lo.MinSerial); err == nil {
			st.Serial = list.Serial
			out.Serial, out.List, out.files[file] = list.Serial, b, b
			return list, ""
		}
		st.Reason = string(license.ReasonOf(err))
	}
	if errors.Is(err, fs.ErrNotExist) {
		switch {
		case kept != nil:
			st.Serial, st.Kept = kept.Serial, true
			st.Error = fmt.Sprintf("this revision has no %s: the list accepted before (serial %d) applies", file, kept.Serial)
			out.files[file] = lo.Kept // builds carry the list their licenses were checked against
			return kept, ""
		case lo.MinSerial == 0:
			out.Revocations = nil
			return nil, ""
		}
		// A serial is recorded but not its list (a state written by an older version):
		// no list is older than any, and the one that was in force cannot be applied.
		st.Reason = string(license.ErrReplayed)
		err = fmt.Errorf("%w: this revision has none, and serial %d was accepted before", license.ErrReplayed, lo.MinSerial)
	}
	if kept != nil {
		st.Serial, st.Kept = kept.Serial, true
	}
	st.Error = err.Error()
	return nil, fmt.Sprintf("%s: %v", file, err)
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
