package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/termsafe"
)

func newLicenseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "license",
		Short: "Generate keys, issue, verify and revoke signed license files",
		Long: `Signed license files (licenses/*.lic) and the signed revocation list that withdraws
them (licenses/revoked.list), in the format the license package documents: a canonical
JSON payload, an Ed25519 signature over exactly those bytes and the signing key's id,
in an armor like PEM's. Services verify them offline with the issuers' public keys.

The issuer's private key is meant to live SOPS-encrypted: issue and revoke open it
with the same keys as every SOPS file (--key-file, CIRCLE_KEY_FILES, CIRCLE_AGE_KEY,
--keys-secret).

Exit codes: 0 success (a license valid or in grace), 1 refused (the reason is printed),
2 usage or I/O error.`,
		Example: `  circle license keygen --out keys --keyring licenses/issuers.pub
  sops encrypt --age age1... --in-place keys/license-issuer.key
  circle license issue --key keys/license-issuer.key --key-file age.key --product shop \
      --licensee "Example Corp" --features sso,audit-log --limit seats=25 \
      --expires 2027-12-31 --grace 14d -o licenses/example-corp.lic
  circle license verify licenses/example-corp.lic --keyring licenses/issuers.pub --product shop
  circle license revoke --key keys/license-issuer.key --key-file age.key \
      --list licenses/revoked.list --id lic_... --reason "refunded"`,
	}
	cmd.AddCommand(newLicenseKeygenCmd(), newLicenseIssueCmd(), newLicenseVerifyCmd(),
		newLicenseInspectCmd(), newLicenseRevokeCmd())
	return cmd
}

func newLicenseKeygenCmd() *cobra.Command {
	var dir, name, keyring string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Make an Ed25519 issuer key pair: DIR/NAME.key (private, 0600) and DIR/NAME.pub",
		Long: `Keygen writes an issuer's private key (PEM PKCS#8, mode 0600) and its public key
(PEM, after a comment naming the key id: the first 16 hex digits of SHA-256 over the raw
public key). It never overwrites a file.

Encrypt the private key with SOPS before it goes anywhere; put the public key in the
keyring verifiers read (--keyring appends it there). To rotate, make a new key, add its
public key to the keyring, issue with it, and remove the old public key once no license
it signed is in use.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			privPEM, err := license.MarshalPrivateKey(priv)
			if err != nil {
				return err
			}
			pubPEM, err := license.MarshalPublicKey(pub)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			keyFile, pubFile := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
			for _, f := range []string{keyFile, pubFile} {
				if _, err := os.Lstat(f); err == nil {
					return fmt.Errorf("%s exists; keygen never overwrites a key", f)
				}
			}
			if err := writeNew(keyFile, privPEM, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubFile, pubPEM, 0o644); err != nil {
				return err
			}
			if keyring != "" {
				if err := appendKeyring(keyring, pubPEM); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "key id:      %s\nprivate key: %s (encrypt it: sops encrypt --age <recipient> --in-place %s)\npublic key:  %s\n",
				license.KeyID(pub), keyFile, keyFile, pubFile)
			if keyring != "" {
				fmt.Fprintf(w, "keyring:     %s (public key added)\n", keyring)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "out", "", "folder to write the key files to")
	cmd.Flags().StringVar(&name, "name", "license-issuer", "base name of the key files")
	cmd.Flags().StringVar(&keyring, "keyring", "", "also append the public key to this keyring file (made if missing)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// writeNew writes a file that must not exist yet.
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// appendKeyring adds a public key to a keyring file, after checking that what is there is
// a keyring, so a typo does not append a key to some other file.
func appendKeyring(name string, pubPEM []byte) error {
	old, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(old) > 0 {
		if _, err := license.ParseKeyring(old); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !bytes.HasSuffix(old, []byte("\n")) {
			old = append(old, '\n')
		}
	}
	return writeAtomic(name, append(old, pubPEM...), 0o644)
}

// writeAtomic replaces a file atomically (renameio: a temporary file, synced, renamed), so
// a reader (a watcher, the daemon) sees the old content or the new, never half.
func writeAtomic(name string, data []byte, perm os.FileMode) error {
	return renameio.WriteFile(name, data, perm)
}

// issuerKey is the --key flag of the commands that sign, with the SOPS keys to open it.
type issuerKey struct {
	file string
	keys keyFlags
}

func (k *issuerKey) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.file, "key", "", "the issuer's private key (PEM PKCS#8, from keygen), SOPS-encrypted or not")
	_ = cmd.MarkFlagRequired("key")
	k.keys.register(cmd)
}

// load reads the private key, decrypting it with the SOPS keys when it is encrypted.
func (k *issuerKey) load(ctx context.Context, stderr io.Writer) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(k.file)
	if err != nil {
		return nil, err
	}
	if secrets.IsEncrypted(k.file, data) {
		ring, err := k.keys.keyring(ctx)
		if err != nil {
			return nil, err
		}
		if data, err = ring.Decrypt(ctx, k.file, data); err != nil {
			return nil, err
		}
	} else {
		fmt.Fprintf(stderr, "warning: %s is not SOPS-encrypted; keep issuer keys encrypted (sops encrypt --in-place)\n", k.file)
	}
	key, err := license.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.file, err)
	}
	return key, nil
}

type licenseIssueOptions struct {
	key                           issuerKey
	id, product, licensee         string
	features, limits, meta        []string
	expires, notBefore, issuedAt  string
	grace                         string
	bindingCluster, bindingDomain string
	out                           string
}

func newLicenseIssueCmd() *cobra.Command {
	o := &licenseIssueOptions{}
	cmd := &cobra.Command{
		Use:   "issue --key KEY --product P --licensee L --expires DATE [-o FILE]",
		Short: "Sign a license file",
		Long: `Issue signs a license with the issuer's private key and writes the license file
(to stdout without -o). Dates are YYYY-MM-DD (UTC; --expires means the end of that day,
--not-before its start) or RFC 3339 times; --expires also takes a duration from the
issue time (365d). Durations take d (days) and w (weeks) besides Go's h, m and s.

The license is checked against the CUE schema before it is signed; issuing the same
license with the same key and --issued-at gives the same bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := o.license(time.Now())
			if err != nil {
				return err
			}
			key, err := o.key.load(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			data, err := license.Issue(l, key)
			if err != nil {
				return err
			}
			if o.out == "" || o.out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if err := writeAtomic(o.out, data, 0o644); err != nil {
				return err
			}
			issued, err := license.Parse(data)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s to %s for %s until %s, signed by key %s: %s\n",
				issued.ID, issued.Licensee, issued.Product, issued.ExpiresAt.Format(time.RFC3339), issued.KeyID(), o.out)
			return nil
		},
	}
	f := cmd.Flags()
	o.key.register(cmd)
	f.StringVar(&o.id, "id", "", "license id (default: a random lic_… id)")
	f.StringVar(&o.product, "product", "", "the product licensed")
	f.StringVar(&o.licensee, "licensee", "", "who the license is issued to")
	f.StringSliceVar(&o.features, "features", nil, "features granted, comma-separated")
	f.StringArrayVar(&o.limits, "limit", nil, "a limit, NAME=INTEGER (repeatable): seats=10")
	f.StringVar(&o.expires, "expires", "", "when it expires: a date (valid through that day, UTC), an RFC 3339 time, or a duration (365d)")
	f.StringVar(&o.notBefore, "not-before", "", "when it starts to be valid (default: the issue time)")
	f.StringVar(&o.issuedAt, "issued-at", "", "the issue time (default: now)")
	f.StringVar(&o.grace, "grace", "", "grace period after expiry (14d)")
	f.StringVar(&o.bindingCluster, "binding-cluster", "", "bind the license to a cluster id")
	f.StringVar(&o.bindingDomain, "binding-domain", "", "bind the license to a domain (and its subdomains)")
	f.StringArrayVar(&o.meta, "meta", nil, "metadata, KEY=VALUE (repeatable)")
	f.StringVarP(&o.out, "out", "o", "", "file to write (default: stdout)")
	for _, name := range []string{"product", "licensee", "expires"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// license builds the license the flags describe.
func (o *licenseIssueOptions) license(now time.Time) (*license.License, error) {
	l := &license.License{
		ID: o.id, Product: o.product, Licensee: o.licensee, Features: o.features,
		Limits:  map[string]int64{},
		Binding: license.Binding{Cluster: o.bindingCluster, Domain: o.bindingDomain},
	}
	var err error
	l.IssuedAt = now
	if o.issuedAt != "" {
		if l.IssuedAt, err = parseWhen(o.issuedAt, false, now); err != nil {
			return nil, fmt.Errorf("--issued-at: %w", err)
		}
	}
	if l.ExpiresAt, err = parseWhen(o.expires, true, l.IssuedAt); err != nil {
		return nil, fmt.Errorf("--expires: %w", err)
	}
	if o.notBefore != "" {
		if l.NotBefore, err = parseWhen(o.notBefore, false, l.IssuedAt); err != nil {
			return nil, fmt.Errorf("--not-before: %w", err)
		}
	}
	if o.grace != "" {
		if l.Grace, err = parseDuration(o.grace); err != nil {
			return nil, fmt.Errorf("--grace: %w", err)
		}
	}
	for _, kv := range o.limits {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("--limit %q: want NAME=INTEGER", kv)
		}
		l.Limits[k] = n
	}
	for _, kv := range o.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--meta %q: want KEY=VALUE", kv)
		}
		if l.Metadata == nil {
			l.Metadata = map[string]string{}
		}
		l.Metadata[k] = v
	}
	return l, nil
}

// parseWhen reads a date (the start of that day, or its last second when end is set), an
// RFC 3339 time, or a duration after base.
func parseWhen(s string, end bool, base time.Time) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			return t.Add(24*time.Hour - time.Second), nil
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err == nil {
		return base.Add(d), nil
	}
	if errors.Is(err, errTooLong) {
		return time.Time{}, err
	}
	return time.Time{}, fmt.Errorf("%q: want YYYY-MM-DD, an RFC 3339 time or a duration (365d)", s)
}

// errTooLong is a count of days or weeks that no time.Duration holds.
var errTooLong = errors.New("too long")

// parseDuration reads Go durations plus whole days (14d) and weeks (2w), the units
// licenses are sold in. A count of days or weeks is bounded by what a time.Duration holds
// (about 292 years): beyond it the product would wrap around, and 20000w would be a negative
// duration that moves --at two centuries back.
func parseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			name := map[string]string{"d": "days", "w": "weeks"}[suffix]
			v, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q: want a whole number of %s", s, name)
			}
			if most := uint64(math.MaxInt64 / unit); v > most {
				return 0, fmt.Errorf("%q: %w: at most %d %s", s, errTooLong, most, name)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration like 14d, 2w or 36h", s)
	}
	return d, nil
}

// licenseView is a license as verify and inspect print it.
type licenseView struct {
	ID        string            `json:"id"`
	Licensee  string            `json:"licensee"`
	Product   string            `json:"product"`
	Features  []string          `json:"features"`
	Limits    map[string]int64  `json:"limits"`
	IssuedAt  time.Time         `json:"issuedAt"`
	NotBefore time.Time         `json:"notBefore"`
	ExpiresAt time.Time         `json:"expiresAt"`
	Grace     string            `json:"grace,omitempty"`
	Cluster   string            `json:"bindingCluster,omitempty"`
	Domain    string            `json:"bindingDomain,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	KeyID     string            `json:"keyId"`
}

func viewLicense(l *license.License) *licenseView {
	v := &licenseView{ID: l.ID, Licensee: l.Licensee, Product: l.Product, Features: l.Features, Limits: l.Limits,
		IssuedAt: l.IssuedAt, NotBefore: l.NotBefore, ExpiresAt: l.ExpiresAt,
		Cluster: l.Binding.Cluster, Domain: l.Binding.Domain, Metadata: l.Metadata, KeyID: l.KeyID()}
	if l.Grace > 0 {
		v.Grace = formatDuration(l.Grace)
	}
	return v
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// text writes the license for people, a field a row. Every value is the file's, escaped
// whole (termsafe.Line): a line break in a licensee cannot forge an "expires:" row.
func (v *licenseView) text(b *strings.Builder, now time.Time) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "  %-11s %s\n", k+":", termsafe.Line(v))
		}
	}
	row("id", v.ID)
	row("licensee", v.Licensee)
	row("product", v.Product)
	row("features", strings.Join(v.Features, ", "))
	var limits []string
	for _, k := range slices.Sorted(maps.Keys(v.Limits)) {
		limits = append(limits, fmt.Sprintf("%s=%d", k, v.Limits[k]))
	}
	row("limits", strings.Join(limits, ", "))
	row("issued", v.IssuedAt.Format(time.RFC3339))
	row("valid from", v.NotBefore.Format(time.RFC3339))
	expires := v.ExpiresAt.Format(time.RFC3339)
	if days := int(v.ExpiresAt.Sub(now).Hours() / 24); v.ExpiresAt.After(now) {
		expires += fmt.Sprintf(" (in %d days)", days)
	}
	row("expires", expires)
	row("grace", v.Grace)
	row("cluster", v.Cluster)
	row("domain", v.Domain)
	var meta []string
	for _, k := range slices.Sorted(maps.Keys(v.Metadata)) {
		meta = append(meta, k+"="+v.Metadata[k])
	}
	row("metadata", strings.Join(meta, ", "))
	row("key", v.KeyID)
}

// licenseVerifyResult is what `circle license verify -o json` prints.
type licenseVerifyResult struct {
	File    string       `json:"file"`
	Valid   bool         `json:"valid"`
	State   string       `json:"state,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Error   string       `json:"error,omitempty"`
	Skipped []string     `json:"notChecked,omitempty"`
	License *licenseView `json:"license,omitempty"`
}

func newLicenseVerifyCmd() *cobra.Command {
	var (
		keyring, revocations, serialFile string
		product, cluster, domain, at     string
		skew                             time.Duration
		out                              outputFlag
	)
	cmd := &cobra.Command{
		Use:   "verify FILE --keyring KEYS",
		Short: "Verify a license file: signature, schema, product, revocation, time window, binding",
		Long: `Verify checks a license file as a service would, and also runs the CUE schema on its
payload. A license in its grace period is accepted (state "in grace").

Without --product any product is accepted; without --cluster and --domain the binding
is not checked. What was not checked is listed.

Exit codes: 0 valid or in grace; 1 refused, with one reason: TooLarge, Malformed,
UnknownKey, BadSignature, WrongProduct, Revoked, NotYetValid, Expired, BindingMismatch
(or Replayed, for a revocation list older than --serial-file remembers); 2 usage or I/O.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			if at != "" {
				var err error
				if now, err = parseWhen(at, false, now); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			keys, err := license.ReadKeyring(keyring)
			if err != nil {
				return err
			}
			opts := license.VerifyOptions{Product: product, AnyProduct: product == "", ClockSkew: skew,
				Cluster: cluster, Domain: domain, IgnoreBinding: cluster == "" && domain == "", Schema: true}
			res := licenseVerifyResult{File: args[0]}
			if opts.AnyProduct {
				res.Skipped = append(res.Skipped, "product (give --product)")
			}
			if opts.IgnoreBinding {
				res.Skipped = append(res.Skipped, "binding (give --cluster or --domain)")
			}
			if revocations == "" {
				res.Skipped = append(res.Skipped, "revocation (give --revocations)")
			}
			if serialFile != "" {
				opts.Serials = license.SerialFile(serialFile)
			}
			v, err := license.NewVerifier(keys, opts)
			if err != nil {
				return err
			}
			if revocations != "" {
				data, err := license.ReadFile(revocations)
				if err == nil {
					_, err = v.LoadRevocations(data)
				}
				if err != nil {
					return refusal(cmd, &out, res, fmt.Errorf("%s: %w", revocations, err))
				}
			}
			lic, err := v.VerifyFile(args[0], now)
			if err != nil {
				return refusal(cmd, &out, res, err)
			}
			res.Valid, res.State, res.License = true, lic.State().String(), viewLicense(lic)
			return out.print(cmd.OutOrStdout(), res, func() string {
				var b strings.Builder
				fmt.Fprintf(&b, "%s: %s\n", res.File, res.State)
				res.License.text(&b, now)
				if len(res.Skipped) > 0 {
					fmt.Fprintf(&b, "not checked: %s\n", strings.Join(res.Skipped, ", "))
				}
				return b.String()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyring, "keyring", "", "the issuers' public keys (a file of PEM public keys)")
	f.StringVar(&revocations, "revocations", "", "the signed revocation list to check against")
	f.StringVar(&serialFile, "serial-file", "", "remember the highest revocation-list serial here; refuse older lists")
	f.StringVar(&product, "product", "", "the product the license must be for")
	f.StringVar(&cluster, "cluster", "", "the cluster id to check a cluster binding against")
	f.StringVar(&domain, "domain", "", "the domain to check a domain binding against")
	durationVar(f, &skew, "clock-skew", license.DefaultClockSkew, 0, 24*time.Hour, "how far clocks may disagree (at most 24h)")
	f.StringVar(&at, "at", "", "verify as of this time instead of now (YYYY-MM-DD or RFC 3339)")
	_ = cmd.MarkFlagRequired("keyring")
	out.register(cmd)
	return cmd
}

// refusal prints a refused verification (for -o json|yaml) and returns it as exit 1,
// or exit 2 when it is not a refusal but an I/O error.
func refusal(cmd *cobra.Command, out *outputFlag, res licenseVerifyResult, err error) error {
	reason := license.ReasonOf(err)
	if reason == "" {
		return err
	}
	res.Reason, res.Error = string(reason), err.Error()
	if out.format != "text" && out.format != "" {
		if perr := out.print(cmd.OutOrStdout(), res, nil); perr != nil {
			return perr
		}
	}
	return &exitError{code: exitFailed, err: err}
}

// licenseInspectResult is what `circle license inspect -o json` prints.
type licenseInspectResult struct {
	File             string          `json:"file"`
	Kind             string          `json:"kind"`
	SignatureChecked bool            `json:"signatureChecked"`
	License          *licenseView    `json:"license,omitempty"`
	Revocations      *revocationView `json:"revocations,omitempty"`
}

type revocationView struct {
	Serial   uint64      `json:"serial"`
	IssuedAt time.Time   `json:"issuedAt"`
	KeyID    string      `json:"keyId"`
	Entries  []entryView `json:"entries"`
}

type entryView struct {
	ID        string    `json:"id"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revokedAt"`
}

func newLicenseInspectCmd() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what a license file or revocation list says, without checking its signature",
		Long: `Inspect prints a license file's or revocation list's content. It needs no keys and
checks no signature, so what it shows is only what the file claims: use verify to
know whether it holds. Exit 1 when the file is malformed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := license.ReadFile(args[0])
			if license.ReasonOf(err) != "" {
				return &exitError{code: exitFailed, err: err}
			}
			if err != nil {
				return err
			}
			res := licenseInspectResult{File: args[0]}
			var b strings.Builder
			if bytes.Contains(data, []byte("-----BEGIN "+license.RevocationListLabel+"-----")) {
				r, err := license.ParseRevocations(data)
				if err != nil {
					return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", args[0], err)}
				}
				res.Kind = "revocation list"
				res.Revocations = &revocationView{Serial: r.Serial, IssuedAt: r.IssuedAt, KeyID: r.KeyID(), Entries: []entryView{}}
				for _, e := range r.Entries {
					res.Revocations.Entries = append(res.Revocations.Entries, entryView(e))
				}
				fmt.Fprintf(&b, "%s: revocation list %d, issued %s, key %s (signature not checked)\n",
					args[0], r.Serial, r.IssuedAt.Format(time.RFC3339), r.KeyID())
				for _, e := range r.Entries {
					fmt.Fprintf(&b, "  %s  revoked %s: %s\n", termsafe.Line(e.ID), e.RevokedAt.Format(time.RFC3339), termsafe.Line(e.Reason))
				}
			} else {
				l, err := license.Parse(data)
				if err != nil {
					return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", args[0], err)}
				}
				res.Kind, res.License = "license", viewLicense(l)
				fmt.Fprintf(&b, "%s: license (signature not checked)\n", args[0])
				res.License.text(&b, time.Now())
			}
			return out.print(cmd.OutOrStdout(), res, b.String)
		},
	}
	out.register(cmd)
	return cmd
}

func newLicenseRevokeCmd() *cobra.Command {
	var (
		key                        issuerKey
		list, id, reason, at, ring string
	)
	cmd := &cobra.Command{
		Use:   "revoke --key KEY --list FILE --id ID --reason R",
		Short: "Add a license to the signed revocation list, raising its serial",
		Long: `Revoke adds an entry (license id, reason, time) to the revocation list, raises its
serial by one and signs it again; the list is made, at serial 1, when FILE does not
exist. Verifiers that have seen a list refuse any older one, so a list is only ever
replaced by a newer one.

The current list must verify first: with the public key of --key, or with --keyring
when another (older) issuer key signed it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			when := now
			if at != "" {
				var err error
				if when, err = parseWhen(at, false, now); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			priv, err := key.load(cmd.Context(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			keys := license.NewKeyring(priv.Public().(ed25519.PublicKey))
			if ring != "" {
				if keys, err = license.ReadKeyring(ring); err != nil {
					return err
				}
			}
			current, err := license.ReadFile(list)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			next, err := license.NextRevocations(current, keys, license.Revocation{ID: id, Reason: reason, RevokedAt: when}, now)
			if err != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("%s: %w", list, err)}
			}
			signed, err := license.IssueRevocations(next, priv)
			if err != nil {
				return err
			}
			if err := writeAtomic(list, signed, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s: %s (serial %d, %d revoked)\n", id, list, next.Serial, len(next.Entries))
			return nil
		},
	}
	key.register(cmd)
	f := cmd.Flags()
	f.StringVar(&list, "list", "", "the revocation list file (made if missing)")
	f.StringVar(&id, "id", "", "the id of the license to revoke")
	f.StringVar(&reason, "reason", "", "why, for people")
	f.StringVar(&at, "at", "", "when it was revoked (default now)")
	f.StringVar(&ring, "keyring", "", "public keys to verify the current list with (default: the public key of --key)")
	for _, name := range []string{"list", "id", "reason"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
