package secrets

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/getsops/sops/v3/keyservice"
)

// Every accepted form reads back as it was written, and each type refuses what is not its
// form, so a typo in --kms-allow fails at start instead of allowing nothing or too much.
func TestParseKeySource(t *testing.T) {
	for _, s := range []string{
		"kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"kms:arn:aws:kms:eu-west-1:111122223333:alias/circle+arn:aws:iam::111122223333:role/circle-decrypt",
		"kms:arn:aws:kms:eu-west-1:111122223333:alias/circle|profile=prod",
		"kms:arn:aws:kms:eu-west-1:111122223333:alias/circle+arn:aws:iam::1:role/r|profile=prod",
		"gcp_kms:projects/p/locations/global/keyRings/r/cryptoKeys/k",
		"azure_kv:https://circle.vault.azure.net/keys/sops",
		"azure_kv:https://circle.vault.azure.net/keys/sops/0123456789abcdef",
		"hc_vault:https://vault.example.com:8200/v1/sops/keys/circle",
		"hc_vault:http://127.0.0.1:8200/v1/team/transit/keys/circle",
		"hckms:cn-north-4:0f5c4a6e-1234-4d1e-9bcd-0123456789ab",
	} {
		k, err := parseKeySource(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if k.String() != s {
			t.Errorf("%s reads back as %s", s, k)
		}
		if !k.remote() {
			t.Errorf("%s is not remote", s)
		}
	}
	for _, s := range []string{
		"", "kms", "kms:", "arn:aws:kms:eu-west-1:1:key/x", "kms:key/x", "kms:arn:a+role", "kms:arn:a|prof=x",
		"gcp_kms:p/l/k", "azure_kv:circle.vault.azure.net/keys/sops", "azure_kv:https://v.vault.azure.net/sops",
		"azure_kv:https://v.vault.azure.net/keys/", "azure_kv:https://v/keys/a/b/c",
		"hc_vault:https://vault:8200/sops/keys/k", "hc_vault:https://vault:8200/v1/sops/k", "hc_vault:vault:8200/v1/sops/keys/k",
		"hc_vault:https://vault:8200/v1//keys/k", "hckms:key", "age:age1xyz", "pgp:ABCDEF", "ftp:x",
	} {
		if _, err := parseKeySource(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// Equal means every field: another engine path, key name, role or profile on the same
// address is another key. An Azure entry without a version allows every version.
func TestKeySourceAllows(t *testing.T) {
	vault := keySource{Type: "hc_vault", ID: "https://vault:8200", Engine: "sops", Name: "circle"}
	for _, other := range []keySource{
		{Type: "hc_vault", ID: "https://vault:8200", Engine: "sops", Name: "other"},
		{Type: "hc_vault", ID: "https://vault:8200", Engine: "sops/../sys", Name: "circle"},
		{Type: "hc_vault", ID: "https://evil:8200", Engine: "sops", Name: "circle"},
		{Type: "hc_vault", ID: "https://vault:8200/v1/sops/keys/circle"},
	} {
		if vault.allows(other) {
			t.Errorf("%s allows %s", vault, other)
		}
	}
	kms := keySource{Type: "kms", ID: "arn:aws:kms:eu-west-1:1:key/k"}
	if kms.allows(keySource{Type: "kms", ID: kms.ID, Role: "arn:aws:iam::2:role/attacker"}) || kms.allows(keySource{Type: "kms", ID: kms.ID, Profile: "admin"}) {
		t.Error("a KMS entry allows the same key with another role or profile")
	}
	az := keySource{Type: "azure_kv", ID: "https://v.vault.azure.net", Name: "k"}
	if !az.allows(keySource{Type: "azure_kv", ID: az.ID, Name: "k", Version: "v2"}) {
		t.Error("a versionless Azure entry does not allow a version")
	}
	if pinned := (keySource{Type: "azure_kv", ID: az.ID, Name: "k", Version: "v1"}); pinned.allows(keySource{Type: "azure_kv", ID: az.ID, Name: "k", Version: "v2"}) {
		t.Error("a pinned Azure entry allows another version")
	}
}

// The key service is the single place a request leaves from, and it checks the allow-list
// itself: asked directly for keys the keyring does not allow, it forwards nothing.
func TestKeyServerRefusesUnlistedKeys(t *testing.T) {
	calls := 0
	old := forward
	forward = func(context.Context, *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
		calls++
		return &keyservice.DecryptResponse{Plaintext: []byte("0123456789abcdef0123456789abcdef")}, nil
	}
	defer func() { forward = old }()

	var ring Keyring
	if err := ring.AllowRemote("hc_vault:https://vault.example.com/v1/sops/keys/circle"); err != nil {
		t.Fatal(err)
	}
	srv := &keyServer{ring: &ring}
	refused := []*keyservice.Key{
		{KeyType: &keyservice.Key_VaultKey{VaultKey: &keyservice.VaultKey{VaultAddress: "http://127.0.0.1:1", EnginePath: "sops", KeyName: "circle"}}},
		{KeyType: &keyservice.Key_VaultKey{VaultKey: &keyservice.VaultKey{VaultAddress: "https://vault.example.com", EnginePath: "sops", KeyName: "other"}}},
		{KeyType: &keyservice.Key_KmsKey{KmsKey: &keyservice.KmsKey{Arn: "arn:aws:kms:eu-west-1:1:key/k"}}},
		{KeyType: &keyservice.Key_GcpKmsKey{GcpKmsKey: &keyservice.GcpKmsKey{ResourceId: "projects/p/locations/l/keyRings/r/cryptoKeys/k"}}},
		{KeyType: &keyservice.Key_AzureKeyvaultKey{AzureKeyvaultKey: &keyservice.AzureKeyVaultKey{VaultUrl: "https://v.vault.azure.net", Name: "k"}}},
		{KeyType: &keyservice.Key_HckmsKey{HckmsKey: &keyservice.HckmsKey{KeyId: "r:k"}}},
		{}, // no key type at all
	}
	for _, key := range refused {
		_, err := srv.Decrypt(context.Background(), &keyservice.DecryptRequest{Key: key, Ciphertext: []byte("x")})
		if !errors.Is(err, ErrKeySourceNotAllowed) {
			t.Errorf("%v: err = %v", key, err)
		}
	}
	if calls != 0 {
		t.Fatalf("%d request(s) forwarded for keys not allowed", calls)
	}
	ok := &keyservice.Key{KeyType: &keyservice.Key_VaultKey{VaultKey: &keyservice.VaultKey{VaultAddress: "https://vault.example.com", EnginePath: "sops", KeyName: "circle"}}}
	if _, err := srv.Decrypt(context.Background(), &keyservice.DecryptRequest{Key: ok}); err != nil || calls != 1 {
		t.Fatalf("allowed key: %v, %d calls", err, calls)
	}
	if got := ring.RemoteAllowed(); len(got) != 1 || got[0] != "hc_vault:https://vault.example.com/v1/sops/keys/circle" {
		t.Errorf("RemoteAllowed = %v", got)
	}
	if _, err := srv.Encrypt(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "sops CLI") {
		t.Errorf("Encrypt: %v", err)
	}
}

// A PGP data-key message is the file's, written by anyone with the public key: one that
// decompresses to megabytes is refused after reading no more than a key could be.
func TestDecryptPGPBounded(t *testing.T) {
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, DefaultCompressionAlgo: packet.CompressionZLIB,
		CompressionConfig: &packet.CompressionConfig{Level: 9}}
	e, err := openpgp.NewEntity("circle test", "", "test@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := &Keyring{pgp: openpgp.EntityList{e}}
	message := func(payload []byte) []byte {
		var buf bytes.Buffer
		aw, err := armor.Encode(&buf, "PGP MESSAGE", nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := openpgp.Encrypt(aw, []*openpgp.Entity{e}, nil, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(payload); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		_ = aw.Close()
		return buf.Bytes()
	}
	key := bytes.Repeat([]byte{7}, 32)
	if got, err := k.decryptPGP(message(key)); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("a 32-byte key: %x, %v", got, err)
	}
	bomb := message(make([]byte, 16<<20))
	if len(bomb) > 1<<20 {
		t.Fatalf("the compressed message is %d bytes: no bomb", len(bomb))
	}
	if _, err := k.decryptPGP(bomb); err == nil || !strings.Contains(err.Error(), "longer than a data key") {
		t.Fatalf("16 MiB payload: %v", err)
	}
}
