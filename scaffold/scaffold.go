// Package scaffold writes a new configuration repository that works at once: circle.yaml
// with its environments, a CUE schema, configuration layers (with the kubernetes key for a
// claim and an Ingress), one SOPS-encrypted secrets file per environment, a kustomize base
// and overlays for one service, a package and a license, and a CI workflow. `circle
// validate` passes on it and `circle serve --source` publishes it, as made.
//
// Files never overwrite: Write checks every path first and writes nothing when one
// exists, so a half-made repository is never left behind. The private keys it makes (the
// age key the secrets open with, the license issuer's key) go outside the repository.
package scaffold

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"filippo.io/age"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/secrets"
)

//go:embed template
var templates embed.FS

// Options say what to make.
type Options struct {
	// Envs are the environments, in promotion order; empty: dev, staging, prod.
	Envs []string
	// Service names the one service the repository deploys; empty: "web".
	Service string
	// AgeKeyFile and IssuerKeyFile are where the private keys go (outside the
	// repository); the repository's files name them in comments.
	AgeKeyFile, IssuerKeyFile string
	// Now is the license's issue time; zero: time.Now.
	Now time.Time
}

// DefaultEnvs are the environments made when none are asked for.
var DefaultEnvs = []string{"dev", "staging", "prod"}

// A Repository is what Make produced: the repository's files and the two private keys.
type Repository struct {
	// Files are the repository's files by slash path, in a fixed order by Paths.
	Files map[string][]byte
	// AgeKey and IssuerKey are the private keys, for Options.AgeKeyFile and
	// IssuerKeyFile.
	AgeKey, IssuerKey []byte
}

// Paths lists the repository's files in order.
func (r *Repository) Paths() []string {
	return slices.Sorted(maps.Keys(r.Files))
}

var name = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ErrExists is why Write refused: a file it would write is there already.
var ErrExists = errors.New("exists; circle init never overwrites a file")

// Make builds the repository in memory, with fresh keys.
func Make(o Options) (*Repository, error) {
	if len(o.Envs) == 0 {
		o.Envs = DefaultEnvs
	}
	if o.Service == "" {
		o.Service = "web"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if !name.MatchString(o.Service) {
		return nil, fmt.Errorf("--service %q: want a name: lower-case letters, digits and -, starting with a letter", o.Service)
	}
	for i, env := range o.Envs {
		if !name.MatchString(env) {
			return nil, fmt.Errorf("--env %q: want a name: lower-case letters, digits and -, starting with a letter", env)
		}
		if slices.Contains(o.Envs[:i], env) {
			return nil, fmt.Errorf("--env %q: named twice", env)
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	r := &Repository{Files: map[string][]byte{}, AgeKey: []byte("# circle init " + o.Now.UTC().Format(time.RFC3339) +
		"\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")}
	if r.IssuerKey, err = license.MarshalPrivateKey(priv); err != nil {
		return nil, err
	}
	data := map[string]any{"Envs": o.Envs, "Service": o.Service, "AgeRecipient": id.Recipient().String(),
		"AgeKeyFile": o.AgeKeyFile, "IssuerKeyFile": o.IssuerKeyFile}
	if err := r.templates(data); err != nil {
		return nil, err
	}
	last := o.Envs[len(o.Envs)-1]
	for i, env := range o.Envs {
		r.Files["config/"+env+"/app.yaml"] = fmt.Appendf(nil, "# %s's values over config/base.\napp:\n  replicas: %d\n%s",
			env, min(i+1, 3), map[bool]string{true: "  logLevel: debug\n"}[i == 0])
		// Hosts must differ between environments (circle validate refuses one served
		// twice); the last one serves the base's host, with a larger claim.
		kube := fmt.Sprintf("kubernetes:\n  ingresses:\n    %s:\n      host: %s.%s.example.com\n", o.Service, o.Service, env)
		if env == last {
			kube = fmt.Sprintf("kubernetes:\n  volumes:\n    %s-data:\n      size: 10Gi\n", o.Service)
		}
		r.Files["config/"+env+"/kubernetes.yaml"] = []byte("# " + env + "'s part of the kubernetes key.\n" + kube)
		r.Files["deploy/"+env+"/kustomization.yaml"] = fmt.Appendf(nil,
			"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s-%s\nresources:\n  - ../base\n", o.Service, env)
		password := make([]byte, 16)
		_, _ = rand.Read(password) // crypto/rand.Read never fails (Go ≥ 1.24)
		enc, err := secrets.EncryptYAML(fmt.Appendf(nil, "db:\n  password: %s\n", hex.EncodeToString(password)), id.Recipient().String())
		if err != nil {
			return nil, fmt.Errorf("secrets/%s.sops.yaml: %w", env, err)
		}
		r.Files["secrets/"+env+".sops.yaml"] = enc
	}
	keyring, err := license.MarshalPublicKey(pub)
	if err != nil {
		return nil, err
	}
	r.Files["licenses/issuers.pub"] = keyring
	lic, err := license.Issue(&license.License{ID: license.NewID(), Licensee: o.Service + " team", Product: o.Service,
		Features: []string{"base"}, IssuedAt: o.Now.UTC().Truncate(time.Second), NotBefore: o.Now.UTC().Truncate(time.Second),
		ExpiresAt: o.Now.UTC().Truncate(time.Second).AddDate(1, 0, 0)}, priv)
	if err != nil {
		return nil, err
	}
	r.Files["licenses/"+o.Service+".lic"] = lic
	return r, nil
}

// templates renders template/: "x.tmpl" becomes "x"; sops.yaml becomes .sops.yaml, dotgithub
// .github/workflows, and packages/manifest.yaml the service's package manifest.
func (r *Repository) templates(data map[string]any) error {
	funcs := template.FuncMap{"join": strings.Join}
	return fs.WalkDir(templates, "template", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return err
		}
		out := strings.TrimSuffix(strings.TrimPrefix(p, "template/"), ".tmpl")
		switch {
		case out == "sops.yaml":
			out = ".sops.yaml"
		case strings.HasPrefix(out, "dotgithub/"):
			out = ".github/workflows/" + path.Base(out)
		case out == "packages/manifest.yaml":
			out = "packages/" + data["Service"].(string) + "/1.0.0.yaml"
		}
		r.Files[out] = b.Bytes()
		return nil
	})
}

// Write writes the repository under dir and the keys to their files, or nothing at all:
// every path is checked first, and the first one that exists is the error (ErrExists,
// naming it). dir may exist, empty or not, as long as none of the files are in it.
func (r *Repository) Write(dir string, o Options) error {
	targets := map[string][]byte{}
	for p, b := range r.Files {
		targets[filepath.Join(dir, filepath.FromSlash(p))] = b
	}
	targets[o.AgeKeyFile], targets[o.IssuerKeyFile] = r.AgeKey, r.IssuerKey
	for _, f := range slices.Sorted(maps.Keys(targets)) {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%s: %w", f, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	var written []string
	for _, f := range slices.Sorted(maps.Keys(targets)) {
		mode := os.FileMode(0o644)
		if f == o.AgeKeyFile || f == o.IssuerKeyFile {
			mode = 0o600
		}
		err := os.MkdirAll(filepath.Dir(f), 0o755)
		if err == nil {
			err = writeNew(f, targets[f], mode)
		}
		if err != nil {
			// Take back what this run wrote: a repository is made whole or not at all.
			for _, w := range written {
				_ = os.Remove(w)
			}
			return err
		}
		written = append(written, f)
	}
	return nil
}

// writeNew creates f, failing if it exists (O_EXCL): a file made between the check and
// the write is not overwritten either.
func writeNew(f string, b []byte, mode os.FileMode) error {
	w, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", f, ErrExists)
		}
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
