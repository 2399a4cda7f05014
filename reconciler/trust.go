package reconciler

import (
	"fmt"

	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/sources/signature"
)

// Trust that only moves forward. Two things a revision is judged by come from earlier
// revisions, not from itself: the revocation list last accepted (a later commit that
// deletes the list, or puts back an older one, must not bring a revoked license back) and
// each environment's repository-listed signing keys as of its last accepted revision (a
// commit must not vouch for itself). Both are kept in the state store with the status,
// in one transaction, so a restart, even after kill -9, judges the next revision as the
// daemon that stopped would have.

// Keys of the daemon's trust documents in the state store.
const (
	// stateRevocations holds keptRevocations.
	stateRevocations = "revocations"
	// stateSerial is where versions before stateRevocations kept the serial alone. It is
	// still read, so an upgrade does not forget a serial, and still written, so a
	// downgrade does not either.
	stateSerial = "revocation-serial"
	// stateSigningKeys holds each environment's listed key files, as keptKeys.
	stateSigningKeys = "signing-keys"
)

// keptRevocations is the revocation list in force, as the state store keeps it.
type keptRevocations struct {
	// Serial is the highest serial accepted; List is that list's file. A store written by
	// an older version has a serial and no list.
	Serial uint64 `json:"serial"`
	List   []byte `json:"list,omitempty"`
}

// listedKeySet is one environment's repository-listed signing keys, read from one
// revision: parsed, and the files as read, which are what the state store keeps.
type listedKeySet struct {
	keys  *signature.Keys
	files [][]byte
}

// keptKeys is the state store's form of the listed keys: each environment's key files, as
// read at the last revision it accepted. An environment present with no files accepted a
// revision whose policy listed none; an absent one has accepted none since the store was
// made.
type keptKeys map[string][][]byte

// parseListed makes the key set of key files.
func parseListed(files [][]byte) (listedKeySet, error) {
	set := listedKeySet{keys: &signature.Keys{}, files: files}
	for _, f := range files {
		if err := set.keys.Add(f); err != nil {
			return listedKeySet{}, err
		}
	}
	return set, nil
}

// resumeTrust reads the revocation list and the signing keys the last run kept.
func (r *Reconciler) resumeTrust() error {
	if _, err := r.opts.State.Get(stateSerial, &r.revoked.Serial); err != nil {
		return err
	}
	var rev keptRevocations
	ok, err := r.opts.State.Get(stateRevocations, &rev)
	if err != nil {
		return err
	}
	if ok {
		r.revoked.Serial, r.revoked.List = max(r.revoked.Serial, rev.Serial), rev.List
	}
	var keys keptKeys
	if _, err := r.opts.State.Get(stateSigningKeys, &keys); err != nil {
		return err
	}
	for env, files := range keys {
		set, err := parseListed(files)
		if err != nil {
			return fmt.Errorf("state %s: %s: %w", stateSigningKeys, env, err)
		}
		r.repoKeys[env] = set
	}
	return nil
}

// keepRevocations takes the licenses stage's verdict on the revocation list: the list in
// force after it (never older than the one before; see pipeline.CheckLicenses) is kept. It is
// kept whether or not the revision is accepted: a list that verified is the issuer's word,
// whatever else the commit holds.
func (r *Reconciler) keepRevocations(l *pipeline.Licenses) {
	if l.Serial >= r.revoked.Serial && l.List != nil {
		r.revoked = keptRevocations{Serial: l.Serial, List: l.List}
	}
}

// trustDocs are the trust documents to store with a status.
func (r *Reconciler) trustDocs() map[string]any {
	keys := keptKeys{}
	for env, set := range r.repoKeys {
		keys[env] = append([][]byte{}, set.files...) // [] rather than null: present, with no files
	}
	return map[string]any{
		stateRevocations: r.revoked,
		stateSerial:      r.revoked.Serial,
		stateSigningKeys: keys,
	}
}
