package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	_ "gocloud.dev/blob/fileblob" // file:// publish targets
	_ "gocloud.dev/blob/memblob"  // mem:// publish targets, for trying things out
	"golang.org/x/term"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/leader"
	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
	"github.com/circlecore/circle/sources/git"
	"github.com/circlecore/circle/sources/signature"
	"github.com/circlecore/circle/sources/webhook"
	"github.com/circlecore/circle/state"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
)

type serveOptions struct {
	source     string
	publish    string
	logFormat  string
	ref        git.Ref
	sshKey     string
	knownHosts string
	interval   time.Duration
	hookAddr   string
	hookKind   string
	hookRepo   string
	verify     string
	pgpKeys    string
	sshKeys    string
	keys       keyFlags
	storage    storageFlags
	listen     string
	clusters   []string
	applyOpts  apply.Options
	licKeys    string
	stateDir   string
	drift      time.Duration
	configFile string
	leader     leader.Options
	leaderOn   bool
	tokenFile  string
	ui         uiFlags
	rollback   bool
	parallel   int
	// poke asks a Git source to poll now (a webhook or a trigger); nil for a folder, which
	// fsnotify already watches.
	poke func()
	// rec is the reconciler, once made: the source's fetches and webhooks are its metrics
	// (a webhook may arrive before it is made, hence atomic).
	rec atomic.Pointer[reconciler.Reconciler]
	// caps bound what a snapshot of either source reads: the daemon's limits, which the
	// repository cannot move.
	caps capFlags
	// artifacts are where url: artifacts may be fetched from (none: nowhere).
	artifacts artifactFlags
}

func newServeCmd() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reconciler daemon: watch a repository, build and publish every new revision",
		Long: `Run the reconciler daemon. It watches the source and, for every new revision,
runs the pipeline and records the outcome in the publish target.

The source is a local folder (watched with fsnotify) or a Git remote (file://, http(s)://,
ssh:// or git@host:path, polled every --interval). HTTP credentials come from the
CIRCLE_GIT_USERNAME and CIRCLE_GIT_PASSWORD environment variables, never from flags; SSH
needs --ssh-key and --known-hosts.

For each revision it reads circle.yaml, applies each environment's signature policy,
loads every environment (config layers, SOPS secrets, CUE schema), verifies licenses,
resolves packages, builds each environment (configuration, license files, manifests rendered
with kustomize, package index), checks the manifests, publishes each accepted environment's
build to the publish target (encrypted with --storage-keyring; see 'circle storage'),
applies its manifests to the cluster targets (--cluster), and records the outcome as
status.json there: per environment, whether it accepted the revision, its last good
revision, its last published build and what each cluster took. A revision with problems is
accepted nowhere; the last good state stays. Secrets never reach the log or the status.

--trusted-pgp-keys and --trusted-ssh-keys serve two policies: --verify, a daemon-wide one
checked before a revision is read, and circle.yaml's per-environment
policy.requireSignedCommits, which adds the key files the repository lists.

Configuration file (--config), every key optional, each the same as the flag it names;
credentials stay in files it points to or in CIRCLE_GIT_PASSWORD / CIRCLE_WEBHOOK_SECRET:

  source: {url: https://git.example.com/org/config.git, branch: main, interval: 1m}
  webhook: {addr: ":9292", provider: github}
  keys: {sops: [/etc/circle/keys/age.agekey], storage_keyring: /etc/circle/keys/keyring.json}
  publish: s3://circle-builds?region=eu-west-1
  clusters: {prod: {kubeconfig: /etc/circle/prod.kubeconfig, context: prod}}
  apply: {prune: true, wait: 2m, rollback_on_failure: true}
  state_dir: /var/lib/circle/state
  listen: ":9090"
  leader_election: {enabled: true, namespace: circle-system}
  trigger_token_file: /etc/circle/keys/trigger-token
  read_token_file: /etc/circle/keys/read-token
  allowed_hosts: [circle.example.com]

The file is checked against a CUE schema before anything starts; a problem is reported as
file:line: key: message. CIRCLE_<KEY> overrides a key ("__" between levels:
CIRCLE_SOURCE__URL, CIRCLE_APPLY__WAIT, CIRCLE_STATE_DIR); a flag overrides both.`,
		Example: `  # the daemon on the example repository, publishing to ./.circle
  circle serve --source examples --publish file://$PWD/.circle --key-file examples/keys/age.example.key

  # follow the highest 1.x tag of a remote over SSH
  circle serve --source ssh://git@git.example.com/org/config.git --semver '^1' \
    --ssh-key ~/.ssh/circle --known-hosts ~/.ssh/known_hosts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := loadDaemonConfig(cmd, o.configFile, os.Environ()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, cmd)
		},
	}
	cmd.Flags().StringVar(&o.configFile, "config", "",
		"daemon configuration file (YAML or JSON; keys in daemon.cue, shown by 'circle serve --help').\n"+
			"Precedence: defaults < this file < CIRCLE_* environment (CIRCLE_STATE_DIR, CIRCLE_SOURCE__URL) < flags")
	cmd.Flags().BoolVar(&o.leaderOn, "leader-elect", false,
		"run several replicas: only the holder of a Kubernetes Lease reconciles; a standby takes over within the lease")
	cmd.Flags().StringVar(&o.leader.Namespace, "leader-election-namespace", envOr("POD_NAMESPACE", "circle-system"), "namespace of the Lease")
	cmd.Flags().StringVar(&o.leader.Name, "leader-election-id", "circle", "name of the Lease")
	durationVar(cmd.Flags(), &o.leader.Lease, "leader-election-lease", 15*time.Second, time.Second, time.Hour,
		"how long a dead leader holds the Lease before a standby takes over (1s to 1h)")
	cmd.Flags().StringVar(&o.tokenFile, "trigger-token-file", "",
		"file holding the bearer token for POST /api/v1/reconcile (circle reconcile --now); without it the endpoint is off")
	cmd.Flags().BoolVar(&o.rollback, "rollback-on-failure", false,
		"when applying a revision fails or does not become healthy, apply the target's last good build again")
	intVar(cmd.Flags(), &o.parallel, "concurrency", 4, 1, 64, "environments built, published and applied at once (1 to 64)")
	cmd.Flags().StringVar(&o.source, "source", ".", "folder holding the desired-state repository")
	here, _ := filepath.Abs(".circle")
	cmd.Flags().StringVar(&o.publish, "publish", "file://"+filepath.ToSlash(here), "storage URL to publish to: file:///path, s3://…, azblob://…, gs://… (see circle storage --help)")
	enumVarP(cmd.Flags(), &o.logFormat, "log-format", "", "auto", "log format", []string{"auto", "console", "json"},
		"log format: json, console, or auto (console on a terminal, else json)")
	cmd.Flags().StringVar(&o.ref.Branch, "branch", "", "Git branch to follow (default main)")
	cmd.Flags().StringVar(&o.ref.Tag, "tag", "", "Git tag to follow")
	cmd.Flags().StringVar(&o.ref.SemVer, "semver", "", "semver range over Git tags; the highest match is followed")
	cmd.Flags().StringVar(&o.ref.Commit, "commit", "", "exact Git commit")
	cmd.Flags().StringVar(&o.sshKey, "ssh-key", "", "private key file for ssh remotes")
	cmd.Flags().StringVar(&o.knownHosts, "known-hosts", "", "known_hosts file for ssh remotes (unknown host keys are refused)")
	durationVar(cmd.Flags(), &o.interval, "interval", time.Minute, 100*time.Millisecond, 24*time.Hour, "how often to poll a Git remote (100ms to 24h)")
	o.caps.register(cmd)
	o.artifacts.register(cmd, true)
	cmd.Flags().StringVar(&o.hookAddr, "webhook-addr", "", "listen address for push webhooks, e.g. :9292 (secret from CIRCLE_WEBHOOK_SECRET)")
	enumVarP(cmd.Flags(), &o.hookKind, "webhook-provider", "", "github", "webhook provider", []string{"github", "gitlab", "gitea", "bitbucket", "generic"},
		"webhook dialect: github, gitlab, gitea, bitbucket or generic")
	cmd.Flags().StringVar(&o.hookRepo, "webhook-repository", "", "only pushes to this repository (org/repo) count")
	enumVarP(cmd.Flags(), &o.verify, "verify", "", "", "signature mode", []string{"", "head", "tag"},
		"require signed revisions: head (the commit) or tag (the annotated tag)")
	cmd.Flags().StringVar(&o.pgpKeys, "trusted-pgp-keys", "", "armored OpenPGP public keyring trusted to sign")
	cmd.Flags().StringVar(&o.sshKeys, "trusted-ssh-keys", "", "authorized_keys-format file of SSH keys trusted to sign")
	o.keys.register(cmd)
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:9090",
		"address of the HTTP API: /healthz, /readyz, /metrics, /api/v1/status, and the dashboard at /ui/ (empty: none)")
	o.ui.register(cmd)
	durationOrZeroVar(cmd.Flags(), &o.drift, "drift-interval", 5*time.Minute, time.Second, 24*time.Hour,
		"re-apply each cluster target's last manifests this often, putting back objects changed outside Git (0: never; else 1s to 24h)")
	cmd.Flags().StringVar(&o.stateDir, "state-dir", "",
		"state directory (bbolt): status, the revocation list, repository-listed signing keys and history survive restarts; /api/v1/history")
	cmd.Flags().StringVar(&o.licKeys, "license-keyring", "",
		"issuer public keys license files must be signed with (default: the repository's licenses/issuers.pub)")
	cmd.Flags().StringArrayVar(&o.clusters, "cluster", nil,
		"cluster target NAME=KUBECONFIG[@CONTEXT]: the target of that name in circle.yaml gets its environments'\n"+
			"manifests, server-side applied and pruned (repeatable)")
	cmd.Flags().StringVar(&o.applyOpts.InventoryNamespace, "inventory-namespace", "default", "namespace of the inventory ConfigMaps (circle-inventory-<env>)")
	cmd.Flags().BoolVar(&o.applyOpts.Prune, "prune", true, "delete objects an environment's manifests no longer hold")
	fractionVar(cmd.Flags(), &o.applyOpts.MaxDeleteFraction, "max-delete-fraction",
		"refuse a prune of more than this fraction of an environment's inventory, 0 to 1 (default 0.5; 1 disables): a revision that drops most objects is more often a mistake")
	durationVar(cmd.Flags(), &o.applyOpts.Wait, "wait", 0, 0, 24*time.Hour, "wait this long for applied objects to become healthy (0: do not wait; at most 24h)")
	cmd.Flags().StringVar(&o.storage.keyring, "storage-keyring", os.Getenv("CIRCLE_STORAGE_KEYRING"),
		"keyring that encrypts published builds (made with 'circle storage keyring init'; a missing file is an error; may be SOPS-sealed).\n"+
			"Without one, builds are not published: only status.json is written")
	cmd.MarkFlagsMutuallyExclusive("branch", "tag", "semver", "commit")
	return cmd
}

func (o *serveOptions) run(ctx context.Context, cmd *cobra.Command) error {
	// Every log line passes through the redactor that learns each decrypted secret, so a
	// secret quoted by a library's error never reaches the log.
	red := redact.New()
	out := red.Writer(cmd.ErrOrStderr())
	log := zerolog.New(out).With().Timestamp().Logger()
	if o.logFormat == "console" || o.logFormat == "auto" && isTerminal(cmd.ErrOrStderr()) {
		log = zerolog.New(zerolog.ConsoleWriter{Out: out}).With().Timestamp().Logger()
	}
	ring, err := o.keys.keyring(ctx)
	if err != nil {
		return err
	}
	trusted := &signature.Keys{}
	for _, f := range []string{o.pgpKeys, o.sshKeys} {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := trusted.Add(b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	var licKeys *license.Keyring
	if o.licKeys != "" {
		if licKeys, err = license.ReadKeyring(o.licKeys); err != nil {
			return err
		}
	}
	clusters, events, err := o.openClusters(log)
	if err != nil {
		return err
	}
	var store *state.Store
	if o.stateDir != "" {
		if store, err = state.Open(o.stateDir); err != nil {
			return err
		}
		defer store.Close()
	}
	artifacts, closeArtifacts, err := o.artifacts.daemonFetcher(o.stateDir)
	if err != nil {
		return err
	}
	defer closeArtifacts()
	src, err := o.openSource(ctx, log)
	if err != nil {
		return err
	}
	// One store for the publish URL: the builds go through the envelope on it, the status
	// beside them.
	publishStore, err := storage.Open(ctx, o.publish)
	if err != nil {
		return fmt.Errorf("--publish: %w", err)
	}
	defer publishStore.Close()
	where := publishStore.URL()
	opts := reconciler.Options{Keyring: ring, Redactor: red, TrustedKeys: trusted,
		Clusters: clusters, Events: events, Apply: o.applyOpts, LicenseKeys: licKeys, State: store, DriftInterval: o.drift,
		Poke: o.poke, RollbackOnFailure: o.rollback, Concurrency: o.parallel}
	if artifacts != nil {
		opts.Artifacts = artifacts // never a nil *fetch.Fetcher in the interface
		log.Info().Strs("sources", sourceNames(artifacts)).Str("cache", artifacts.Cache().Dir()).Msg("url: artifacts are fetched from these prefixes only")
	}
	if target, err := o.openTarget(ctx, publishStore, log); err != nil {
		return err
	} else if target != nil {
		opts.Target = target // never a nil *publish.Target in the interface
	}
	token, err := o.triggerToken()
	if err != nil {
		return err
	}
	opts.TriggerToken = token
	rec := reconciler.New(src, publishStore, log, opts)
	o.rec.Store(rec)
	if o.listen != "" {
		handler, err := o.ui.handler(ctx, rec.Handler(), red)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		srv := apiServer(handler, defaultServerLimits)
		go func() { _ = srv.Serve(ln) }()
		context.AfterFunc(ctx, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
		log.Info().Str("addr", ln.Addr().String()).Msg("HTTP API: /healthz /readyz /metrics /api/v1/status")
		o.ui.announce(log, ln.Addr())
	}
	log.Info().Str("source", o.source).Str("publish", where).Msg("circle serve started; status is written to " + where + "/" + reconciler.StatusKey)
	if !o.leaderOn {
		return rec.Run(ctx)
	}
	cfg, err := o.keys.restConfig()
	if err != nil {
		return fmt.Errorf("--leader-elect: %w", err)
	}
	klog.SetLogger(logr.Discard()) // client-go's own lines are not JSON; leader logs the changes
	var runErr error
	err = leader.Run(ctx, cfg, o.leader, log, func(ctx context.Context) { runErr = rec.Run(ctx) })
	return errors.Join(err, runErr)
}

// triggerToken reads --trigger-token-file; surrounding white space is not part of it.
func (o *serveOptions) triggerToken() (string, error) {
	if o.tokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(o.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--trigger-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", fmt.Errorf("--trigger-token-file %s: the token is %d characters; use at least 16 (openssl rand -hex 32)", o.tokenFile, len(token))
	}
	return token, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// openClusters connects to each --cluster NAME=KUBECONFIG[@CONTEXT], with an event
// recorder for each (Kubernetes Events on the inventory ConfigMaps; its events live as long
// as the process, so nothing closes it).
func (o *serveOptions) openClusters(log zerolog.Logger) (map[string]reconciler.Cluster, map[string]reconciler.EventSink, error) {
	out, events := map[string]reconciler.Cluster{}, map[string]reconciler.EventSink{}
	host, _ := os.Hostname() // in a pod, its name: the events' source
	for _, c := range o.clusters {
		name, cfg, err := clusterConfig(c)
		if err != nil {
			return nil, nil, err
		}
		a, err := apply.New(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("--cluster %s: %w", name, err)
		}
		out[name] = a
		rec, err := apply.NewRecorder(cfg, apply.RecorderOptions{InventoryNamespace: o.applyOpts.InventoryNamespace, Host: host,
			Log: log.With().Str("target", name).Logger()})
		if err != nil {
			return nil, nil, fmt.Errorf("--cluster %s: %w", name, err)
		}
		events[name] = rec
	}
	return out, events, nil
}

// clusterConfig reads one --cluster NAME=KUBECONFIG[@CONTEXT]: the target's name and its
// connection.
func clusterConfig(c string) (string, *rest.Config, error) {
	name, where, ok := strings.Cut(c, "=")
	if !ok || name == "" || where == "" {
		return "", nil, fmt.Errorf("--cluster %q: want NAME=KUBECONFIG[@CONTEXT]", c)
	}
	file, kctx, _ := strings.Cut(where, "@")
	cfg, err := apply.RESTConfig(file, kctx)
	if err != nil {
		return "", nil, fmt.Errorf("--cluster %s: %w", name, err)
	}
	return name, cfg, nil
}

// openTarget opens the publish target through the envelope, with the storage keyring.
// A keyring file that does not exist is an error, never made here: a mistyped path or an
// unmounted Secret would otherwise start publishing under a new key, after which the
// builds already published no longer open with the keyring the operator keeps. Making one
// is `circle storage keyring init`'s job.
func (o *serveOptions) openTarget(ctx context.Context, publishStore *storage.Store, log zerolog.Logger) (*publish.Target, error) {
	if o.storage.keyring == "" {
		log.Warn().Msg("no --storage-keyring: builds are not published, only status (secrets are never stored in the clear)")
		return nil, nil
	}
	if _, err := os.Stat(o.storage.keyring); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--storage-keyring %s does not exist: make one with `circle storage keyring init %[1]s`, "+
			"or name the keyring the builds already published were encrypted with", o.storage.keyring)
	}
	o.storage.keys = o.keys
	ring, err := o.storage.readKeyring(ctx)
	if err != nil {
		return nil, fmt.Errorf("publish target: %w", err)
	}
	return publish.New(envelope.New(publishStore, ring, "circle "+version), ""), nil
}

// isRemote tells a Git URL from a local folder: a scheme, or scp-like user@host:path.
func isRemote(source string) bool {
	if strings.Contains(source, "://") {
		return true
	}
	at, colon := strings.Index(source, "@"), strings.Index(source, ":")
	return at > 0 && colon > at
}

func (o *serveOptions) openSource(ctx context.Context, log zerolog.Logger) (sources.Source, error) {
	if !isRemote(o.source) {
		opts := dir.DefaultOptions()
		opts.MaxFileSize, opts.MaxTreeSize = int64(o.caps.file), int64(o.caps.tree)
		opts.OnError = func(err error) { log.Error().Err(err).Msg("revision refused; waiting for the next change") }
		return dir.New(o.source, opts)
	}
	hints := make(chan struct{}, 1)
	o.poke = func() {
		select {
		case hints <- struct{}{}:
		default: // one pending poll is enough
		}
	}
	opts := git.Options{URL: o.source, Ref: o.ref, Interval: o.interval, Hints: hints,
		MaxFileSize: int64(o.caps.file), MaxTreeSize: int64(o.caps.tree),
		OnError: func(err error) { log.Warn().Err(err).Msg("poll failed; retrying at the next interval") },
		OnFetch: func(took time.Duration, err error) {
			if rec := o.rec.Load(); rec != nil {
				rec.ObserveFetch(took, err)
			}
		}}
	if o.hookAddr != "" {
		branch := o.ref.Branch
		if branch == "" {
			branch = "main"
		}
		recv, err := webhook.New(webhook.Provider(o.hookKind), []byte(os.Getenv("CIRCLE_WEBHOOK_SECRET")), o.hookRepo,
			webhook.BranchOrTags(branch, o.ref.Tag != "" || o.ref.SemVer != ""))
		if err != nil {
			return nil, err
		}
		counted := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			recv.ServeHTTP(sw, req)
			if rec := o.rec.Load(); rec != nil {
				rec.ObserveWebhook(sw.status)
			}
		})
		// The webhook listener is the one an Ingress publishes: the same bounds as --listen,
		// and a whole request (a body of at most webhook.MaxBody) in 10 s.
		srv := apiServer(counted, defaultServerLimits)
		srv.ReadTimeout = 10 * time.Second
		ln, err := net.Listen("tcp", o.hookAddr)
		if err != nil {
			return nil, fmt.Errorf("webhook listener: %w", err)
		}
		go func() { _ = srv.Serve(ln) }()
		context.AfterFunc(ctx, func() { _ = srv.Close() })
		log.Info().Str("addr", ln.Addr().String()).Str("provider", o.hookKind).Msg("receiving push webhooks")
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-recv.Hints():
					o.poke()
				}
			}
		}()
	}
	opts.Auth.Username = os.Getenv("CIRCLE_GIT_USERNAME")
	opts.Auth.Password = os.Getenv("CIRCLE_GIT_PASSWORD")
	opts.Verify.Mode = git.VerifyMode(o.verify)
	var pgp []byte
	for path, dst := range map[string]*[]byte{o.sshKey: &opts.Auth.SSHKey, o.knownHosts: &opts.Auth.KnownHosts,
		o.pgpKeys: &pgp, o.sshKeys: &opts.Verify.SSHKeys} {
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		*dst = b
	}
	opts.Verify.PGPKeys = string(pgp)
	return git.New(opts)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// isTerminal reports whether w is a terminal: people get the console format, collectors JSON.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// serverLimits bound what one client of --listen can hold: a connection sending its header
// slowly, an idle keep-alive connection, a header's size.
type serverLimits struct {
	header, idle time.Duration
	headerBytes  int
}

// defaultServerLimits are the daemon's. There is no ReadTimeout nor WriteTimeout: either would
// end the dashboard's event streams (a read deadline left from the request cancels the
// handler's context when it passes), and no endpoint takes a body larger than a trigger's.
var defaultServerLimits = serverLimits{header: 5 * time.Second, idle: 60 * time.Second, headerBytes: 64 << 10}

// apiServer is the server of --listen, under lim.
func apiServer(h http.Handler, lim serverLimits) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: lim.header, IdleTimeout: lim.idle, MaxHeaderBytes: lim.headerBytes}
}
