package secrets

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/getsops/sops/v3/keyservice"
)

// RemoteKeySyntax describes the TYPE:IDENTIFIER forms AllowRemote takes, for help texts.
const RemoteKeySyntax = `TYPE:IDENTIFIER, as an error refusing a file prints it:
  kms:ARN[+ROLE_ARN][|profile=NAME]        AWS KMS key (the role and profile sops assumes, if any)
  gcp_kms:projects/P/locations/L/keyRings/R/cryptoKeys/K
  azure_kv:https://VAULT.vault.azure.net/keys/NAME[/VERSION]   (no version: any version)
  hc_vault:https://VAULT:8200/v1/ENGINE_PATH/keys/KEY_NAME   Vault transit: address, engine, key
  hckms:REGION:KEY_ID                      HuaweiCloud KMS`

// keySource names one key the way a key service is asked for it. Two key sources are the
// same key only if every field is equal: the address a request goes to, and everything
// that chooses the credentials it is made with (an AWS role or profile).
type keySource struct {
	Type string // age, pgp, kms, gcp_kms, azure_kv, hc_vault, hckms
	// ID is the age recipient, PGP fingerprint, KMS ARN, GCP resource id, Azure vault URL,
	// Vault address or HuaweiCloud key id.
	ID      string
	Role    string // kms: the role ARN sops assumes
	Profile string // kms: the AWS profile sops uses
	Engine  string // hc_vault: the transit engine's path
	Name    string // hc_vault, azure_kv: the key's name
	Version string // azure_kv: the key version; in an allowed entry, "" allows any
}

// remote reports whether asking for the key means a request to another service. age and
// PGP keys are opened in memory from the keyring.
func (s keySource) remote() bool { return s.Type != "age" && s.Type != "pgp" }

// String is the key in the syntax AllowRemote takes (RemoteKeySyntax).
func (s keySource) String() string {
	switch s.Type {
	case "kms":
		id := s.ID
		if s.Role != "" {
			id += "+" + s.Role
		}
		if s.Profile != "" {
			id += "|profile=" + s.Profile
		}
		return "kms:" + id
	case "hc_vault":
		return "hc_vault:" + s.ID + "/v1/" + s.Engine + "/keys/" + s.Name
	case "azure_kv":
		id := "azure_kv:" + s.ID + "/keys/" + s.Name
		if s.Version != "" {
			id += "/" + s.Version
		}
		return id
	}
	return s.Type + ":" + s.ID
}

// allows reports whether s, an allowed entry, covers key.
func (s keySource) allows(key keySource) bool {
	if s.Type == "azure_kv" && s.Version == "" {
		key.Version = ""
	}
	return s == key
}

// keySourceOf is the key a key-service request asks for. It is the one mapping from sops'
// keys to key sources: the check before decryption and the check in keyServer use it both.
func keySourceOf(k *keyservice.Key) keySource {
	switch t := k.GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		return keySource{Type: "age", ID: t.AgeKey.GetRecipient()}
	case *keyservice.Key_PgpKey:
		return keySource{Type: "pgp", ID: t.PgpKey.GetFingerprint()}
	case *keyservice.Key_KmsKey:
		return keySource{Type: "kms", ID: t.KmsKey.GetArn(), Role: t.KmsKey.GetRole(), Profile: t.KmsKey.GetAwsProfile()}
	case *keyservice.Key_GcpKmsKey:
		return keySource{Type: "gcp_kms", ID: t.GcpKmsKey.GetResourceId()}
	case *keyservice.Key_AzureKeyvaultKey:
		return keySource{Type: "azure_kv", ID: t.AzureKeyvaultKey.GetVaultUrl(), Name: t.AzureKeyvaultKey.GetName(), Version: t.AzureKeyvaultKey.GetVersion()}
	case *keyservice.Key_VaultKey:
		return keySource{Type: "hc_vault", ID: t.VaultKey.GetVaultAddress(), Engine: t.VaultKey.GetEnginePath(), Name: t.VaultKey.GetKeyName()}
	case *keyservice.Key_HckmsKey:
		return keySource{Type: "hckms", ID: t.HckmsKey.GetKeyId()}
	}
	// A key type this version does not know: remote, and never allowed.
	return keySource{Type: "unknown"}
}

// metadataField is the field of a key's metadata entry that says where requests go, for
// the line a problem points at.
var metadataField = map[string]string{
	"kms": "arn", "gcp_kms": "resource_id", "azure_kv": "vault_url", "hc_vault": "vault_address", "hckms": "key_id",
}

// parseKeySource reads one allowed remote key in the syntax of RemoteKeySyntax.
func parseKeySource(s string) (keySource, error) {
	typ, id, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" {
		return keySource{}, fmt.Errorf("remote key %q: want TYPE:IDENTIFIER, with TYPE one of kms, gcp_kms, azure_kv, hc_vault, hckms", s)
	}
	bad := func(want string) (keySource, error) {
		return keySource{}, fmt.Errorf("remote key %q: want %s:%s", s, typ, want)
	}
	switch typ {
	case "kms":
		k := keySource{Type: typ}
		rest, profile, hasProfile := strings.Cut(id, "|")
		if hasProfile {
			var ok bool
			if k.Profile, ok = strings.CutPrefix(profile, "profile="); !ok || k.Profile == "" {
				return bad("ARN[+ROLE_ARN][|profile=NAME]")
			}
		}
		k.ID, k.Role, _ = strings.Cut(rest, "+")
		if !strings.HasPrefix(k.ID, "arn:") || (strings.Contains(rest, "+") && !strings.HasPrefix(k.Role, "arn:")) {
			return bad("ARN[+ROLE_ARN][|profile=NAME]")
		}
		return k, nil
	case "gcp_kms":
		if !strings.HasPrefix(id, "projects/") || !strings.Contains(id, "/cryptoKeys/") {
			return bad("projects/P/locations/L/keyRings/R/cryptoKeys/K")
		}
		return keySource{Type: typ, ID: id}, nil
	case "azure_kv":
		vault, key, ok := cutLast(id, "/keys/")
		name, version, _ := strings.Cut(key, "/")
		if !ok || !isURL(vault) || name == "" || strings.Contains(version, "/") {
			return bad("https://VAULT.vault.azure.net/keys/NAME[/VERSION]")
		}
		return keySource{Type: typ, ID: vault, Name: name, Version: version}, nil
	case "hc_vault":
		// The address is what comes before the first /v1/; the key name what follows the
		// last /keys/; the engine path is between them, and may hold slashes.
		addr, rest, ok1 := strings.Cut(id, "/v1/")
		engine, name, ok2 := cutLast(rest, "/keys/")
		if !ok1 || !ok2 || !isURL(addr) || engine == "" || name == "" || strings.Contains(name, "/") {
			return bad("https://VAULT:8200/v1/ENGINE_PATH/keys/KEY_NAME")
		}
		return keySource{Type: typ, ID: addr, Engine: engine, Name: name}, nil
	case "hckms":
		if region, key, ok := strings.Cut(id, ":"); !ok || region == "" || key == "" {
			return bad("REGION:KEY_ID")
		}
		return keySource{Type: typ, ID: id}, nil
	case "age", "pgp":
		return keySource{}, fmt.Errorf("remote key %q: %s keys are not remote; add the private key to the keyring instead", s, typ)
	}
	return keySource{}, fmt.Errorf("remote key %q: unknown type %q; want one of kms, gcp_kms, azure_kv, hc_vault, hckms", s, typ)
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// AllowRemote adds remote key sources (KMS keys, Vault transit keys, …) the keyring may ask
// for a file's data key, each in the syntax of RemoteKeySyntax. The list is empty until
// then, and an empty list means no request to any key service is ever made: a file that
// names a remote key is refused before decryption, at the line of that key, because a
// file's metadata is written by whoever can push to the repository, while the requests are
// made with the daemon's credentials (VAULT_TOKEN, the cloud's ambient identity).
func (k *Keyring) AllowRemote(sources ...string) error {
	parsed := make([]keySource, 0, len(sources))
	for _, s := range sources {
		if strings.TrimSpace(s) == "" {
			continue
		}
		src, err := parseKeySource(s)
		if err != nil {
			return err
		}
		parsed = append(parsed, src)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.remote = append(k.remote, parsed...)
	return nil
}

// RemoteAllowed lists the allowed remote key sources in the syntax AllowRemote takes.
func (k *Keyring) RemoteAllowed() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, len(k.remote))
	for i, s := range k.remote {
		out[i] = s.String()
	}
	return out
}

// allowed reports whether requests for the key s may be made. age and PGP keys make no
// request and are always allowed.
func (k *Keyring) allowed(s keySource) bool {
	if !s.remote() {
		return true
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, a := range k.remote {
		if a.allows(s) {
			return true
		}
	}
	return false
}

// forward sends a data-key request to sops' own key service, which talks to the KMS or
// Vault with the process's credentials. It is a variable so tests can count the requests
// that reach it; keyServer.Decrypt is its only caller.
var forward = func(ctx context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	return keyservice.Server{}.Decrypt(ctx, req)
}

// keyServer answers sops' data-key requests: age and OpenPGP from the Keyring, in memory;
// remote keys by forwarding, only when the Keyring allows them. It is the only key service
// Decrypt gives sops, so it is the single place a request can leave the process.
type keyServer struct {
	keyservice.UnimplementedKeyServiceServer
	ring *Keyring
	ctx  context.Context
	// failures say why remote key services refused, for the error when no key opens the
	// file. Requests are made one at a time (sops asks for one key after another).
	failures []string
}

// Decrypt returns the data key for one master key of a file.
func (s *keyServer) Decrypt(ctx context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
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
	}
	// Checked again here, although Decrypt refuses such a file before asking: should that
	// check ever be missed, a request still cannot leave for a key the daemon did not allow.
	src := keySourceOf(req.GetKey())
	if !s.ring.allowed(src) {
		return nil, fmt.Errorf("%s: %w", src, ErrKeySourceNotAllowed)
	}
	if s.ctx != nil {
		ctx = s.ctx
	}
	resp, err := forward(ctx, req)
	if err != nil {
		// A remote service's answer, made before any value is decrypted: it can hold no
		// value of the file.
		s.failures = append(s.failures, fmt.Sprintf("%s: %v", src, err))
		return nil, err
	}
	return resp, nil
}

// Encrypt is not offered: Circle reads secrets, people write them with the sops CLI.
func (s *keyServer) Encrypt(context.Context, *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	return nil, fmt.Errorf("circle does not encrypt SOPS files; use the sops CLI")
}
