// Package secrets decrypts SOPS files in memory with keys the daemon hands it, never with keys
// found in the process environment or a GnuPG home.
//
// sops' own decrypt package reads SOPS_AGE_KEY_FILE, ~/.config/sops/age and the gpg binary's
// keyring; a daemon that serves several repositories, or a test suite, cannot let process-global
// state choose the keys. So a Keyring holds the keys, and a small sops key service answers sops'
// requests for age and OpenPGP data keys from it. Every other key type (AWS/GCP/Azure KMS,
// Vault, HuaweiCloud KMS) goes to sops' own key service, which uses the ambient cloud
// credentials as sops does.
//
// Decrypted bytes are returned to the caller and kept nowhere else. Errors name the file and
// the recipients it was encrypted for; they never carry plaintext.
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
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/codes"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrNoKey means no key in the keyring opens the file.
	ErrNoKey = errors.New("no key in the keyring opens it")
	// ErrTampered means the file's MAC does not match its content: it was changed after it
	// was encrypted, or its MAC was removed.
	ErrTampered = errors.New("MAC mismatch: the file was changed after it was encrypted")
	// ErrNotEncrypted means the file has no sops metadata.
	ErrNotEncrypted = errors.New("not a SOPS-encrypted file")
)

// Keyring holds the private keys secrets may be decrypted with. The zero value is empty and
// ready to use; it is safe for concurrent use.
type Keyring struct {
	mu  sync.RWMutex
	age sopsage.ParsedIdentities
	pgp openpgp.EntityList
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
	_, err := load(name, data)
	return err == nil
}

// Decrypt decrypts the SOPS file name (used for the format and in errors) and returns its
// plaintext in the same format: YAML, JSON, dotenv, INI, or the binary store's raw bytes.
func (k *Keyring) Decrypt(ctx context.Context, name string, data []byte) ([]byte, error) {
	tree, err := load(name, data)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", name, err)
	}
	_, err = common.DecryptTree(common.DecryptTreeOpts{
		Tree:        tree,
		KeyServices: []keyservice.KeyServiceClient{keyservice.NewCustomLocalClient(keyServer{ring: k, ctx: ctx})},
		Cipher:      aes.NewCipher(),
	})
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", name, explain(err, tree))
	}
	out, err := store(name).EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: emit plaintext: %w", name, err)
	}
	return out, nil
}

// Recipients lists whom a SOPS file was encrypted for, as sops names them: age recipients,
// PGP fingerprints, KMS ARNs and the like. It reads only the metadata.
func Recipients(name string, data []byte) ([]string, error) {
	tree, err := load(name, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return recipients(tree), nil
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

func load(name string, data []byte) (*sops.Tree, error) {
	tree, err := store(name).LoadEncryptedFile(data)
	if err != nil {
		if errors.Is(err, sops.MetadataNotFound) {
			return nil, ErrNotEncrypted
		}
		return nil, fmt.Errorf("%w: %v", ErrNotEncrypted, err)
	}
	if len(tree.Metadata.KeyGroups) == 0 {
		return nil, fmt.Errorf("%w: no key groups in its metadata", ErrNotEncrypted)
	}
	return &tree, nil
}

// explain turns sops' exit errors into ones a user acts on. sops' own message for a missing
// key lists every key service's failure; the user needs to know which keys would open it.
func explain(err error, tree *sops.Tree) error {
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) {
		return err
	}
	switch exit.ExitCode() {
	case codes.MacMismatch:
		return ErrTampered
	case codes.ErrorDecryptingTree:
		// A value that fails authentication under the right data key: its ciphertext was
		// edited. sops' message names the value's path, not its content.
		return fmt.Errorf("%w (%v)", ErrTampered, err)
	case codes.CouldNotRetrieveKey:
		return fmt.Errorf("%w; it was encrypted for %s", ErrNoKey, strings.Join(recipients(tree), ", "))
	}
	return err
}

// keyServer answers sops' data-key requests from a Keyring.
type keyServer struct {
	keyservice.UnimplementedKeyServiceServer
	ring *Keyring
	ctx  context.Context
}

// Decrypt returns the data key for one master key of a file.
func (s keyServer) Decrypt(ctx context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	switch key := req.GetKey().GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		plain, err := s.ring.decryptAge(key.AgeKey.GetRecipient(), req.GetCiphertext())
		if err != nil {
			return nil, err
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	case *keyservice.Key_PgpKey:
		plain, err := s.ring.decryptPGP(req.GetCiphertext())
		if err != nil {
			return nil, err
		}
		return &keyservice.DecryptResponse{Plaintext: plain}, nil
	default:
		// KMS-class keys: sops' own server, with the credentials the environment gives it.
		if s.ctx != nil {
			ctx = s.ctx
		}
		return keyservice.Server{}.Decrypt(ctx, req)
	}
}

// Encrypt is not offered: Circle reads secrets, people write them with the sops CLI.
func (s keyServer) Encrypt(context.Context, *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("circle does not encrypt SOPS files; use the sops CLI")
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
	return io.ReadAll(md.UnverifiedBody)
}
