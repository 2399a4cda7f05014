package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/circlecore/circle/plan"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/git"
)

// Exit codes of circle plan, terraform plan -detailed-exitcode's: CI gates on them. Any
// error is 1, usage errors included, so 2 always means "there are changes".
const (
	planNoChanges = 0
	planFailed    = 1
	planChanges   = 2
)

// planNow is the plan's clock; tests fix it.
var planNow = time.Now

type planOptions struct {
	base, head string
	worktree   bool
	envs       []string
	format     string
	expiryDays int
	date       string
	full       bool
	noDecrypt  bool
	live       liveFlags
	artifacts  artifactFlags
	keys       keyFlags
	caps       capFlags
}

func newPlanCmd() *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan [path] (--base REV | --live) [--head REV | --worktree]",
		Short: "Show what a revision would change in each environment (exit 0 none, 1 invalid, 2 changes)",
		Long: `Plan builds every environment at two revisions of the repository with the daemon's own
stages (load and validate, decrypt, licenses, packages, render; no publish, no apply)
and shows what moving from --base to the head would change, per environment:

  configuration   keys added, changed, removed, with the file:line of the new value;
                  secrets masked (**redacted:<hash>**), a changed secret shows a new mask
  packages        added, removed, upgraded, downgraded, with the range that moved, new
                  advisories hit, and the license policy's verdict
  licenses        issued, changed (features, limits, expiry), revoked or refused, and
                  those expiring within --expiry-days
  objects         Kubernetes objects created, changed (field by field), replaced (the
                  hash-named ConfigMap and Secret) and deleted: prunes are flagged
  storage         the files a publish would write

The head's validation problems and failed builds are part of the plan, at file:line.
An environment whose inputs (every file its build reads) are the same at both revisions
is not built, as the daemon skips it; --full builds it anyway.

Revisions are read from the Git repository holding path: a branch, tag, hash, HEAD~1 or
origin/main. The head is HEAD unless --head names another, or --worktree takes the
folder as it is, uncommitted changes included.

Output: -o text (colour on a terminal, unless NO_COLOR is set), -o json (the stable
schema documented in the plan package, circle.plan/v1), -o markdown (a pull-request
comment: summary table, a section per environment, kept under 65,536 characters,
marked <!-- circle-plan --> so a bot can edit it in place; see examples/ci).

Masks are salted with a digest of the SOPS keys (--key-file, CIRCLE_KEY_FILES,
CIRCLE_AGE_KEY), so two runs with the same keys print the same masks and a bot's
comment only changes when the plan does; without such keys the salt is random.

--live compares the head with what the targets hold now instead of a base revision:
each --cluster target's live objects (through the inventory and a server-side dry run:
objects created, changed field by field, pruned; a field that a manager other than Circle
set, kubectl edit or scale or another controller, is flagged drifted) and the --publish
target's current build of each environment (the files that would change). A target that
cannot be read fails its environment. Configuration, packages and licenses are not
compared: what is live has no revision of its own.

--no-decrypt plans without keys (a pull request from a fork): each secret stands in as
the type its SOPS tag names, the plan names the secrets files that changed, never what
changed in them, and says which values it could not compare.

Exit codes:
  0  no changes
  1  error, or the head revision is invalid or fails to build for an environment
  2  changes (and a valid head)`,
		Example: `  # this branch against main, as CI runs it
  circle plan --base origin/main --key-file keys/age.key -o markdown

  # the examples folder of this repository: uncommitted edits against the last commit
  circle plan examples --base HEAD --worktree --key-file examples/keys/age.example.key

  # one environment, as JSON
  circle plan --base v1.4.0 --head v1.5.0 --env prod -o json

  # the head against what the prod cluster and the bucket hold now
  circle plan --live --cluster prod=$HOME/.kube/prod --inventory-namespace circle-system \
    --publish s3://configs --storage-keyring keyring.json --key-file keys/age.key

  # a pull request from a fork, without keys
  circle plan --base origin/main --no-decrypt -o markdown`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MaximumNArgs(1)(cmd, args); err != nil {
				return &exitError{code: planFailed, err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := o.run(cmd, pathArg(args))
			if err != nil {
				return &exitError{code: planFailed, err: err}
			}
			if code != planNoChanges {
				// The plan is on stdout; stderr says why the exit code is not 0.
				msg := "the plan has changes"
				if code == planFailed {
					msg = "the head revision is invalid or fails to build"
				}
				return &exitError{code: code, err: fmt.Errorf("%s (exit %d)", msg, code)}
			}
			return nil
		},
	}
	// A flag error must not exit 2, which means "changes" here.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: planFailed, err: err} })
	f := cmd.Flags()
	f.StringVar(&o.base, "base", "", "the revision to compare against (required): branch, tag, hash, HEAD~1, origin/main")
	f.StringVar(&o.head, "head", "", "the revision to plan (default HEAD)")
	f.BoolVar(&o.worktree, "worktree", false, "plan the folder as it is, uncommitted changes included, instead of --head")
	f.StringSliceVar(&o.envs, "env", nil, "environments to plan (default all)")
	enumVarP(f, &o.format, "output", "o", "text", "output format", []string{"text", "json", "markdown"}, "output format: text, json or markdown")
	intVar(f, &o.expiryDays, "expiry-days", 30, 0, 36500, "report accepted licenses that expire within this many days (0: none)")
	f.StringVar(&o.date, "date", "", "judge licenses and advisories as of this time: YYYY-MM-DD, RFC 3339 or a duration from now (30d) (default now)")
	f.BoolVar(&o.full, "full", false, "build every environment, even those whose inputs are unchanged")
	f.BoolVar(&o.live.live, "live", false, "plan the head against what the targets hold now instead of --base: each --cluster's live objects "+
		"(a server-side dry run; fields set outside Circle flagged as drifted) and the --publish target's current builds")
	f.StringArrayVar(&o.live.clusters, "cluster", nil, "with --live: cluster target NAME=KUBECONFIG[@CONTEXT], as circle serve takes it; repeatable")
	f.StringVar(&o.live.inventoryNS, "inventory-namespace", "default", "with --live: namespace of the inventory ConfigMaps (circle serve's)")
	f.StringVar(&o.live.publish, "publish", "", "with --live: the storage URL builds are published to")
	f.StringVar(&o.live.storageKeyring.keyring, "storage-keyring", "", "with --live: the keyring the builds at --publish open with")
	f.BoolVar(&o.noDecrypt, "no-decrypt", false, "plan without keys (a pull request from a fork): secrets stand in as their types, "+
		"and the plan says which secrets files changed and what it could not compare")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json", "markdown"}, cobra.ShellCompDirectiveNoFileComp))
	o.artifacts.register(cmd, false)
	o.keys.register(cmd)
	o.caps.register(cmd)
	return cmd
}

// run plans and prints; its code is planNoChanges, planChanges or planFailed (invalid head).
func (o *planOptions) run(cmd *cobra.Command, path string) (int, error) {
	ctx := cmd.Context()
	if o.live.live {
		if o.base != "" || o.noDecrypt {
			return 0, fmt.Errorf("--live compares with what the targets hold: no --base, and it needs the keys (no --no-decrypt)")
		}
		if len(o.live.clusters) == 0 && o.live.publish == "" {
			return 0, fmt.Errorf("--live needs a target to read: --cluster NAME=KUBECONFIG or --publish URL")
		}
		p, err := o.runLive(ctx, path)
		if err != nil {
			return 0, err
		}
		return o.print(cmd, p)
	}
	switch {
	case o.base == "":
		return 0, fmt.Errorf("--base is required: the revision to compare against (main, origin/main, HEAD~1), or --live")
	case o.worktree && o.head != "":
		return 0, fmt.Errorf("--head and --worktree exclude each other")
	}
	now := planNow()
	if o.date != "" {
		var err error
		if now, err = parseWhen(o.date, false, now); err != nil {
			return 0, fmt.Errorf("--date: %w", err)
		}
	}
	base, err := git.Local(path, o.base, o.caps.git())
	if err != nil {
		return 0, err
	}
	head, headName, err := o.headSnapshot(ctx, path)
	if err != nil {
		return 0, err
	}
	ring := &secrets.Keyring{}
	if !o.noDecrypt { // no key is looked for: a fork's CI has none
		if ring, err = o.keys.keyring(ctx); err != nil {
			return 0, err
		}
	}
	red, err := o.redactor()
	if err != nil {
		return 0, err
	}
	// url: artifacts from the cache, or fetched with --fetch from the allowed sources only.
	fetcher, err := o.artifacts.fetcher()
	if err != nil {
		return 0, err
	}
	bo := plan.BuildOptions{Load: repo.Options{Keyring: ring, Redactor: red, Envs: o.envs, NoDecrypt: o.noDecrypt}, Now: now, Full: o.full}
	if fetcher != nil {
		defer fetcher.Close()
		bo.Artifacts = fetcher
	}
	builds, err := plan.Build(ctx, base.FS, head.FS, bo)
	if err != nil {
		return 0, err
	}
	opts := plan.DefaultOptions()
	opts.Envs, opts.Redactor, opts.Now, opts.Unchanged = o.envs, red, now, builds.Unchanged
	opts.SecretsChanged, opts.NotDecrypted = builds.SecretsChanged, o.noDecrypt
	opts.ExpiryWindow = time.Duration(o.expiryDays) * 24 * time.Hour
	if o.expiryDays == 0 {
		opts.ExpiryWindow = -1 // none; Compare reads zero as its default
	}
	opts.BaseRevision, opts.HeadRevision = base.Revision, headName
	return o.print(cmd, plan.Compare(ctx, builds.Base, builds.Head, opts))
}

// print writes the plan in the chosen format and returns the exit code it means.
func (o *planOptions) print(cmd *cobra.Command, p *plan.Plan) (int, error) {
	var err error
	w := cmd.OutOrStdout()
	switch o.format {
	case "json":
		err = p.WriteJSON(w)
	case "markdown":
		err = p.WriteMarkdown(w, plan.DefaultMarkdownOptions())
	default:
		err = p.WriteText(w, colorful(w))
	}
	if err != nil {
		return 0, err
	}
	switch {
	case p.Summary.Invalid:
		return planFailed, nil
	case p.Summary.HasChanges:
		return planChanges, nil
	}
	return planNoChanges, nil
}

// headSnapshot reads the head: the folder as it is (--worktree), or a revision.
func (o *planOptions) headSnapshot(ctx context.Context, path string) (*sources.Snapshot, string, error) {
	if o.worktree {
		snap, err := snapshotOf(ctx, path, o.caps)
		if err != nil {
			return nil, "", err
		}
		return snap, "worktree " + snap.Revision, nil
	}
	rev := o.head
	if rev == "" {
		rev = "HEAD"
	}
	snap, err := git.Local(path, rev, o.caps.git())
	if err != nil {
		return nil, "", err
	}
	return snap, snap.Revision, nil
}

// redactor salts masks with a digest of the SOPS key material, when there is some: the
// same keys give the same masks run after run (a pull-request comment stays the same
// until the plan changes), and nobody without the keys can compute the salt, so masks
// still cannot be checked against guesses. Keys from --keys-secret are not read here;
// they, or no keys, leave the salt random.
func (o *planOptions) redactor() (*redact.Redactor, error) {
	h := sha256.New()
	io.WriteString(h, "circle plan mask salt v1\x00")
	n := 0
	files := append([]string(nil), o.keys.files...)
	if env := os.Getenv("CIRCLE_KEY_FILES"); env != "" {
		files = append(files, filepath.SplitList(env)...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read key file: %w", err)
		}
		h.Write(b)
		h.Write([]byte{0})
		n++
	}
	if inline := os.Getenv("CIRCLE_AGE_KEY"); inline != "" {
		io.WriteString(h, inline)
		n++
	}
	if n == 0 {
		return redact.New(), nil
	}
	return redact.New(redact.WithSalt(h.Sum(nil))), nil
}

// colorful reports whether w is a terminal that wants colour (https://no-color.org).
func colorful(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}
