package reconciler

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/rs/zerolog"

	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/signature"
)

// verify applies each environment's signature policy (circle.yaml
// environments[].policy.requireSignedCommits) and returns the environments that refuse the
// revision, with why: the pipeline's verify stage.
//
// The keys are the daemon's own plus the files the policy lists. Keys listed in the
// repository are those of the revision the environment last accepted, so a commit cannot
// vouch for itself by adding its signer's key: a new key is trusted once a commit signed by
// an already-trusted key has brought it in. The state store keeps them (trust.go), so a
// restart does not reopen that. Only when the environment has accepted no revision with
// its policy since the store was made (or ever, without one) are the listed files read
// from the revision being checked (trust on first use, logged). Daemon keys have no such
// window.
func (r *Reconciler) verify(snap *sources.Snapshot, s *repo.Settings, log zerolog.Logger) map[string]string {
	refused := map[string]string{}
	r.pendingKeys = map[string]listedKeySet{}
	for _, e := range s.Environments {
		if e.Policy == nil || !e.Policy.RequireSignedCommits {
			continue
		}
		current, err := listedKeys(snap.FS, e.Policy.TrustedKeys)
		if err == nil {
			trusted, ok := r.repoKeys[e.Name]
			if !ok {
				trusted = current
				if current.keys.Len() > 0 {
					log.Warn().Str("env", e.Name).Strs("files", e.Policy.TrustedKeys).
						Msg("no revision of this environment accepted before: trusting the repository's listed keys as of this revision")
				}
			}
			keys := r.opts.TrustedKeys.Merge(trusted.keys)
			if keys.Len() == 0 {
				err = errors.New("signed commits are required but no trusted keys are configured")
			} else {
				err = keys.Verify(snap.Commit)
			}
		}
		if err != nil {
			refused[e.Name] = err.Error()
			log.Warn().Str("env", e.Name).Err(err).Msg("revision refused by the environment's signature policy")
			continue
		}
		r.pendingKeys[e.Name] = current
	}
	return refused
}

// listedKeys reads the trusted key files a policy names.
func listedKeys(fsys fs.FS, files []string) (listedKeySet, error) {
	set := listedKeySet{keys: &signature.Keys{}}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, path.Clean(f))
		if err != nil {
			return listedKeySet{}, fmt.Errorf("trusted keys: %w", err)
		}
		if err := set.keys.Add(b); err != nil {
			return listedKeySet{}, fmt.Errorf("trusted keys %s: %w", f, err)
		}
		set.files = append(set.files, b)
	}
	return set, nil
}
