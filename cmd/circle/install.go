package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa/utils"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/deploy"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/render"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/storage/envelope"
)

// What deploy/ names, which install fills in or moves. The manifests are the reference:
// TestInstall fails when one of these leaves them.
const (
	// shippedNamespace is the namespace deploy/base puts Circle in; --namespace moves
	// every object of it, and the references to it, elsewhere.
	shippedNamespace = "circle-system"
	// keysSecretName holds the SOPS keys (*.agekey, *.asc, read by the daemon through
	// keys.sops_secret) and the webhook's HMAC secret (webhookSecretKey, an env variable of
	// the Deployment).
	keysSecretName   = "circle-keys"
	webhookSecretKey = "webhook-secret"
	// keyringSecretName holds the storage keyring, mounted read-only where the config's
	// keys.storage_keyring points (/etc/circle-keyring/keyring.json).
	keyringSecretName = "circle-storage-keyring"
	keyringSecretKey  = "keyring.json"
	// envConfigMapName holds the CIRCLE_* variables that override the config file: the one
	// place the manifests keep what differs per installation.
	envConfigMapName = "circle-env"
	// applyRoleName is the ClusterRole an overlay binds in each namespace Circle deploys into.
	applyRoleName = "circle-apply"
)

// installOverlays are the folders of deploy/ that install can render. base is the default:
// the dev, staging and prod overlays bind circle-apply in the example's shop-* namespaces,
// which a new cluster does not have (the apply would fail on them), while base with
// --target-namespace binds it where the user says.
var installOverlays = []string{"base", "dev", "staging", "prod"}

// installEnv is the name install applies under: the inventory is
// circle-inventory-install-<namespace> in the namespace, and each object carries the owner
// label circle.circlecore.io/name=install-<namespace>. The namespace is in it so that two
// installations in two namespaces are two owners: the cluster-scoped ClusterRole they share
// goes to the last one applied, and the other's uninstall leaves it. The prefix keeps it
// apart from the daemon's environments, whose names are the same kind of label.
func installEnv(ns string) string { return "install-" + ns }

// installFlags are what install reads; uninstall reads the cluster and namespace ones.
type installFlags struct {
	overlay         string
	namespace       string
	sourceURL       string
	branch          string
	publishURL      string
	webhookHost     string
	webhookProvider string
	targets         []string
	// image replaces the circle container's image, which the embedded manifests pin.
	image string

	keyFiles       []string
	webhookSecret  string
	storageKeyring string

	kubeconfig string
	kctx       string
	export     bool
	dryRun     bool
	wait       time.Duration
	out        outputFlag
}

func (f *installFlags) registerCluster(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", shippedNamespace, "the namespace Circle runs in (its objects and the inventory)")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	cmd.Flags().StringVar(&f.kctx, "context", "", "kubeconfig context (default: the current one)")
	f.out.register(cmd)
}

// publishSchemes is what daemon.cue accepts for publish.
var publishSchemes = regexp.MustCompile(`^(file|s3|azblob|gs|mem)://`)

// check refuses bad flag values before anything is read or applied, each error naming its
// flag (exit 2).
func (f *installFlags) check() error {
	if err := checkNamespace(f.namespace); err != nil {
		return err
	}
	if strings.TrimSpace(f.sourceURL) == "" {
		return errors.New("--source-url: the Git repository Circle watches is required")
	}
	if f.publishURL != "" && !publishSchemes.MatchString(f.publishURL) {
		return fmt.Errorf("--publish-url %q: want file://, s3://, azblob://, gs:// or mem://", f.publishURL)
	}
	if f.webhookHost != "" {
		if errs := validation.IsDNS1123Subdomain(strings.TrimPrefix(f.webhookHost, "*.")); len(errs) > 0 {
			return fmt.Errorf("--webhook-host %q: %s", f.webhookHost, strings.Join(errs, "; "))
		}
	}
	for _, ns := range f.targets {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--target-namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	if f.export {
		return nil // no key material is read for an export
	}
	if len(f.keyFiles) == 0 {
		return errors.New("--key-file: at least one SOPS key file (age identities or an OpenPGP .asc) is required; --export needs none")
	}
	if f.storageKeyring == "" {
		return errors.New("--storage-keyring: the storage keyring file is required (make one once with `circle storage keyring init keyring.json`); --export needs none")
	}
	return nil
}

func checkNamespace(ns string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf("--namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(installEnv(ns)); len(errs) > 0 {
		return fmt.Errorf("--namespace %q: too long for the owner label %q (%s)", ns, installEnv(ns), strings.Join(errs, "; "))
	}
	return nil
}

func newInstallCmd() *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "install --source-url URL --key-file KEY --storage-keyring FILE",
		Short: "Install Circle's own deployment into a cluster, with its keys (server-side apply)",
		Long: `Install renders Circle's own deployment, the kustomize tree of deploy/ built into this
binary (--overlay, default base), sets what differs per installation, and applies it with
the server-side apply 'circle apply' uses, under an inventory (circle-inventory-install-NS
in --namespace) that 'circle uninstall' removes again. What it sets:

  --source-url, --branch, --publish-url, --webhook-provider
      the CIRCLE_* variables of the circle-env ConfigMap, which override the daemon's
      config file (circle-config)
  --webhook-host        the Ingress host (it routes only the webhook)
  --namespace           where everything goes (default circle-system)
  --target-namespace    a RoleBinding of the circle-apply ClusterRole in each namespace
                        Circle may deploy into (repeatable; the namespaces must exist)

and two Secrets from local files, which the manifests do not ship:

  circle-keys             each --key-file as NAME.agekey (or NAME.asc for OpenPGP), and
                          webhook-secret: --webhook-secret-file, else the one the Secret
                          holds already, else 32 random bytes (hex)
  circle-storage-keyring  keyring.json: --storage-keyring, made once with
                          'circle storage keyring init' (keep a copy: every published build
                          needs it)

A second run with the same flags changes nothing. Secret values are never printed.
--export prints the manifests instead (no cluster, no key files needed), without the two
Secrets, and with the kubectl commands that make them; --dry-run asks the cluster, in a
server-side dry run, whether it would accept every object, and changes nothing.`,
		Example: `  # once: the keyring that encrypts published builds
  circle storage keyring init keyring.json

  circle install --source-url https://git.example.com/org/config.git \
    --key-file age.agekey --storage-keyring keyring.json \
    --webhook-host circle.example.com --target-namespace shop-prod --context prod

  # what it would apply, for review or for kubectl/Flux
  circle install --source-url https://git.example.com/org/config.git --export > circle.yaml
  circle install --source-url https://git.example.com/org/config.git \
    --key-file age.agekey --storage-keyring keyring.json --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			objects, err := f.render()
			if err != nil {
				return err
			}
			if f.export {
				return writeExport(cmd.OutOrStdout(), &f, objects)
			}
			return f.install(cmd, objects)
		},
	}
	enumVarP(cmd.Flags(), &f.overlay, "overlay", "", "base", "overlay", installOverlays,
		"the folder of deploy/ to render: base, dev, staging or prod (the overlays bind circle-apply in the example's shop-* namespaces)")
	cmd.Flags().StringVar(&f.sourceURL, "source-url", "", "the Git repository Circle watches (CIRCLE_SOURCE__URL; required)")
	cmd.Flags().StringVar(&f.branch, "branch", "", "its branch (CIRCLE_SOURCE__BRANCH; default: the config's, main)")
	cmd.Flags().StringVar(&f.publishURL, "publish-url", "", "where builds are published: file://, s3://, azblob://, gs:// (CIRCLE_PUBLISH; default: the config's, file:///var/lib/circle/storage on the state volume)")
	enumVarP(cmd.Flags(), &f.webhookProvider, "webhook-provider", "", "", "webhook provider", []string{"", "github", "gitlab", "gitea", "bitbucket", "generic"},
		"push webhooks' signature: github, gitlab, gitea, bitbucket or generic (CIRCLE_WEBHOOK__PROVIDER; default: the config's, github)")
	cmd.Flags().StringVar(&f.webhookHost, "webhook-host", "", "the Ingress host that routes push webhooks (default: the overlay's)")
	cmd.Flags().StringVar(&f.image, "image", "", "the daemon's container image (default: the one deploy/ pins)")
	cmd.Flags().StringArrayVar(&f.targets, "target-namespace", nil, "a namespace Circle may deploy into: binds the circle-apply ClusterRole there; repeatable")
	cmd.Flags().StringArrayVar(&f.keyFiles, "key-file", nil, "a SOPS key file (age identities, or an OpenPGP secret key .asc) for circle-keys; repeatable, at least one (but with --export)")
	cmd.Flags().StringVar(&f.webhookSecret, "webhook-secret-file", "", "a file holding the webhook's HMAC secret (default: the installed one, else a new random one)")
	cmd.Flags().StringVar(&f.storageKeyring, "storage-keyring", "", "the storage keyring file (circle storage keyring init) for circle-storage-keyring; required (but with --export)")
	cmd.Flags().BoolVar(&f.export, "export", false, "print the manifests, without the key Secrets, instead of applying them")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "server-side dry run: report whether the cluster accepts each object; change nothing")
	cmd.MarkFlagsMutuallyExclusive("export", "dry-run")
	durationVar(cmd.Flags(), &f.wait, "wait", 0, 0, 24*time.Hour, "wait this long for the applied objects to become healthy (at most 24h)")
	f.registerCluster(cmd)
	return cmd
}

// render builds the overlay from the embedded tree with Circle's confined renderer (no
// URLs, no plugins, as every render in Circle), then sets the flags' values on its objects.
// Those are set here rather than by a kustomization made in memory because --namespace must
// move only what lives in circle-system (and the ServiceAccount subjects naming it): a
// kustomize namespace would also move an overlay's RoleBindings out of the namespaces they
// grant. The key Secrets are not filled in here.
func (f *installFlags) render() ([]*unstructured.Unstructured, error) {
	y, err := render.Render(render.Input{FS: deploy.FS(), Manifests: ".", Env: f.overlay})
	if err != nil {
		return nil, fmt.Errorf("render deploy/%s: %w", f.overlay, err)
	}
	objects, err := utils.ReadObjects(bytes.NewReader(y))
	if err != nil {
		return nil, fmt.Errorf("render deploy/%s: %w", f.overlay, err)
	}
	env := map[string]string{"CIRCLE_SOURCE__URL": f.sourceURL}
	for name, v := range map[string]string{"CIRCLE_SOURCE__BRANCH": f.branch, "CIRCLE_PUBLISH": f.publishURL, "CIRCLE_WEBHOOK__PROVIDER": f.webhookProvider} {
		if v != "" {
			env[name] = v
		}
	}
	if f.namespace != shippedNamespace {
		// The config file names the namespace in three values; the variables override them.
		env["CIRCLE_KEYS__SOPS_SECRET"] = f.namespace + "/" + keysSecretName
		env["CIRCLE_LEADER_ELECTION__NAMESPACE"] = f.namespace
		env["CIRCLE_APPLY__INVENTORY_NAMESPACE"] = f.namespace
	}
	found := map[string]bool{}
	var labels map[string]string // the common labels, for the objects install adds
	for _, o := range objects {
		if o.GetNamespace() == shippedNamespace {
			o.SetNamespace(f.namespace)
		}
		switch o.GroupVersionKind().GroupKind().String() {
		case "Namespace":
			if o.GetName() == shippedNamespace {
				o.SetName(f.namespace)
				found["Namespace "+shippedNamespace] = true
			}
		case "RoleBinding.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io":
			if err := moveSubjects(o, f.namespace); err != nil {
				return nil, err
			}
		case "ConfigMap":
			if o.GetName() != envConfigMapName {
				continue
			}
			found["ConfigMap "+envConfigMapName] = true
			for k, v := range env {
				if err := unstructured.SetNestedField(o.Object, v, "data", k); err != nil {
					return nil, fmt.Errorf("render deploy/%s: ConfigMap %s: %w", f.overlay, envConfigMapName, err)
				}
			}
		case "Deployment.apps":
			if f.image != "" && o.GetName() == "circle" {
				if err := setImage(o, "circle", f.image); err != nil {
					return nil, err
				}
			}
		case "Ingress.networking.k8s.io":
			if f.webhookHost != "" {
				if err := setIngressHost(o, f.webhookHost); err != nil {
					return nil, err
				}
			}
		case "Secret":
			if o.GetName() == keysSecretName {
				found["Secret "+keysSecretName] = true
				labels = o.GetLabels()
			}
		}
	}
	// What install fills in must be there: a change to deploy/ that renames one would
	// otherwise install a daemon without its keys or settings.
	for _, want := range []string{"Namespace " + shippedNamespace, "ConfigMap " + envConfigMapName, "Secret " + keysSecretName} {
		if !found[want] {
			return nil, fmt.Errorf("render deploy/%s: no %s in the manifests, which install fills in", f.overlay, want)
		}
	}
	have := map[string]bool{}
	for _, o := range objects {
		have[utils.FmtUnstructured(o)] = true
	}
	for _, ns := range f.targets {
		rb := targetBinding(ns, f.namespace, labels)
		if !have[utils.FmtUnstructured(rb)] { // the overlay binds it there already
			objects = append(objects, rb)
			have[utils.FmtUnstructured(rb)] = true
		}
	}
	return objects, nil
}

// setImage sets the image of the container named container in a Deployment; one the
// manifests lack is an error, so a renamed container does not leave the pinned image.
func setImage(o *unstructured.Unstructured, container, image string) error {
	containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return fmt.Errorf("%s: containers: %w", utils.FmtUnstructured(o), err)
	}
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == container {
			m["image"] = image
			return unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers")
		}
	}
	return fmt.Errorf("%s: no container %s for --image", utils.FmtUnstructured(o), container)
}

// moveSubjects points a binding's ServiceAccount subjects in the shipped namespace at ns.
func moveSubjects(o *unstructured.Unstructured, ns string) error {
	subjects, _, err := unstructured.NestedSlice(o.Object, "subjects")
	if err != nil {
		return fmt.Errorf("%s: subjects: %w", utils.FmtUnstructured(o), err)
	}
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" && m["namespace"] == shippedNamespace {
			m["namespace"] = ns
		}
	}
	return unstructured.SetNestedSlice(o.Object, subjects, "subjects")
}

func setIngressHost(o *unstructured.Unstructured, host string) error {
	rules, _, err := unstructured.NestedSlice(o.Object, "spec", "rules")
	if err != nil {
		return fmt.Errorf("%s: rules: %w", utils.FmtUnstructured(o), err)
	}
	for _, r := range rules {
		if m, ok := r.(map[string]any); ok {
			m["host"] = host
		}
	}
	return unstructured.SetNestedSlice(o.Object, rules, "spec", "rules")
}

// targetBinding is what the overlays' apply-rbac.yaml holds, for one namespace: the
// circle-apply ClusterRole granted to Circle's ServiceAccount there only.
func targetBinding(target, ns string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "RoleBinding",
		"metadata":   map[string]any{"name": applyRoleName, "namespace": target},
		"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": applyRoleName},
		"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": "circle", "namespace": ns}},
	}}
	u.SetLabels(maps.Clone(labels))
	return u
}

// keySecrets are the two Secrets install makes from local files.
type keySecrets struct {
	// keys is circle-keys' data: SOPS keys by Secret key, and webhookSecretKey.
	keys map[string][]byte
	// ring is the storage keyring file.
	ring []byte
	// generated says the webhook secret is a new random one.
	generated bool
}

// readKeys reads and checks the key files before the cluster is touched: each --key-file
// must hold keys SOPS can use and --storage-keyring a keyring, so a wrong path or a wrong
// file stops the install with its flag and path, and nothing applied. existing is the
// installed circle-keys' data (nil if none), whose webhook secret is kept when no file
// gives one, so a second run changes nothing.
func (f *installFlags) readKeys(existing map[string][]byte, red *redact.Redactor) (*keySecrets, error) {
	k := &keySecrets{keys: map[string][]byte{}}
	for _, p := range f.keyFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--key-file %s: %w", p, err)
		}
		hide(red, b)
		kr := &secrets.Keyring{}
		if err := kr.AddFile(p); err != nil {
			return nil, red.Error(fmt.Errorf("--key-file: %w", err)) // it names the file
		}
		if kr.Len() == 0 {
			return nil, fmt.Errorf("--key-file %s: no key in it", p)
		}
		name := secretKeyName(p)
		if _, dup := k.keys[name]; dup {
			return nil, fmt.Errorf("--key-file %s: a second file named %s (keys of circle-keys are the files' names)", p, name)
		}
		k.keys[name] = b
	}
	switch {
	case f.webhookSecret != "":
		b, err := os.ReadFile(f.webhookSecret)
		if err != nil {
			return nil, fmt.Errorf("--webhook-secret-file %s: %w", f.webhookSecret, err)
		}
		// A file written by echo ends in a newline the Git host's form does not have.
		if b = bytes.TrimSpace(b); len(b) == 0 {
			return nil, fmt.Errorf("--webhook-secret-file %s: empty", f.webhookSecret)
		}
		k.keys[webhookSecretKey] = b
	case len(existing[webhookSecretKey]) > 0:
		k.keys[webhookSecretKey] = existing[webhookSecretKey]
	default:
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("webhook secret: %w", err)
		}
		k.keys[webhookSecretKey] = []byte(hex.EncodeToString(b))
		k.generated = true
	}
	hide(red, k.keys[webhookSecretKey])
	b, err := os.ReadFile(f.storageKeyring)
	if err != nil {
		return nil, fmt.Errorf("--storage-keyring %s: %w", f.storageKeyring, err)
	}
	hide(red, b)
	if _, err := envelope.ReadKeyring(b); err != nil {
		return nil, red.Error(fmt.Errorf("--storage-keyring %s: not a storage keyring (make one with `circle storage keyring init`): %w", f.storageKeyring, err))
	}
	k.ring = b
	return k, nil
}

// hide registers a key file's bytes, its lines and its base64 with the redactor, so no
// error that quotes any of them shows it.
func hide(red *redact.Redactor, b []byte) {
	red.Add(string(b), base64.StdEncoding.EncodeToString(b))
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); len(l) >= redact.MinLength && !strings.HasPrefix(l, "#") {
			red.Add(l)
		}
	}
}

// secretKeyName is a key file's name in circle-keys, in the convention the daemon (and
// Flux) read a keys Secret by: NAME.asc for an OpenPGP key, NAME.agekey for age identities.
func secretKeyName(p string) string {
	base := filepath.Base(p)
	switch ext := filepath.Ext(base); ext {
	case ".agekey", ".asc":
		return base
	case ".gpg", ".pgp":
		return strings.TrimSuffix(base, ext) + ".asc"
	default:
		return strings.TrimSuffix(base, ext) + ".agekey"
	}
}

// withKeys returns objects with the circle-keys placeholder filled in and the keyring
// Secret added after it, both with the placeholder's labels and annotations.
func withKeys(objects []*unstructured.Unstructured, ns string, k *keySecrets) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() != "Secret" || o.GetName() != keysSecretName {
			out = append(out, o)
			continue
		}
		keys := o.DeepCopy()
		setData(keys, k.keys)
		ring := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "Opaque"}}
		ring.SetName(keyringSecretName)
		ring.SetNamespace(ns)
		ring.SetLabels(o.GetLabels())
		setData(ring, map[string][]byte{keyringSecretKey: k.ring})
		out = append(out, keys, ring)
	}
	return out
}

func setData(o *unstructured.Unstructured, data map[string][]byte) {
	m := map[string]any{}
	for k, v := range data {
		m[k] = base64.StdEncoding.EncodeToString(v)
	}
	o.Object["data"] = m
}

// isKeySecret says whether o is one of the Secrets install makes from key files.
func isKeySecret(o *unstructured.Unstructured) bool {
	return o.GetKind() == "Secret" && (o.GetName() == keysSecretName || o.GetName() == keyringSecretName)
}

// writeExport prints the manifests as a YAML stream, without the two key Secrets. They are
// left out rather than printed with masked data: a Secret with masks for values, applied
// by kubectl or a GitOps tool, would overwrite the real keys with the masks, and the pod
// would start with neither. Instead a comment gives the commands that make them from the
// files, which never pass through this output.
func writeExport(w io.Writer, f *installFlags, objects []*unstructured.Unstructured) error {
	keyArgs := ""
	for _, p := range f.keyFiles {
		keyArgs += fmt.Sprintf(" --from-file=%s=%s", secretKeyName(p), p)
	}
	if keyArgs == "" {
		keyArgs = " --from-file=age.agekey=AGE_KEY_FILE"
	}
	ring := f.storageKeyring
	if ring == "" {
		ring = "keyring.json"
	}
	var b strings.Builder
	ns := f.namespace
	fmt.Fprintf(&b, "# Circle, rendered by circle install --export (deploy/%s, namespace %s).\n", f.overlay, ns)
	fmt.Fprintf(&b, "# Not in this output, by design: the Secrets %s and %s, which hold keys.\n", keysSecretName, keyringSecretName)
	b.WriteString("# Create them before the Deployment starts (secret values never pass through this file):\n")
	fmt.Fprintf(&b, "#   kubectl create namespace %s\n", ns)
	fmt.Fprintf(&b, "#   kubectl -n %s create secret generic %s%s \\\n", ns, keysSecretName, keyArgs)
	fmt.Fprintf(&b, "#     --from-literal=%s=\"$(openssl rand -hex 32)\"\n", webhookSecretKey)
	fmt.Fprintf(&b, "#   kubectl -n %s create secret generic %s --from-file=%s=%s\n", ns, keyringSecretName, keyringSecretKey, ring)
	for _, o := range objects {
		if isKeySecret(o) {
			continue
		}
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("export %s: %w", utils.FmtUnstructured(o), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// install reads the keys, then dry-runs or applies.
func (f *installFlags) install(cmd *cobra.Command, objects []*unstructured.Unstructured) error {
	ctx := cmd.Context()
	cfg, err := apply.RESTConfig(f.kubeconfig, f.kctx)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	red := redact.New()
	existing, err := installedKeys(ctx, c, f.namespace)
	if err != nil {
		return err
	}
	keys, err := f.readKeys(existing, red)
	if err != nil {
		return err
	}
	objects = withKeys(objects, f.namespace, keys)
	// A RoleBinding into a namespace that does not exist fails half-way through the apply;
	// say so first, by the flag, with nothing applied.
	for _, ns := range f.targets {
		var n corev1.Namespace
		if err := c.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
			if apierrors.IsNotFound(err) {
				return &exitError{code: exitUsage, err: fmt.Errorf("--target-namespace %s: no such namespace on %s; create it first (kubectl create namespace %s)", ns, cfg.Host, ns)}
			}
			return fmt.Errorf("--target-namespace %s: %w", ns, err)
		}
	}
	a, err := apply.New(cfg)
	if err != nil {
		return err
	}
	env := installEnv(f.namespace)
	if f.dryRun {
		return f.dryRunInstall(cmd, a, env, objects, red)
	}

	// The inventory is kept in the installation's namespace, which must exist before the
	// apply writes to it; the apply then gives it its labels and annotations.
	created, err := ensureNamespace(ctx, c, f.namespace)
	if err != nil {
		return red.Error(err)
	}
	var manifests bytes.Buffer
	for _, o := range objects {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return red.Error(fmt.Errorf("install %s: %w", utils.FmtUnstructured(o), err))
		}
		manifests.WriteString("---\n")
		manifests.Write(y)
	}
	res, err := a.Apply(ctx, env, manifests.Bytes(), apply.Options{InventoryNamespace: f.namespace, Prune: true, Wait: f.wait})
	if res != nil {
		if created {
			ns := "Namespace/" + f.namespace
			if i := slices.Index(res.Configured, ns); i >= 0 {
				res.Configured = slices.Delete(res.Configured, i, i+1)
				res.Created = append(res.Created, ns)
				sort.Strings(res.Created)
			}
		}
		if perr := f.out.print(cmd.OutOrStdout(), res, func() string {
			return resultText(res) + fmt.Sprintf("%d created, %d configured, %d unchanged, %d deleted in namespace %s (inventory %s)\n",
				len(res.Created), len(res.Configured), len(res.Unchanged), len(res.Deleted), f.namespace, "circle-inventory-"+env)
		}); perr != nil {
			return perr
		}
	}
	if err != nil {
		return &exitError{code: exitFailed, err: red.Error(fmt.Errorf("install: %w", err))}
	}
	if keys.generated {
		fmt.Fprintf(cmd.ErrOrStderr(), "A new webhook secret is in Secret %s/%s; give it to your Git host's webhook:\n"+
			"  kubectl -n %[1]s get secret %[2]s -o jsonpath='{.data.%s}' | base64 -d\n", f.namespace, keysSecretName, webhookSecretKey)
	}
	return nil
}

// dryRunInstall asks the cluster whether it accepts each object, changing nothing.
func (f *installFlags) dryRunInstall(cmd *cobra.Command, a *apply.Applier, env string, objects []*unstructured.Unstructured, red *redact.Redactor) error {
	verdicts, err := a.DryRun(cmd.Context(), env, objects, red.Mask)
	if err != nil {
		return red.Error(fmt.Errorf("install --dry-run: %w", err))
	}
	type verdict struct {
		Subject  string `json:"subject"`
		Verdict  string `json:"verdict"`
		NotTried string `json:"notTried,omitempty"`
		Refused  string `json:"refused,omitempty"`
	}
	var out []verdict
	refused := 0
	for i, v := range verdicts {
		e := verdict{Subject: utils.FmtUnstructured(objects[i]), Verdict: "accepted"}
		switch {
		case v.Refused != nil:
			e.Verdict, e.Refused = "refused", red.String(v.Refused.Error())
			refused++
		case v.NotTried != "":
			e.Verdict, e.NotTried = "not tried", v.NotTried
		}
		out = append(out, e)
	}
	if err := f.out.print(cmd.OutOrStdout(), out, func() string {
		var b strings.Builder
		for _, e := range out {
			fmt.Fprintf(&b, "%s %s", e.Subject, e.Verdict)
			if e.Refused+e.NotTried != "" {
				fmt.Fprintf(&b, ": %s", e.Refused+e.NotTried)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%d of %d object(s) refused (dry run: nothing changed)\n", refused, len(out))
		return b.String()
	}); err != nil {
		return err
	}
	if refused > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("install --dry-run: the cluster refuses %d object(s)", refused)}
	}
	return nil
}

// installedKeys is the data of the installed circle-keys Secret, nil when there is none.
func installedKeys(ctx context.Context, c client.Client, ns string) (map[string][]byte, error) {
	var s corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: keysSecretName}, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Secret %s/%s: %w", ns, keysSecretName, err)
	}
	return s.Data, nil
}

// ensureNamespace creates ns when it does not exist, and says whether it did.
func ensureNamespace(ctx context.Context, c client.Client, ns string) (bool, error) {
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if apierrors.IsAlreadyExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return true, nil
}

func newUninstallCmd() *cobra.Command {
	var f installFlags
	var deleteState bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what 'circle install' made, by its inventory, and nothing else",
		Long: `Uninstall reads the inventory 'circle install' wrote (circle-inventory-install-NS in
--namespace) and deletes the objects it lists that still carry this installation's owner
label, then the inventory. Nothing it does not list is touched: other objects in the
namespace stay, and an object another installation has since applied (the shared
circle-apply ClusterRole) is left to it.

Three objects stay unless asked:
  the Namespace                 deleting it would delete everything else in it
  the PersistentVolumeClaim     the state store and file:// builds; --delete-state
                                deletes it
  the Secret circle-storage-keyring
                                every published build opens only with it;
                                --delete-state deletes it

Exit 1 when there is no inventory (nothing was installed in that namespace).`,
		Example: `  circle uninstall --context prod
  circle uninstall --namespace circle-dev --delete-state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkNamespace(f.namespace); err != nil {
				return err
			}
			cfg, err := apply.RESTConfig(f.kubeconfig, f.kctx)
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			res, err := uninstall(cmd.Context(), cfg, f.namespace, deleteState)
			if res != nil {
				if perr := f.out.print(cmd.OutOrStdout(), res, func() string { return res.text(f.namespace) }); perr != nil {
					return perr
				}
			}
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&deleteState, "delete-state", false, "also delete the PersistentVolumeClaim (the state store and file:// builds) and the storage keyring Secret")
	f.registerCluster(cmd)
	return cmd
}

// uninstallResult is what uninstall did, as "Kind/namespace/name" subjects.
type uninstallResult struct {
	Deleted []string     `json:"deleted"`
	Kept    []keptObject `json:"kept,omitempty"`
}

// keptObject is an inventory object uninstall left, and why.
type keptObject struct {
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
}

func (r *uninstallResult) text(ns string) string {
	var b strings.Builder
	for _, s := range r.Deleted {
		fmt.Fprintf(&b, "%s deleted\n", s)
	}
	for _, k := range r.Kept {
		fmt.Fprintf(&b, "%s kept: %s\n", k.Subject, k.Reason)
	}
	fmt.Fprintf(&b, "%d deleted, %d kept (namespace %s)\n", len(r.Deleted), len(r.Kept), ns)
	return b.String()
}

// uninstall deletes the objects of ns's install inventory that still carry its owner label,
// then the inventory.
func uninstall(ctx context.Context, cfg *rest.Config, ns string, deleteState bool) (*uninstallResult, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	env := installEnv(ns)
	invName := "circle-inventory-" + env
	var inv corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: invName}, &inv); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("uninstall: no inventory %s/%s: circle install made nothing in namespace %s", ns, invName, ns)
		}
		return nil, fmt.Errorf("uninstall: read inventory %s/%s: %w", ns, invName, err)
	}
	var ids object.ObjMetadataSet
	for _, key := range []string{"objects", "pending"} { // pending: an install that did not finish
		raw, ok := inv.Data[key]
		if !ok {
			continue
		}
		var list []string
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return nil, fmt.Errorf("uninstall: inventory %s/%s %s: %w", ns, invName, key, err)
		}
		for _, s := range list {
			id, err := object.ParseObjMetadata(s)
			if err != nil {
				return nil, fmt.Errorf("uninstall: inventory %s/%s: %w", ns, invName, err)
			}
			ids = ids.Union(object.ObjMetadataSet{id})
		}
	}
	res := &uninstallResult{Deleted: []string{}}
	owner := apply.Owner.Group + "/name"
	for _, id := range ids {
		subject := utils.FmtObjMetadata(id)
		switch id.GroupKind.String() {
		case "Namespace":
			res.Kept = append(res.Kept, keptObject{subject, "a Namespace; deleting it deletes everything in it (kubectl delete namespace " + id.Name + ")"})
			continue
		case "PersistentVolumeClaim":
			if !deleteState {
				res.Kept = append(res.Kept, keptObject{subject, "the state and file:// builds; --delete-state deletes it"})
				continue
			}
		case "Secret":
			// Every build published anywhere opens only with this keyring: losing the
			// Secret with the installation can lose the builds, if no copy was kept.
			if id.Name == keyringSecretName && !deleteState {
				res.Kept = append(res.Kept, keptObject{subject, "the storage keyring every published build needs; --delete-state deletes it"})
				continue
			}
		}
		m, err := c.RESTMapper().RESTMapping(id.GroupKind)
		if err != nil {
			return res, fmt.Errorf("uninstall %s: %w", subject, err)
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(m.GroupVersionKind)
		err = c.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, live)
		if apierrors.IsNotFound(err) {
			continue // gone already
		}
		if err != nil {
			return res, fmt.Errorf("uninstall %s: %w", subject, err)
		}
		if got := live.GetLabels()[owner]; got != env {
			res.Kept = append(res.Kept, keptObject{subject, fmt.Sprintf("its owner label %s is %q now, not %q", owner, got, env)})
			continue
		}
		err = c.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: ptr(live.GetUID())})
		if err != nil && !apierrors.IsNotFound(err) {
			return res, fmt.Errorf("uninstall %s: %w", subject, err)
		}
		res.Deleted = append(res.Deleted, subject)
	}
	if err := c.Delete(ctx, &inv); err != nil && !apierrors.IsNotFound(err) {
		return res, fmt.Errorf("uninstall: delete inventory %s/%s: %w", ns, invName, err)
	}
	res.Deleted = append(res.Deleted, "ConfigMap/"+ns+"/"+invName)
	sort.Strings(res.Deleted)
	return res, nil
}

func ptr[T any](v T) *T { return &v }
