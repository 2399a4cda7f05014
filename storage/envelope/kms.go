package envelope

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/secrets"
	// The KMS schemes a keyring may name besides awskms (awsKey). hashivault:// is a
	// separate gocloud module, not a dependency; base64key:// (localsecrets) is refused by
	// kmsSchemes whoever imports it.
	_ "gocloud.dev/secrets/azurekeyvault"
	_ "gocloud.dev/secrets/gcpkms"
)

// Why the keyset is sealed under KMS once, and not each data key (doc.go, "KMS-sealed
// keyrings"): a KMS call per object would put the KMS on every read and write path, at its
// latency, price and rate limits, and a KMS outage would stop reads of published builds.
// Sealing the keyring file instead costs one Decrypt when a process loads it and one
// Encrypt (plus the check Decrypt of init) when the file is written; the keys then live
// only in that process's memory, exactly as a cleartext keyring's do.

// kmsSchemes are the gocloud.dev/secrets schemes a keyring file may name. Each one keeps
// the key in a service; base64key:// would put the key in the URL, that is in the file.
var kmsSchemes = map[string]bool{"awskms": true, "gcpkms": true, "azurekeyvault": true}

// kmsKeysetAD is the associated data of the sealed keyset: a KMS-sealed blob made for
// anything else does not open as a storage keyring.
var kmsKeysetAD = []byte("circle-storage-keyring/1")

// kmsTimeout bounds a KMS call made without a caller's context (ReadKeyring, Marshal), so
// an unreachable KMS fails a start instead of hanging it.
const kmsTimeout = time.Minute

// kmsKeyName is the KMS URL without its query, to name the key in errors: the query holds
// the region, endpoint and the like, which say nothing to the reader of "key disabled" and
// might say more than an error should.
func kmsKeyName(keyURL string) string {
	u, err := url.Parse(keyURL)
	if err != nil {
		return "(unparsable KMS URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// checkKMSURL refuses a URL that is not one of kmsSchemes or names no key.
func checkKMSURL(keyURL string) error {
	u, err := url.Parse(keyURL)
	if err != nil {
		return fmt.Errorf("KMS URL: %w", err)
	}
	if !kmsSchemes[u.Scheme] {
		// Not the URL itself: base64key:// carries the key in it.
		return fmt.Errorf("KMS URL scheme %q: want awskms://, gcpkms:// or azurekeyvault://", u.Scheme)
	}
	if u.Host == "" && (u.Path == "" || u.Path == "/") {
		return fmt.Errorf("KMS URL %s: names no key", kmsKeyName(keyURL))
	}
	return nil
}

// remoteKey is a KMS key: what keeperAEAD asks to encrypt and decrypt Tink's data key.
type remoteKey interface {
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// keeperAEAD is a KMS key as the Tink AEAD that Tink's KMS envelope encryption wraps its
// data key with. It remembers the KMS's last error, because Tink's keyset reader flattens
// the errors it passes on into text.
type keeperAEAD struct {
	keeper remoteKey
	err    error
}

// awsKey is an AWS KMS key, opened from an awskms:// URL the way gocloud.dev's awskms
// opens it (the same query parameters, through gocloud.dev/aws), but naming the key in
// Decrypt too. gocloud.dev's keeper leaves Decrypt's KeyId out, so AWS decrypts with
// whichever key the ciphertext names: a file whose URL was edited to another key would
// still open, and an error would not be about the key the file names. AWS recommends
// naming it; then the URL is the key that is used, and a disabled, deleted or different
// key fails with that key's own error.
type awsKey struct {
	client  *kms.Client
	keyID   string
	context map[string]string
}

func openAWSKey(ctx context.Context, u *url.URL) (*awsKey, error) {
	k := &awsKey{keyID: strings.TrimPrefix(path.Join(u.Host, u.Path), "/")}
	q := u.Query()
	// context_NAME=VALUE is KMS encryption context, as in gocloud.dev's awskms URLs.
	for name, vs := range q {
		if c, ok := strings.CutPrefix(name, "context_"); ok {
			if len(vs) != 1 {
				return nil, fmt.Errorf("query parameter %q: want exactly one value", name)
			}
			if k.context == nil {
				k.context = map[string]string{}
			}
			k.context[c] = vs[0]
			q.Del(name)
		}
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, err
	}
	k.client = kms.NewFromConfig(cfg)
	return k, nil
}

// Encrypt is KMS Encrypt under the key.
func (k *awsKey) Encrypt(ctx context.Context, plaintext []byte) ([]byte, error) {
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k.keyID), Plaintext: plaintext, EncryptionContext: k.context})
	if err != nil {
		return nil, err
	}
	return out.CiphertextBlob, nil
}

// Decrypt is KMS Decrypt, with the key named.
func (k *awsKey) Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error) {
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(k.keyID), CiphertextBlob: ciphertext, EncryptionContext: k.context})
	if err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// EncryptWithContext encrypts with the KMS key. The envelope asks with no associated data
// (the keyset's own associated data binds the sealed payload); anything else is refused
// rather than silently dropped, since a Keeper cannot bind it.
func (a *keeperAEAD) EncryptWithContext(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	if len(ad) != 0 {
		return nil, errors.New("KMS keeper: associated data not supported")
	}
	ct, err := a.keeper.Encrypt(ctx, plaintext)
	if err != nil {
		a.err = err
	}
	return ct, err
}

// DecryptWithContext decrypts with the KMS key; see EncryptWithContext.
func (a *keeperAEAD) DecryptWithContext(ctx context.Context, ciphertext, ad []byte) ([]byte, error) {
	if len(ad) != 0 {
		return nil, errors.New("KMS keeper: associated data not supported")
	}
	pt, err := a.keeper.Decrypt(ctx, ciphertext)
	if err != nil {
		a.err = err
	}
	return pt, err
}

// withKMS opens the KMS key of keyURL as Tink's KMS envelope AEAD (AES-256-GCM data key)
// and runs fn with it.
//
// The URL comes from the keyring file or the operator's --kms flag, never from a
// repository or a stored object: it is operator configuration, like the keyring path
// itself. So its query may choose the endpoint (awskms's endpoint=, used against a KMS
// emulator or a VPC endpoint), the region, profile or role: whoever can edit the keyring
// file can already replace its keys.
func withKMS(ctx context.Context, keyURL string, fn func(*aead.KMSEnvelopeAEADWithContext, *keeperAEAD) error) error {
	if err := checkKMSURL(keyURL); err != nil {
		return err
	}
	var key remoteKey
	if u, _ := url.Parse(keyURL); u.Scheme == "awskms" {
		k, err := openAWSKey(ctx, u)
		if err != nil {
			return fmt.Errorf("KMS key %s: %w", kmsKeyName(keyURL), err)
		}
		key = k
	} else {
		// gcpkms and azurekeyvault name the key in every request, Decrypt included.
		keeper, err := secrets.OpenKeeper(ctx, keyURL)
		if err != nil {
			return fmt.Errorf("KMS key %s: %w", kmsKeyName(keyURL), err)
		}
		defer keeper.Close()
		key = keeper
	}
	remote := &keeperAEAD{keeper: key}
	env, err := aead.NewKMSEnvelopeAEADWithContext(aead.AES256GCMKeyTemplate(), remote)
	if err != nil {
		return err
	}
	return fn(env, remote)
}

// sealKeyset encrypts the keyset under the KMS key: one KMS Encrypt.
func sealKeyset(ctx context.Context, h *keyset.Handle, keyURL string) (json.RawMessage, error) {
	var buf bytes.Buffer
	err := withKMS(ctx, keyURL, func(env *aead.KMSEnvelopeAEADWithContext, remote *keeperAEAD) error {
		if err := h.WriteWithContext(ctx, keyset.NewJSONWriter(&buf), env, kmsKeysetAD); err != nil {
			if remote.err != nil {
				return fmt.Errorf("KMS key %s: encrypt: %w", kmsKeyName(keyURL), remote.err)
			}
			return fmt.Errorf("KMS key %s: seal the keyset: %w", kmsKeyName(keyURL), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// openKeyset decrypts a keyset sealKeyset made: one KMS Decrypt.
func openKeyset(ctx context.Context, sealed json.RawMessage, keyURL string) (*keyset.Handle, error) {
	var h *keyset.Handle
	err := withKMS(ctx, keyURL, func(env *aead.KMSEnvelopeAEADWithContext, remote *keeperAEAD) error {
		var err error
		h, err = keyset.ReadWithContext(ctx, keyset.NewJSONReader(bytes.NewReader(sealed)), env, kmsKeysetAD)
		if err != nil {
			if remote.err != nil {
				return fmt.Errorf("KMS key %s: decrypt: %w", kmsKeyName(keyURL), remote.err)
			}
			// KMS answered; the sealed keyset itself does not open (edited, or sealed for
			// something else).
			return fmt.Errorf("KMS key %s: the sealed keyset does not open: %w", kmsKeyName(keyURL), err)
		}
		return nil
	})
	return h, err
}
