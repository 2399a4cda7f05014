package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/redact"
	"github.com/circlecore/circle/repo"
	"github.com/circlecore/circle/sources"
	"github.com/circlecore/circle/sources/dir"
)

type validateOptions struct {
	envs    []string
	origins bool
	keys    keyFlags
	out     outputFlag
}

// validateResult is what `circle validate -o json` prints.
type validateResult struct {
	Valid        bool           `json:"valid"`
	Environments []envResult    `json:"environments,omitempty"`
	Problems     []repo.Problem `json:"problems,omitempty"`
}

type envResult struct {
	Name    string         `json:"name"`
	Values  int            `json:"values"`
	Secrets int            `json:"secrets"`
	Origins []originResult `json:"origins,omitempty"`
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
		Short: "Validate a repository against the CUE schemas (exit 0 valid, 1 invalid, 2 usage)",
		Long: `Validate loads a repository the way the daemon does: circle.yaml, then for each
environment the config layers (config/base, config/<env>), the SOPS secrets
(secrets/<env>.sops.yaml), all merged and unified with the CUE schema in schema/.

Every problem is reported at once, as file:line:col: path: message [environments].
Secret values never appear: they show as **redacted:<hash>**.

Exit codes: 0 valid, 1 invalid, 2 usage or I/O error (a missing key file, say).`,
		Example: `  # the whole repository in the current folder
  circle validate

  # one environment, with the example key, and where every value came from
  circle validate examples --env prod --key-file examples/keys/age.example.key --origins

  # for CI: machine-readable
  circle validate -o json`,
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
	o.keys.register(cmd)
	o.out.register(cmd)
	return cmd
}

// snapshotOf reads a folder the way the daemon's folder source does: regular files only,
// symlinks not followed, so validation sees exactly what the daemon would.
func snapshotOf(ctx context.Context, path string) (*sources.Snapshot, error) {
	src, err := dir.New(path, dir.DefaultOptions())
	if err != nil {
		return nil, err
	}
	return src.Snapshot(ctx)
}

func (o *validateOptions) run(cmd *cobra.Command, path string) error {
	ctx := cmd.Context()
	snap, err := snapshotOf(ctx, path)
	if err != nil {
		return err
	}
	keys, err := o.keys.keyring(ctx)
	if err != nil {
		return err
	}
	red := redact.New()
	r, err := repo.Load(ctx, snap.FS, repo.Options{Keyring: keys, Redactor: red, Envs: o.envs})
	var invalid *repo.Invalid
	if errors.As(err, &invalid) {
		res := validateResult{Problems: invalid.Problems}
		if perr := o.out.print(cmd.OutOrStdout(), res, func() string { return invalidText(invalid) }); perr != nil {
			return perr
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("%s is invalid: %d problem(s)", path, len(invalid.Problems))}
	}
	if err != nil {
		return err
	}
	res := validateResult{Valid: true}
	for _, e := range r.Envs {
		er := envResult{Name: e.Name}
		for _, or := range e.Merged.Origins() {
			er.Values++
			if e.Sensitive(or.Path) {
				er.Secrets++
			}
			if o.origins {
				er.Origins = append(er.Origins, originResult{Path: or.Path, Value: shown(e, or.Path), From: or.String()})
			}
		}
		res.Environments = append(res.Environments, er)
	}
	return o.out.print(cmd.OutOrStdout(), res, func() string { return validText(res) })
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
	for _, k := range splitPath(path) {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// splitPath undoes layers.Join: dots separate keys, a quoted key may hold dots.
func splitPath(p string) []string {
	var out []string
	for p != "" {
		if p[0] == '"' {
			end := strings.Index(p[1:], `"`) + 1
			out = append(out, p[1:end])
			p = strings.TrimPrefix(p[end+1:], ".")
			continue
		}
		k, rest, _ := strings.Cut(p, ".")
		out = append(out, k)
		p = rest
	}
	return out
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
		fmt.Fprintf(&b, "%s: valid (%d values, %d secret)\n", e.Name, e.Values, e.Secrets)
		for _, o := range e.Origins {
			fmt.Fprintf(&b, "  %s = %s  (%s)\n", o.Path, o.Value, o.From)
		}
	}
	return b.String()
}
