// Package secrets decrypts SOPS files in memory with keys the daemon hands it, never with keys
// found in the process environment or a GnuPG home.
//
// sops' own decrypt package reads SOPS_AGE_KEY_FILE, ~/.config/sops/age and the gpg binary's
// keyring; a daemon that serves several repositories, or a test suite, cannot let process-global
// state choose the keys. So a Keyring holds the keys, and a small sops key service answers sops'
// requests for age and OpenPGP data keys from it, in memory.
//
// A SOPS file is repository content, written by whoever can push: it is not trusted. Hence:
//
//   - Remote key sources (AWS/GCP/Azure KMS, Vault transit, HuaweiCloud KMS) are the
//     daemon's choice, not the file's. A file's metadata names the address a data-key
//     request goes to (an hc_vault entry's vault_address), while the request carries the
//     daemon's credentials (VAULT_TOKEN, the cloud identity). Only keys the Keyring was told
//     to allow (AllowRemote) are ever asked for; by default none is. A file naming another is
//     refused at that entry's line before any request, and the key service, the one place a
//     request leaves from, refuses it again.
//   - No error carries a value. sops authenticates values but not their type tags, and its
//     parse error for a changed tag quotes the plaintext; so Circle walks the tree itself
//     (tree.go) and builds every error from the file name, a line, a key path and a message
//     of its own (Problem). No text of a sops error reaches a caller.
//   - Every entry is encrypted, except what the file's own sops rules leave in the clear:
//     null and empty values, which sops neither encrypts nor covers by its MAC, are refused
//     (checkEntries).
//
// Decrypted bytes are returned to the caller and kept nowhere else.
package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
)

// Keyring holds the private keys secrets may be decrypted with. The zero value is empty and
// ready to use; it is safe for concurrent use.
type Keyring struct {
	mu  sync.RWMutex
	age sopsage.ParsedIdentities
	pgp openpgp.EntityList
	// remote are the remote key sources requests may be made to (AllowRemote).
	remote []keySource
}

// AddAge adds age identities: the content of an age key file (AGE-SECRET-KEY-1… lines,
// post-quantum AGE-SECRET-KEY-PQ-1… lines, # comments and blank lines ignored).
func (k *Keyring) AddAge(identities []byte) error {
	var ids sopsage.ParsedIdentities
	if err := ids.Import(string(identities)); err != nil {
		// sops' message names the parse failure only, never the key material.
		return fmt.Errorf("age identities: %w", err)
	}
	if len(ids) == 0 {
		return errors.New("age identities: none found")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.age = append(k.age, ids...)
	return nil
}

// AddPGP adds OpenPGP secret keys, armored (gpg --export-secret-keys --armor) or binary.
// Passphrase-protected keys are refused: a daemon has nobody to ask.
func (k *Keyring) AddPGP(keys []byte) error {
	var (
		ring openpgp.EntityList
		err  error
	)
	if bytes.Contains(keys, []byte("-----BEGIN PGP")) {
		ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(keys))
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(keys))
	}
	if err != nil {
		return fmt.Errorf("pgp keys: %w", err)
	}
	var secret openpgp.EntityList
	for _, e := range ring {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			return fmt.Errorf("pgp key %X: protected by a passphrase, which a daemon cannot enter", e.PrimaryKey.Fingerprint)
		}
		secret = append(secret, e)
	}
	if len(secret) == 0 {
		return errors.New("pgp keys: no secret key found (export with gpg --export-secret-keys)")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pgp = append(k.pgp, secret...)
	return nil
}

// AddFile adds the keys in a file: an age key file, or an OpenPGP key (.asc, .gpg, .pgp, or
// any file that starts with an armor header).
func (k *Keyring) AddFile(name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read key file: %w", err)
	}
	if err := k.add(name, data); err != nil {
		return fmt.Errorf("key file %s: %w", name, err)
	}
	return nil
}

// AddSecretData adds the keys of a Kubernetes Secret's data, with Flux's naming convention
// so a Secret made for Flux works unchanged: keys ending in .agekey hold age identities,
// keys ending in .asc hold OpenPGP keys; other keys are ignored.
func (k *Keyring) AddSecretData(data map[string][]byte) error {
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var err error
		switch {
		case strings.HasSuffix(name, ".agekey"):
			err = k.AddAge(data[name])
		case strings.HasSuffix(name, ".asc"):
			err = k.AddPGP(data[name])
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("secret key %s: %w", name, err)
		}
	}
	return nil
}

func (k *Keyring) add(name string, data []byte) error {
	switch ext := path.Ext(name); {
	case ext == ".asc" || ext == ".gpg" || ext == ".pgp" || bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP")):
		return k.AddPGP(data)
	default:
		return k.AddAge(data)
	}
}

// Len is the number of keys held: age identities plus OpenPGP keys.
func (k *Keyring) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.age) + len(k.pgp)
}

// IsEncrypted reports whether data looks like a SOPS file of the format name's extension
// implies: it parses and carries sops metadata.
func IsEncrypted(name string, data []byte) bool {
	_, err := open(name, data)
	return err == nil
}

// Decrypt decrypts the SOPS file name (used for the format and in errors) and returns its
// plaintext in the same format: YAML, JSON, dotenv, INI, or the binary store's raw bytes.
//
// Before any key is asked for, the file is refused if it names a remote key source the
// keyring does not allow (AllowRemote), or if an entry is not encrypted (see checkEntries);
// no request is made then. Its error is an *Error whose problems name the file, the line
// and key path of each entry at fault, and never a value.
func (k *Keyring) Decrypt(ctx context.Context, name string, data []byte) ([]byte, error) {
	f, err := open(name, data)
	if err != nil {
		return nil, err
	}
	ps := &problems{file: name, lines: f.lines}
	k.checkKeySources(f.tree, ps)
	checkEntries(f.tree, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}

	srv := &keyServer{ring: k, ctx: ctx}
	dataKey, err := f.tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(srv)}, nil)
	if err != nil {
		// sops' error lists every key's failure; the user needs whom the file is for, and
		// why a remote key service said no. No value is decrypted yet, so none can be in it.
		msg := ErrNoKey.Error() + "; it was encrypted for " + strings.Join(recipients(f.tree), ", ")
		if len(srv.failures) > 0 {
			msg += " (" + strings.Join(srv.failures, "; ") + ")"
		}
		return nil, fileError(name, ErrNoKey, msg)
	}

	decryptTree(f.tree, dataKey, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	out, err := emit(name, f.format, f.tree.Branches)
	if err != nil {
		// The emitters quote values in their errors (JSON's "Error encoding value …").
		// A value whose type tag was changed to one that still parses (a float NaN in a
		// JSON file) is what makes them fail.
		return nil, fileError(name, ErrTampered, "its decrypted values cannot be written back as "+formatName(f.format)+
			": a type tag was changed after the file was encrypted")
	}
	return out, nil
}

// checkKeySources refuses every remote key of the file the keyring does not allow, at the
// line of its entry in the metadata.
func (k *Keyring) checkKeySources(tree *sops.Tree, ps *problems) {
	for g, group := range tree.Metadata.KeyGroups {
		seen := map[string]int{}
		for _, mk := range group {
			key := keyservice.KeyFromMasterKey(mk)
			src := keySourceOf(&key)
			typ := mk.TypeToIdentifier()
			i := seen[typ]
			seen[typ]++
			if k.allowed(src) {
				continue
			}
			// The entry's place: sops.<type>[i], or sops.key_groups[g].<type>[i] in a file
			// with key groups; the line of its address field.
			entry := joinIndex("sops."+typ, i)
			field := metadataField[typ]
			if l, _ := ps.lines.at(0, "sops.key_groups"); l > 0 {
				entry = joinIndex("sops.key_groups", g) + "." + joinIndex(typ, i)
			}
			ps.addAt(ErrKeySourceNotAllowed, entry, []string{joinKey(entry, field), entry},
				fmt.Sprintf("%s key %s is not allowed: no request is made for it (the daemon's allowed remote keys are set with --kms-allow)", typ, src))
		}
	}
}

// Recipients lists whom a SOPS file was encrypted for, as sops names them: age recipients,
// PGP fingerprints, KMS ARNs and the like. It reads only the metadata.
func Recipients(name string, data []byte) ([]string, error) {
	f, err := open(name, data)
	if err != nil {
		return nil, err
	}
	return recipients(f.tree), nil
}

func recipients(tree *sops.Tree) []string {
	var out []string
	for _, group := range tree.Metadata.KeyGroups {
		for _, key := range group {
			out = append(out, key.TypeToIdentifier()+" "+key.ToString())
		}
	}
	return out
}

func store(name string) common.Store {
	return common.StoreForFormat(formats.FormatForPath(name), config.NewStoresConfig())
}

func formatName(f formats.Format) string {
	switch f {
	case formats.Yaml:
		return "YAML"
	case formats.Json:
		return "JSON"
	case formats.Dotenv:
		return "dotenv"
	case formats.Ini:
		return "INI"
	}
	return "binary"
}

// file is a loaded SOPS file: its tree, and the positions of its entries.
type file struct {
	tree   *sops.Tree
	format formats.Format
	lines  lineIndex
}

// open loads a SOPS file. Its errors are ErrNotEncrypted problems with a message of this
// package: the loaders' own errors quote the input (dotenv's "invalid dotenv input line:
// <the line>"), and a file that does not parse is not worth a value in an error either.
func open(name string, data []byte) (*file, error) {
	format := formats.FormatForPath(name)
	lines, err := indexLines(format, data)
	if err != nil {
		return nil, fileError(name, ErrNotEncrypted, "not loaded: "+err.Error())
	}
	tree, err := store(name).LoadEncryptedFile(data)
	if err != nil {
		if errors.Is(err, sops.MetadataNotFound) {
			return nil, fileError(name, ErrNotEncrypted, ErrNotEncrypted.Error()+": it has no sops metadata")
		}
		return nil, fileError(name, ErrNotEncrypted, ErrNotEncrypted.Error()+
			": it does not parse as "+formatName(format)+", or its sops metadata is malformed")
	}
	if len(tree.Metadata.KeyGroups) == 0 {
		return nil, fileError(name, ErrNotEncrypted, ErrNotEncrypted.Error()+": no key groups in its metadata")
	}
	return &file{tree: &tree, format: format, lines: lines}, nil
}

func (k *Keyring) decryptAge(recipient string, ciphertext []byte) ([]byte, error) {
	k.mu.RLock()
	ids := k.age
	k.mu.RUnlock()
	if len(ids) == 0 {
		return nil, fmt.Errorf("no age identity in the keyring for %s", recipient)
	}
	mk := &sopsage.MasterKey{Recipient: recipient, EncryptedKey: string(ciphertext)}
	ids.ApplyToMasterKey(mk)
	return mk.Decrypt()
}

// decryptPGP is what sops' pgp key source does with a keyring file, done with the keys in
// memory instead, so no GnuPG home or gpg binary is involved.
func (k *Keyring) decryptPGP(ciphertext []byte) ([]byte, error) {
	k.mu.RLock()
	ring := k.pgp
	k.mu.RUnlock()
	if len(ring) == 0 {
		return nil, errors.New("no OpenPGP key in the keyring")
	}
	block, err := armor.Decode(bytes.NewReader(ciphertext))
	if err != nil {
		return nil, fmt.Errorf("pgp data key: %w", err)
	}
	md, err := openpgp.ReadMessage(block.Body, ring, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("pgp data key: %w", err)
	}
	// A data key is 32 bytes. The message is the file's, and anyone with the public key can
	// write one that decompresses to gigabytes: read no more than a key could be.
	key, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, maxDataKey+1))
	if err != nil {
		return nil, fmt.Errorf("pgp data key: %w", err)
	}
	if len(key) > maxDataKey {
		return nil, errors.New("pgp data key: longer than a data key")
	}
	return key, nil
}

// maxDataKey bounds what a key service's answer may be; sops' data keys are 32 bytes.
const maxDataKey = 1024
