package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/kubecheck"
	"github.com/circlecore/circle/layers"
	"github.com/circlecore/circle/pipeline"
	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/secrets"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
	"github.com/circlecore/circle/sources/git"
)

type validateOptions struct {
	envs       []string
	noDecrypt  bool
	origins    bool
	serverSide bool
	kctx       string
	keys       keyFlags
	caps       capFlags
	out        outputFlag
	artifacts  artifactFlags
}

// validateResult is what `circle validate -o json` prints.
type validateResult struct {
	Valid        bool           `json:"valid"`
	Environments []envResult    `json:"environments,omitempty"`
	Problems     []repo.Problem `json:"problems,omitempty"`
	// Notes are what was not checked (custom resources without their CRD); they do not
	// make the repository invalid.
	Notes []repo.Problem `json:"notes,omitempty"`
}

type envResult struct {
	Name    string `json:"name"`
	Values  int    `json:"values"`
	Secrets int    `json:"secrets"`
	Objects int    `json:"objects,omitempty"`
	// NotDecrypted are the paths not checked in a review without keys (--no-decrypt): the
	// secrets' values and what the schema computes from them.
	NotDecrypted []string       `json:"notDecrypted,omitempty"`
	Origins      []originResult `json:"origins,omitempty"`
}

type originResult struct {
	Path  string `json:"path"`
	Value string `json:"value"`
	From  string `json:"from"`
}

func newValidateCmd() *cobra.Command {
	o := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate [path]",
		Short: "Validate a repository: config against the CUE schemas, manifests against Kubernetes' (exit 0 valid, 1 invalid, 2 usage)",
		Long: `Validate loads a repository the way the daemon does: circle.yaml, then for each
environment the config layers (config/base, config/<env>), the SOPS secrets
(secrets/<env>.sops.yaml), all merged and unified with the CUE schema in schema/.

It runs the daemon's pipeline: license files are verified (against licenses/issuers.pub)
and each environment's packages resolved and scanned under its policies; an environment
the daemon would refuse for either is a problem here. Then each environment with a
kustomize overlay (paths.manifests/<env>) is rendered as the daemon renders it, and every object is checked offline against the OpenAPI schema
of Kubernetes ` + kubecheck.KubernetesVersion() + ` (unknown fields, types, required fields; custom
resources against a CRD in the same manifests) and against the environment's policies
(circle.yaml environments[].policy.manifests): required labels, no latest image tags
in production, resource requests, no privileged containers or host namespaces, and
Ingress hosts unique across the environments validated. An object skips named checks
with the annotation circle.circlecore.io/skip-checks: id1,id2.

With --server-side, each object is also applied to a cluster in a server-side dry run
(nothing changes), which catches what only the API server knows. An object in a
namespace the same manifests create is not dry-run (the namespace does not exist yet).

Every problem is reported at once, as file:line:col: path: message [environments]; a
manifest problem names the file the object was written in, the object and the field:
deploy/base/deployment.yaml:21:18: Deployment/web spec.template.spec.containers[0].image: ...
Secret values never appear: they show as **redacted:<hash>**.

Exit codes: 0 valid, 1 invalid, 2 usage or I/O error (a missing key file, say).`,
		Example: `  # the whole repository in the current folder
  circle validate

  # one environment, with the example key, and where every value came from
  circle validate examples --env prod --key-file examples/keys/age.example.key --origins

  # for CI: machine-readable
  circle validate -o json

  # also dry-run every object against a cluster
  circle validate --server-side --context kind-dev`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			return o.run(cmd, path)
		},
	}
	cmd.Flags().StringSliceVar(&o.envs, "env", nil, "environments to validate (default all)")
	cmd.Flags().BoolVar(&o.origins, "origins", false, "print every value with the file:line it came from")
	cmd.Flags().BoolVar(&o.noDecrypt, "no-decrypt", false, "review without keys (a pull request from a fork): check everything but the secrets' values, "+
		"each standing in as the type its SOPS tag names, and list what was not checked")
	cmd.Flags().BoolVar(&o.serverSide, "server-side", false, "also dry-run every object against the cluster of --kubeconfig/--context")
	cmd.Flags().StringVar(&o.kctx, "context", "", "kubeconfig context for --server-side (default: the current one)")
	o.keys.register(cmd) // --kubeconfig serves --keys-secret and --server-side
	o.caps.register(cmd)
	o.out.register(cmd)
	o.artifacts.register(cmd, false)
	return cmd
}

// capFlags are the size caps of a snapshot (--max-file-size, --max-tree-size): the operator's
// bound on what a repository, a folder here as much as a Git remote, may make Circle read.
// Every command that reads a repository has them, with the daemon's defaults.
type capFlags struct{ file, tree dir.Size }

func (c *capFlags) register(cmd *cobra.Command) {
	c.file, c.tree = dir.DefaultMaxFileSize, dir.DefaultMaxTreeSize
	cmd.Flags().Var(&c.file, "max-file-size", "largest file the repository may hold (bytes, or with Ki, Mi, Gi); a larger one refuses it")
	cmd.Flags().Var(&c.tree, "max-tree-size", "largest total of the repository's files; a larger tree refuses it")
}

// git are the caps for a revision read from the local Git repository.
func (c capFlags) git() git.Caps {
	return git.Caps{MaxFileSize: int64(c.file), MaxTreeSize: int64(c.tree)}
}

// snapshotOf reads a folder the way the daemon's folder source does: regular files only,
// symlinks not followed, within caps, so validation sees exactly what the daemon would.
func snapshotOf(ctx context.Context, path string, caps capFlags) (*sources.Snapshot, error) {
	opts := dir.DefaultOptions()
	opts.MaxFileSize, opts.MaxTreeSize = int64(caps.file), int64(caps.tree)
	src, err := dir.New(path, opts)
	if err != nil {
		return nil, err
	}
	return src.Snapshot(ctx)
}

func (o *validateOptions) run(cmd *cobra.Command, path string) error {
	ctx := cmd.Context()
	snap, err := snapshotOf(ctx, path, o.caps)
	if err != nil {
		return err
	}
	keys := &secrets.Keyring{}
	if !o.noDecrypt { // no key is even looked for: a fork's CI has none, and must not need one
		if keys, err = o.keys.keyring(ctx); err != nil {
			return err
		}
	}
	red := redact.New()
	// The daemon's pipeline, with masked secret values (the structure is what is checked;
	// real values need never be rendered here) and origin annotations, so a manifest
	// problem is placed in the file the object was written in.
	// url: artifacts from the cache, or fetched with --fetch from the allowed sources only.
	popts := pipeline.Options{Load: repo.Options{Keyring: keys, Redactor: red, Envs: o.envs, NoDecrypt: o.noDecrypt},
		Masked: true, Origins: true}
	if fetcher, err := o.artifacts.fetcher(); err != nil {
		return err
	} else if fetcher != nil {
		defer fetcher.Close()
		popts.Artifacts = fetcher
	}
	res, err := pipeline.Run(ctx, snap.FS, popts)
	if _, invalid := errors.AsType[*repo.Invalid](err); err != nil && !invalid {
		return red.Error(err)
	}
	problems := append(res.Problems, failures(res)...)
	notes := res.Notes
	if res.Registry != nil { // url: artifacts not fetched
		for _, n := range res.Registry.Notes {
			notes = append(notes, repo.Problem{Issue: n})
		}
	}
	if len(problems) == 0 && o.serverSide {
		var refused, untried repo.ProblemSet
		if err := o.dryRun(ctx, res.Outputs, red, &refused, &untried); err != nil {
			return err
		}
		problems, notes = refused.List(), append(notes, untried.List()...)
	}
	if len(problems) > 0 {
		out := validateResult{Problems: problems, Notes: notes}
		inv := &repo.Invalid{Problems: problems}
		if perr := o.out.print(cmd.OutOrStdout(), out, func() string { return invalidText(inv) + notesText(notes) }); perr != nil {
			return perr
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("%s is invalid: %d problem(s)", path, len(problems))}
	}
	out := validateResult{Valid: true, Notes: notes}
	for _, e := range res.Repo.Envs {
		er := envResult{Name: e.Name, Objects: res.Objects[e.Name], NotDecrypted: e.NotDecrypted}
		for _, or := range e.Merged.Origins() {
			er.Values++
			if e.Sensitive(or.Path) {
				er.Secrets++
			}
			if o.origins {
				er.Origins = append(er.Origins, originResult{Path: or.Path, Value: shown(e, or.Path), From: or.String()})
			}
		}
		out.Environments = append(out.Environments, er)
	}
	return o.out.print(cmd.OutOrStdout(), out, func() string { return validText(out) + notesText(out.Notes) })
}

// failures are the environments the pipeline refused one by one (a license, packages, an
// overlay that does not render) as problems: the daemon would not take the revision there.
func failures(res *pipeline.Result) []repo.Problem {
	var set repo.ProblemSet
	if res.Settings == nil {
		return nil
	}
	for _, env := range res.Settings.EnvNames() {
		if f, ok := res.Failed[env]; ok {
			set.Add(env, schema.Issue{File: f.File, Line: f.Line, Message: f.Message + " [" + f.Stage + "]"})
		}
	}
	return set.List()
}

// shown is a value as output may show it: masked when sensitive.
func shown(e *repo.Env, path string) string {
	v := lookup(e.Redacted(), path)
	b, _ := json.Marshal(v)
	return string(b)
}

// lookup finds a dotted path (as Origins spells it) in a config map.
func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, k := range layers.Split(path) {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func invalidText(inv *repo.Invalid) string {
	var b strings.Builder
	envs := map[string]bool{}
	for _, p := range inv.Problems {
		b.WriteString(p.String())
		b.WriteByte('\n')
		for _, e := range p.Envs {
			envs[e] = true
		}
	}
	fmt.Fprintf(&b, "\n%d problem(s)", len(inv.Problems))
	if len(envs) > 0 {
		names := make([]string, 0, len(envs))
		for e := range envs {
			names = append(names, e)
		}
		sort.Strings(names)
		fmt.Fprintf(&b, " in %s", strings.Join(names, ", "))
	}
	b.WriteByte('\n')
	return b.String()
}

func validText(res validateResult) string {
	var b strings.Builder
	for _, e := range res.Environments {
		fmt.Fprintf(&b, "%s: valid (%d values, %d secret", e.Name, e.Values, e.Secrets)
		if e.Objects > 0 {
			fmt.Fprintf(&b, ", %d objects", e.Objects)
		}
		b.WriteString(")\n")
		if len(e.NotDecrypted) > 0 {
			fmt.Fprintf(&b, "  not checked without keys: the values of %s (and what the schema computes from them)\n",
				strings.Join(e.NotDecrypted, ", "))
		}
		for _, o := range e.Origins {
			fmt.Fprintf(&b, "  %s = %s  (%s)\n", o.Path, o.Value, o.From)
		}
	}
	return b.String()
}
