package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/registry"
	"github.com/circlecore/circle/registry/fetch"
	"github.com/circlecore/circle/registry/solver"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/schema"
	"github.com/circlecore/circle/sources/dir"
)

func newPackageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "package",
		Short: "The package registry: list, show, resolve, explain, scan and lock packages",
		Long: `The package registry of a repository: manifests at packages/<name>/<version>.yaml,
each environment's requirements and policies in packages/environments.yaml, locks at
packages/<env>.lock.json, OSV advisories in advisories/*.json.

Every command loads and checks the whole registry first (schema, names and versions
matching their paths, dependencies, artifact digests); a problem is reported at its
file:line:col and the command exits 1.

Exit codes: 0 ok, 1 a problem was found (invalid manifests, no solution, a failing scan,
a stale lock with --check), 2 usage or I/O error.`,
	}
	cmd.AddCommand(newPackageListCmd(), newPackageShowCmd(), newPackageResolveCmd(), newPackageWhyCmd(),
		newPackageScanCmd(), newPackageLockCmd(), newPackageIndexCmd())
	return cmd
}

// packageFlags are the flags every package subcommand has.
type packageFlags struct {
	envs      []string
	caps      capFlags
	out       outputFlag
	artifacts artifactFlags
}

func (f *packageFlags) register(cmd *cobra.Command, envHelp string) {
	cmd.Flags().StringSliceVar(&f.envs, "env", nil, envHelp)
	f.caps.register(cmd)
	f.out.register(cmd)
	f.artifacts.register(cmd, false)
}

// artifactFlags say whether url: artifacts are fetched, from where and within what: the
// operator's settings (flags, the daemon's configuration), never the repository's. A
// command fetches only with --fetch and only under an --artifact-source; without --fetch
// it uses the cache (verified bytes are verified whatever URL names them) and leaves the
// rest "not fetched". The daemon fetches when it has a source.
type artifactFlags struct {
	fetch   bool
	sources []string
	cache   string
	maxSize dir.Size
	timeout time.Duration
	caFile  string
}

func (a *artifactFlags) register(cmd *cobra.Command, daemon bool) {
	if !daemon {
		cmd.Flags().BoolVar(&a.fetch, "fetch", false,
			"fetch url: artifacts missing from the cache, from the --artifact-source prefixes only (default: the cache only; nothing is requested)")
	}
	cacheHelp := "folder of verified artifacts, by sha256 (default: the user cache folder's circle/artifacts)"
	if daemon {
		cacheHelp = "folder of verified artifacts, by sha256 (default: <state-dir>/artifacts; without --state-dir, a temporary folder)"
	}
	cmd.Flags().StringArrayVar(&a.sources, "artifact-source", nil,
		"prefix url: artifacts may be fetched from (repeatable): https://HOST/PATH/, s3://BUCKET/PREFIX/?region=R[&endpoint=E],\n"+
			"gs://BUCKET/PREFIX/, azblob://CONTAINER/PREFIX/, file:///FOLDER/; none: nothing is fetched. Credentials come from the environment")
	cmd.Flags().StringVar(&a.cache, "artifact-cache", "", cacheHelp)
	cmd.Flags().StringVar(&a.caFile, "artifact-ca-file", "", "PEM certificates https artifact sources are checked against, instead of the system's (a private CA)")
	a.maxSize = fetch.DefaultMaxSize
	cmd.Flags().Var(&a.maxSize, "artifact-max-size", "largest artifact fetched (bytes, or with Ki, Mi, Gi); a manifest naming a larger one is refused before any request")
	durationVar(cmd.Flags(), &a.timeout, "artifact-timeout", fetch.DefaultTimeout, time.Second, 24*time.Hour, "how long one artifact's fetch may take (1s to 24h)")
}

// daemonFetcher builds the daemon's fetcher: none without an --artifact-source, so a
// repository naming URLs makes the daemon fetch nothing. The cache is --artifact-cache,
// else <state-dir>/artifacts, else a temporary folder that cleanup removes (artifacts are
// then fetched again after a restart).
func (a *artifactFlags) daemonFetcher(stateDir string) (f *fetch.Fetcher, cleanup func(), err error) {
	cleanup = func() {}
	if len(a.sources) == 0 {
		return nil, cleanup, nil
	}
	cache := a.cache
	switch {
	case cache != "":
	case stateDir != "":
		cache = filepath.Join(stateDir, "artifacts")
	default:
		if cache, err = os.MkdirTemp("", "circle-artifacts-"); err != nil {
			return nil, cleanup, fmt.Errorf("artifact cache: %w", err)
		}
		cleanup = func() { os.RemoveAll(cache) }
	}
	opts, err := a.options()
	if err == nil {
		opts.Cache = cache
		f, err = fetch.New(opts)
	}
	if err != nil {
		cleanup()
		return nil, func() {}, err
	}
	return f, func() { f.Close(); cleanup() }, nil
}

// options are the fetch options the flags give, but the cache folder and the mode.
func (a *artifactFlags) options() (fetch.Options, error) {
	opts := fetch.Options{Sources: a.sources, MaxSize: int64(a.maxSize), Timeout: a.timeout}
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return opts, fmt.Errorf("--artifact-ca-file: %w", err)
		}
		opts.RootCAs = x509.NewCertPool()
		if !opts.RootCAs.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("--artifact-ca-file %s: no PEM certificate", a.caFile)
		}
	}
	return opts, nil
}

// sourceNames are f's sources as the log shows them, without store options.
func sourceNames(f *fetch.Fetcher) []string {
	var out []string
	for _, s := range f.Sources() {
		out = append(out, s.String())
	}
	return out
}

// fetcher builds the command's fetcher: online with --fetch, else over the cache only.
// Nil when there is no cache folder to use offline, which leaves url: artifacts "not
// fetched".
func (a *artifactFlags) fetcher() (*fetch.Fetcher, error) {
	if a.fetch && len(a.sources) == 0 {
		return nil, &exitError{code: exitUsage, err: errors.New("--fetch needs an --artifact-source: nothing is fetched from a place the operator did not name")}
	}
	cache := a.cache
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			if a.fetch {
				return nil, fmt.Errorf("--fetch: no cache folder (%v): give --artifact-cache", err)
			}
			return nil, nil
		}
		cache = filepath.Join(base, "circle", "artifacts")
	}
	opts, err := a.options()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	opts.Cache, opts.Offline = cache, !a.fetch
	f, err := fetch.New(opts)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return f, nil
}

// pkgRepo is a repository's settings and registry.
type pkgRepo struct {
	path     string
	settings *repo.Settings
	reg      *registry.Registry
	envs     []string
}

// problemsResult is what -o json prints when the registry has problems.
type problemsResult struct {
	Problems schema.Issues `json:"problems"`
}

// loadRegistry reads circle.yaml and the registry of the folder at path, the way the
// daemon reads a snapshot, and picks the environments: those asked for, or all.
func (f *packageFlags) loadRegistry(cmd *cobra.Command, path string) (*pkgRepo, error) {
	ctx := cmd.Context()
	snap, err := snapshotOf(ctx, path, f.caps)
	if err != nil {
		return nil, err
	}
	settings, problems := repo.LoadSettings(snap.FS)
	if problems != nil {
		return nil, f.problems(cmd, path, pkgIssues(problems))
	}
	all := settings.EnvNames()
	envs := all
	if len(f.envs) > 0 {
		for _, e := range f.envs {
			if !slices.Contains(all, e) {
				return nil, fmt.Errorf("environment %q is not defined in %s (environments: %s)", e, filepath.Join(path, repo.SettingsFile), strings.Join(all, ", "))
			}
		}
		envs = f.envs
	}
	fetcher, err := f.artifacts.fetcher()
	if err != nil {
		return nil, err
	}
	opts := registry.Options{Packages: settings.Paths.Packages, Advisories: settings.Paths.Advisories, Environments: all}
	if fetcher != nil {
		defer fetcher.Close()
		opts.Fetcher = fetcher
	}
	reg, err := registry.Load(ctx, snap.FS, opts)
	var issues schema.Issues
	if errors.As(err, &issues) {
		return nil, f.problems(cmd, path, issues)
	}
	if err != nil {
		return nil, err
	}
	// What was not checked goes to stderr: stdout is the command's result (or its JSON).
	for _, n := range reg.Notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
	}
	return &pkgRepo{path: path, settings: settings, reg: reg, envs: envs}, nil
}

func pkgIssues(ps []repo.Problem) schema.Issues {
	out := make(schema.Issues, len(ps))
	for i, p := range ps {
		out[i] = p.Issue
	}
	return out
}

// problems prints a registry's problems and returns the exit-1 error.
func (f *packageFlags) problems(cmd *cobra.Command, path string, issues schema.Issues) error {
	err := f.out.print(cmd.OutOrStdout(), problemsResult{Problems: issues}, func() string {
		return issues.Error() + fmt.Sprintf("\n\n%d problem(s)\n", len(issues))
	})
	if err != nil {
		return err
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("the registry of %s has %d problem(s)", path, len(issues))}
}

func pkgPathArg(args []string, i int) string {
	if len(args) > i {
		return args[i]
	}
	return "."
}

func pkgTable(write func(w *tabwriter.Writer)) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	write(w)
	w.Flush()
	return b.String()
}

// ---- list

type listEntry struct {
	Name        string   `json:"name"`
	Versions    []string `json:"versions"`
	License     string   `json:"license"`
	Description string   `json:"description,omitempty"`
}

func newPackageListCmd() *cobra.Command {
	f := &packageFlags{}
	cmd := &cobra.Command{
		Use:   "list [path]",
		Short: "List the packages and their versions (with --env, those enabled there)",
		Example: `  circle package list examples
  circle package list examples --env prod -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 0))
			if err != nil {
				return err
			}
			var entries []listEntry
			for _, p := range l.reg.Packages() {
				ms := p.Versions
				if len(f.envs) > 0 {
					ms = nil
					for _, m := range p.Versions {
						if slices.ContainsFunc(f.envs, m.EnabledIn) {
							ms = append(ms, m)
						}
					}
				}
				if len(ms) == 0 {
					continue
				}
				e := listEntry{Name: p.Name, License: ms[len(ms)-1].License, Description: ms[len(ms)-1].Description}
				for _, m := range ms {
					e.Versions = append(e.Versions, m.Version)
				}
				entries = append(entries, e)
			}
			if entries == nil {
				entries = []listEntry{}
			}
			return f.out.print(cmd.OutOrStdout(), entries, func() string {
				if len(entries) == 0 {
					return "no packages\n"
				}
				return pkgTable(func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "NAME\tVERSIONS\tLICENSE\tDESCRIPTION")
					for _, e := range entries {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Name, strings.Join(e.Versions, ", "), e.License, e.Description)
					}
				})
			})
		},
	}
	f.register(cmd, "only versions enabled in these environments")
	return cmd
}

// ---- show

type showVersion struct {
	*registry.Manifest
	File       string                   `json:"file"`
	Digest     string                   `json:"digest"`
	Advisories []registry.IndexAdvisory `json:"advisories,omitempty"`
}

func newPackageShowCmd() *cobra.Command {
	f := &packageFlags{}
	var date pkgDateFlag
	cmd := &cobra.Command{
		Use:   "show <name>[@<version>] [path]",
		Short: "Show a package's versions: license, dependencies, artifacts (verified or not), advisories",
		Example: `  circle package show worker examples
  circle package show api@1.2.0 examples -o json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 1))
			if err != nil {
				return err
			}
			name, version, _ := strings.Cut(args[0], "@")
			p := l.reg.Package(name)
			if p == nil {
				return fmt.Errorf("unknown package %q", name)
			}
			ms := p.Versions
			if version != "" {
				m := p.Version(version)
				if m == nil {
					return fmt.Errorf("%s has no version %q (versions: %s)", name, version, strings.Join(pkgVersions(p.Versions), ", "))
				}
				ms = []*registry.Manifest{m}
			}
			var out []showVersion
			for _, m := range ms {
				sv := showVersion{Manifest: m, File: m.File, Digest: m.Digest()}
				for _, hit := range l.reg.AdvisoriesFor(m, date.at()) {
					if hit.Match.Affected {
						ia := registry.IndexAdvisory{ID: hit.Advisory.ID, Aliases: hit.Advisory.Aliases, Summary: hit.Advisory.Summary, Severity: hit.Advisory.Score()}
						if len(hit.Match.Fixed) > 0 {
							ia.Fixed = hit.Match.Fixed[0]
						}
						sv.Advisories = append(sv.Advisories, ia)
					}
				}
				out = append(out, sv)
			}
			return f.out.print(cmd.OutOrStdout(), out, func() string { return showText(out) })
		},
	}
	f.out.register(cmd)
	f.artifacts.register(cmd, false)
	date.register(cmd)
	return cmd
}

func pkgVersions(ms []*registry.Manifest) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Version
	}
	return out
}

func showText(vs []showVersion) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s %s  (%s)\n", v.Name, v.Version, v.File)
		if v.Description != "" {
			fmt.Fprintf(&b, "  description:   %s\n", v.Description)
		}
		fmt.Fprintf(&b, "  license:       %s\n", v.License)
		fmt.Fprintf(&b, "  digest:        %s\n", v.Digest)
		envs := "all"
		if len(v.Environments) > 0 {
			envs = strings.Join(v.Environments, ", ")
		}
		fmt.Fprintf(&b, "  environments:  %s\n", envs)
		if len(v.Dependencies) == 0 {
			b.WriteString("  dependencies:  none\n")
		} else {
			b.WriteString("  dependencies:\n")
			for _, d := range v.DependencyNames() {
				fmt.Fprintf(&b, "    %s %s\n", d, v.Dependencies[d])
			}
		}
		if len(v.Artifacts) > 0 {
			b.WriteString("  artifacts:\n")
			for _, a := range v.Artifacts {
				fmt.Fprintf(&b, "    %s  %d bytes  sha256:%s  %s\n", a.Path+a.URL, a.Size, a.SHA256, a.Status)
			}
		}
		if len(v.Advisories) == 0 {
			b.WriteString("  advisories:    none\n")
		} else {
			b.WriteString("  advisories:\n")
			for _, a := range v.Advisories {
				fixed := "no fix recorded"
				if a.Fixed != "" {
					fixed = "fixed in " + a.Fixed
				}
				fmt.Fprintf(&b, "    %s  %s  %s: %s\n", a.ID, pkgSeverity(a.Severity.Value, a.Severity.Rating), fixed, a.Summary)
			}
		}
	}
	return b.String()
}

func pkgSeverity(score float64, rating string) string {
	if score < 0 {
		return "severity unknown"
	}
	return fmt.Sprintf("%.1f %s", score, rating)
}

// ---- resolve

type resolveResult struct {
	Environment string                   `json:"environment"`
	Requires    map[string]string        `json:"requires,omitempty"`
	Resolved    bool                     `json:"resolved"`
	Packages    []registry.LockedPackage `json:"packages,omitempty"`
	Explanation string                   `json:"explanation,omitempty"`
	// Lock is the state of the environment's lock file: "up to date", "out of date",
	// "absent".
	Lock     string        `json:"lock"`
	Problems schema.Issues `json:"problems,omitempty"`
	Stats    solver.Stats  `json:"stats"`
}

const (
	lockUpToDate  = "up to date"
	lockOutOfDate = "out of date"
	lockAbsent    = "absent"
)

// resolveEnv resolves one environment, preferring its lock file's versions unless
// upgrade, and compares the result with the lock.
func resolveEnv(ctx context.Context, l *pkgRepo, env string, upgrade bool) (resolveResult, *registry.Resolution, error) {
	rr := resolveResult{Environment: env, Requires: l.reg.Config.Requires(env), Lock: lockAbsent, Problems: l.reg.CheckLock(env)}
	var prefer *registry.Lock
	if !upgrade {
		prefer = l.reg.Locks[env]
	}
	res, err := l.reg.Resolve(ctx, env, registry.ResolveOptions{Prefer: prefer})
	var ns *solver.NoSolutionError
	if errors.As(err, &ns) {
		rr.Explanation, rr.Stats = ns.Explanation, ns.Stats
		return rr, nil, nil
	}
	if err != nil {
		return rr, nil, err
	}
	rr.Resolved, rr.Stats = true, res.Stats
	lock := res.Lock()
	rr.Packages = lock.Packages
	if old := l.reg.Locks[env]; old != nil {
		rr.Lock = lockOutOfDate
		if bytes.Equal(old.JSON(), lock.JSON()) {
			rr.Lock = lockUpToDate
		}
	}
	return rr, res, nil
}

func newPackageResolveCmd() *cobra.Command {
	f := &packageFlags{}
	cmd := &cobra.Command{
		Use:   "resolve [path]",
		Short: "Resolve each environment's requirements to one version per package, or explain why not",
		Long: `Resolve picks, for each environment, one version of every package its requirements
(packages/environments.yaml) reach, newest first among the versions enabled there, and
keeping the versions of its lock file where they still fit. When no choice works it
explains the chain of conflicts. It also compares the result with the lock file, and
reports locked versions whose manifest changed after locking.`,
		Example: `  circle package resolve examples
  circle package resolve examples --env prod -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 0))
			if err != nil {
				return err
			}
			var results []resolveResult
			failed := 0
			for _, env := range l.envs {
				rr, _, err := resolveEnv(cmd.Context(), l, env, false)
				if err != nil {
					return err
				}
				if !rr.Resolved || len(rr.Problems) > 0 {
					failed++
				}
				results = append(results, rr)
			}
			if err := f.out.print(cmd.OutOrStdout(), results, func() string { return resolveText(l, results) }); err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d environment(s) do not resolve cleanly", failed)}
			}
			return nil
		},
	}
	f.register(cmd, "environments to resolve (default all)")
	return cmd
}

func resolveText(l *pkgRepo, results []resolveResult) string {
	var b strings.Builder
	for i, rr := range results {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s%s\n", rr.Environment, requiresText(rr.Requires))
		for _, p := range rr.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
		if !rr.Resolved {
			b.WriteString("  no solution:\n")
			for _, line := range strings.Split(rr.Explanation, "\n") {
				fmt.Fprintf(&b, "    %s\n", line)
			}
			continue
		}
		if len(rr.Packages) == 0 {
			b.WriteString("  no packages\n")
		}
		b.WriteString(pkgIndent(pkgTable(func(w *tabwriter.Writer) {
			for _, p := range rr.Packages {
				fmt.Fprintf(w, "%s\t%s\n", p.Name, p.Version)
			}
		}), "  "))
		lockFile := l.reg.LockFile(rr.Environment)
		switch rr.Lock {
		case lockOutOfDate:
			fmt.Fprintf(&b, "  %s is out of date: run circle package lock\n", lockFile)
		case lockAbsent:
			if len(rr.Requires) > 0 {
				fmt.Fprintf(&b, "  %s does not exist: circle package lock writes it\n", lockFile)
			}
		default:
			fmt.Fprintf(&b, "  %s is up to date\n", lockFile)
		}
	}
	return b.String()
}

func requiresText(reqs map[string]string) string {
	if len(reqs) == 0 {
		return " (requires nothing)"
	}
	var parts []string
	for _, n := range pkgSortedNames(reqs) {
		parts = append(parts, n+" "+reqs[n])
	}
	return " (requires " + strings.Join(parts, ", ") + ")"
}

func pkgSortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func pkgIndent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

// ---- why

type whyResult struct {
	Environment string `json:"environment"`
	*registry.Why
	Resolved    bool   `json:"resolved"`
	Explanation string `json:"explanation,omitempty"`
}

func newPackageWhyCmd() *cobra.Command {
	f := &packageFlags{}
	cmd := &cobra.Command{
		Use:     "why <package> [path]",
		Short:   "Explain why a package is in an environment's resolution: the chain of requirements, and who requires it",
		Example: `  circle package why worker examples --env prod`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 1))
			if err != nil {
				return err
			}
			name := args[0]
			if l.reg.Package(name) == nil {
				return fmt.Errorf("unknown package %q", name)
			}
			var results []whyResult
			unresolved := 0
			for _, env := range l.envs {
				rr, res, err := resolveEnv(cmd.Context(), l, env, false)
				if err != nil {
					return err
				}
				wr := whyResult{Environment: env, Resolved: rr.Resolved, Explanation: rr.Explanation, Why: &registry.Why{Package: name}}
				if res != nil {
					wr.Why = res.Why(name)
				} else {
					unresolved++
				}
				results = append(results, wr)
			}
			if err := f.out.print(cmd.OutOrStdout(), results, func() string { return whyText(results) }); err != nil {
				return err
			}
			if unresolved > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d environment(s) do not resolve", unresolved)}
			}
			return nil
		},
	}
	f.register(cmd, "environments to look in (default all)")
	return cmd
}

func whyText(results []whyResult) string {
	var b strings.Builder
	for _, wr := range results {
		switch {
		case !wr.Resolved:
			fmt.Fprintf(&b, "%s: does not resolve:\n%s\n", wr.Environment, pkgIndent(wr.Explanation+"\n", "  "))
		case wr.Version == "":
			fmt.Fprintf(&b, "%s: %s is not needed\n", wr.Environment, wr.Package)
		default:
			fmt.Fprintf(&b, "%s: %s %s\n", wr.Environment, wr.Package, wr.Version)
			for _, e := range wr.Path {
				fmt.Fprintf(&b, "  %s\n", e)
			}
			var by []string
			for _, e := range wr.Dependents {
				by = append(by, strings.Replace(e.From, "@", " ", 1)+" ("+e.Range+")")
			}
			fmt.Fprintf(&b, "  required by: %s\n", strings.Join(by, ", "))
		}
	}
	return b.String()
}

// ---- scan

// pkgDateFlag is the day allow-lists and withdrawals are judged at.
type pkgDateFlag struct{ value string }

func (d *pkgDateFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&d.value, "date", "", "judge allow-list expiry and withdrawn advisories as of this day, YYYY-MM-DD (default now)")
}

func (d *pkgDateFlag) at() time.Time {
	if t, err := time.Parse(time.DateOnly, d.value); err == nil {
		return t.Add(12 * time.Hour)
	}
	return time.Now()
}

func (d *pkgDateFlag) check() error {
	if d.value == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, d.value); err != nil {
		return fmt.Errorf("--date %q: want YYYY-MM-DD", d.value)
	}
	return nil
}

type scanResult struct {
	*registry.Report
	Resolved    bool   `json:"resolved"`
	Explanation string `json:"explanation,omitempty"`
}

func newPackageScanCmd() *cobra.Command {
	f := &packageFlags{}
	var date pkgDateFlag
	cmd := &cobra.Command{
		Use:   "scan [path]",
		Short: "Check each environment's resolved packages against the OSV advisories and its license policy",
		Long: `Scan resolves each environment and checks every resolved version against the OSV
records in advisories/ and the environment's policies in packages/environments.yaml:
an advisory fails the environment when its severity reaches failOn and no unexpired
allow-list entry accepts it; a license fails when the allow and deny lists leave no way
to satisfy its SPDX expression. For each advisory it shows the smallest fixed version
and the smallest clean version the registry has.`,
		Example: `  circle package scan examples
  circle package scan examples --env prod --date 2026-12-31 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := date.check(); err != nil {
				return err
			}
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 0))
			if err != nil {
				return err
			}
			var results []scanResult
			failed := 0
			for _, env := range l.envs {
				rr, res, err := resolveEnv(cmd.Context(), l, env, false)
				if err != nil {
					return err
				}
				sr := scanResult{Resolved: rr.Resolved, Explanation: rr.Explanation, Report: &registry.Report{Environment: env}}
				if res != nil {
					sr.Report = l.reg.Scan(res, date.at())
				}
				if !sr.Resolved || sr.Failed {
					failed++
				}
				results = append(results, sr)
			}
			if err := f.out.print(cmd.OutOrStdout(), results, func() string { return scanText(results) }); err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d environment(s) fail the scan", failed)}
			}
			return nil
		},
	}
	f.register(cmd, "environments to scan (default all)")
	date.register(cmd)
	return cmd
}

func pkgVerdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func scanText(results []scanResult) string {
	var b strings.Builder
	for i, sr := range results {
		if i > 0 {
			b.WriteByte('\n')
		}
		if !sr.Resolved {
			fmt.Fprintf(&b, "%s: does not resolve:\n%s", sr.Environment, pkgIndent(sr.Explanation+"\n", "  "))
			continue
		}
		fmt.Fprintf(&b, "%s (failOn %s)\n", sr.Environment, sr.FailOn)
		if len(sr.Licenses) == 0 {
			fmt.Fprintf(&b, "  no packages\n%s: passed\n", sr.Environment)
			continue
		}
		if len(sr.Vulnerabilities) == 0 {
			b.WriteString("  advisories: none hit\n")
		} else {
			b.WriteString("  advisories:\n")
			for _, v := range sr.Vulnerabilities {
				fix := "no fix recorded"
				if v.Fixed != "" {
					fix = "fixed in " + v.Fixed
				}
				if v.Upgrade != "" {
					fix += ", upgrade to " + v.Upgrade
				} else if v.Fixed != "" {
					fix += ", not available in " + sr.Environment + " yet"
				}
				fmt.Fprintf(&b, "    %-4s  %s %s  %s  %s  (%s)\n", pkgVerdict(!v.Fails), v.Package, v.Version, v.Advisory, pkgSeverity(v.Score.Value, v.Score.Rating), fix)
				if v.Summary != "" {
					fmt.Fprintf(&b, "          %s\n", v.Summary)
				}
				fmt.Fprintf(&b, "          %s\n", v.Reason)
			}
		}
		b.WriteString("  licenses:\n")
		for _, lf := range sr.Licenses {
			fmt.Fprintf(&b, "    %-4s  %s %s  %s", pkgVerdict(lf.OK), lf.Package, lf.Version, lf.License)
			if lf.Reason != "" {
				fmt.Fprintf(&b, ": %s", lf.Reason)
			}
			b.WriteByte('\n')
		}
		for _, n := range sr.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if sr.Failed {
			fmt.Fprintf(&b, "%s: FAILED\n", sr.Environment)
		} else {
			fmt.Fprintf(&b, "%s: passed\n", sr.Environment)
		}
	}
	return b.String()
}

// ---- lock

type lockResult struct {
	Environment string `json:"environment"`
	File        string `json:"file"`
	// Action is "written", "unchanged", "stale" (with --check), "absent" (with --check),
	// "skipped" (no requirements and no lock) or "failed" (no solution).
	Action      string        `json:"action"`
	Packages    int           `json:"packages"`
	Explanation string        `json:"explanation,omitempty"`
	Problems    schema.Issues `json:"problems,omitempty"`
}

func newPackageLockCmd() *cobra.Command {
	f := &packageFlags{}
	var check, upgrade bool
	cmd := &cobra.Command{
		Use:   "lock [path]",
		Short: "Write each environment's lock file, packages/<env>.lock.json, so a pull request shows what moves",
		Long: `Lock resolves each environment that has requirements (or a lock already) and writes
packages/<env>.lock.json: name, version and manifest digest of every resolved package,
with its artifacts' digests. Versions already locked are kept where they still fit;
--upgrade resolves newest-first instead. --check writes nothing and exits 1 when a lock
is missing or would change, for CI.`,
		Example: `  circle package lock examples
  circle package lock examples --env prod --upgrade
  circle package lock --check`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 0))
			if err != nil {
				return err
			}
			var results []lockResult
			bad := 0
			for _, env := range l.envs {
				file := l.reg.LockFile(env)
				lr := lockResult{Environment: env, File: file}
				if len(l.reg.Config.Requires(env)) == 0 && l.reg.Locks[env] == nil && len(f.envs) == 0 {
					lr.Action = "skipped"
					results = append(results, lr)
					continue
				}
				rr, res, err := resolveEnv(cmd.Context(), l, env, upgrade)
				if err != nil {
					return err
				}
				lr.Problems = rr.Problems
				switch {
				case res == nil:
					lr.Action, lr.Explanation = "failed", rr.Explanation
					bad++
				case check:
					lr.Packages = len(rr.Packages)
					if lr.Action = string(l.reg.LockStateOf(env, res)); lr.Action != string(registry.LockCurrent) {
						bad++
					}
				default:
					lr.Packages = len(rr.Packages)
					written, err := l.reg.WriteLock(l.path, env, res)
					if err != nil {
						return err
					}
					lr.Action = "unchanged"
					if written {
						lr.Action = "written"
					}
				}
				if len(lr.Problems) > 0 {
					bad++
				}
				results = append(results, lr)
			}
			err = f.out.print(cmd.OutOrStdout(), results, func() string {
				var b strings.Builder
				for _, lr := range results {
					switch lr.Action {
					case "failed":
						fmt.Fprintf(&b, "%s: not locked, no solution:\n%s", lr.Environment, pkgIndent(lr.Explanation+"\n", "  "))
					case "skipped":
						fmt.Fprintf(&b, "%s: requires nothing, no lock\n", lr.Environment)
					case "stale":
						fmt.Fprintf(&b, "%s: %s is out of date: run circle package lock\n", lr.Environment, lr.File)
					case "absent":
						fmt.Fprintf(&b, "%s: %s does not exist: run circle package lock\n", lr.Environment, lr.File)
					default:
						fmt.Fprintf(&b, "%s: %s %s (%d packages)\n", lr.Environment, lr.File, lr.Action, lr.Packages)
					}
					for _, p := range lr.Problems {
						fmt.Fprintf(&b, "  %s\n", p)
					}
				}
				return b.String()
			})
			if err != nil {
				return err
			}
			if bad > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d lock(s) not up to date", bad)}
			}
			return nil
		},
	}
	f.register(cmd, "environments to lock (default all with requirements)")
	cmd.Flags().BoolVar(&check, "check", false, "write nothing; exit 1 if a lock is missing or would change")
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "resolve newest-first, ignoring the versions already locked")
	return cmd
}

// ---- index

func newPackageIndexCmd() *cobra.Command {
	f := &packageFlags{}
	var date pkgDateFlag
	cmd := &cobra.Command{
		Use:     "index [path]",
		Short:   "Print the index an environment publishes: resolution, lock, scan report, every package version",
		Example: `  circle package index examples --env prod`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := date.check(); err != nil {
				return err
			}
			l, err := f.loadRegistry(cmd, pkgPathArg(args, 0))
			if err != nil {
				return err
			}
			var out []*registry.Index
			for _, env := range l.envs {
				ix, err := l.reg.Index(cmd.Context(), env, date.at())
				if err != nil {
					return err
				}
				out = append(out, ix)
			}
			return f.out.print(cmd.OutOrStdout(), out, func() string {
				var b strings.Builder
				for _, ix := range out {
					b.Write(ix.JSON())
				}
				return b.String()
			})
		},
	}
	f.register(cmd, "environments (default all)")
	date.register(cmd)
	return cmd
}
