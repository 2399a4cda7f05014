package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/circlecore/circle/reconciler"
)

// serverFlags say where a running daemon's API is.
type serverFlags struct {
	server string
	// readTokenFile holds the read token a daemon with --read-token-file asks of every
	// client, loopback included; CIRCLE_READ_TOKEN otherwise.
	readTokenFile string
	client        *http.Client
}

func (s *serverFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.server, "server", envOr("CIRCLE_SERVER", "http://127.0.0.1:9090"),
		"the daemon's HTTP API (circle serve --listen); also CIRCLE_SERVER")
	cmd.Flags().StringVar(&s.readTokenFile, "read-token-file", "",
		"file with the daemon's read token (circle serve --read-token-file), else CIRCLE_READ_TOKEN; none: no token sent")
}

// readToken is the read token to send, if any.
func (s *serverFlags) readToken() (string, error) {
	if s.readTokenFile == "" {
		return os.Getenv("CIRCLE_READ_TOKEN"), nil
	}
	b, err := os.ReadFile(s.readTokenFile)
	if err != nil {
		return "", fmt.Errorf("--read-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// status reads the daemon's /api/v1/status.
func (s *serverFlags) status(ctx context.Context) (*reconciler.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.server, "/")+"/api/v1/status", nil)
	if err != nil {
		return nil, err
	}
	token, err := s.readToken()
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon at %s: %w", s.server, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("daemon at %s: %s: %s", s.server, resp.Status, strings.TrimSpace(string(body)))
	}
	var st reconciler.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("daemon at %s: %w", s.server, err)
	}
	return &st, nil
}

func (s *serverFlags) http() *http.Client {
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	return s.client
}

func newStatusCmd() *cobra.Command {
	var (
		srv serverFlags
		out outputFlag
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running daemon last did, per environment (exit 1 when not all are ready)",
		Long: `Status asks a running daemon (circle serve) for its last reconcile: the revision, and for
each environment whether it took that revision, why not, its last good revision, what it
last published and what each cluster target last applied.

A daemon started with --read-token-file asks every client for that token: give it with
--read-token-file or CIRCLE_READ_TOKEN.

Exit codes: 0 every environment is ready, 1 one is not, 2 the daemon cannot be reached.`,
		Example: `  circle status
  circle status --server http://circle.circle-system:9090 -o json --read-token-file read-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := srv.status(cmd.Context())
			if err != nil {
				return err
			}
			if err := out.print(cmd.OutOrStdout(), st, func() string { return statusTable(st, time.Now()) }); err != nil {
				return err
			}
			if !st.Ready {
				return &exitError{code: exitFailed, err: fmt.Errorf("revision %s: %s: %s", short(st.Revision), st.Reason, st.Message)}
			}
			return nil
		},
	}
	srv.register(cmd)
	out.register(cmd)
	return cmd
}

// statusTable is the status for people: one line per environment, kubectl-style.
func statusTable(st *reconciler.Status, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Revision %s reconciled %s ago: %s\n\n", short(st.Revision), now.Sub(st.ReconciledAt).Round(time.Second), st.Reason)
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ENVIRONMENT\tREADY\tREASON\tLAST GOOD\tPUBLISHED\tAPPLIED\tMESSAGE")
	for _, e := range st.Environments {
		good, pub := "-", "-"
		if e.LastGood != nil {
			good = short(e.LastGood.Revision)
		}
		if e.Published != nil {
			pub = fmt.Sprintf("%s (#%d)", short(e.Published.Revision), e.Published.Seq)
		}
		var applied []string
		for t, a := range e.Applied {
			applied = append(applied, t+"@"+short(a.Revision))
		}
		sort.Strings(applied)
		ap := "-"
		if len(applied) > 0 {
			ap = strings.Join(applied, ",")
		}
		msg := e.Message
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i] + " …"
		}
		fmt.Fprintf(w, "%s\t%t\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Ready, e.Reason, good, pub, ap, msg)
	}
	w.Flush()
	for _, p := range st.Problems {
		fmt.Fprintf(&b, "\n%s", p)
	}
	if len(st.Problems) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// short is a revision as people quote it: 12 characters of the hash.
func short(rev string) string {
	rev = strings.TrimPrefix(rev, "sha256:")
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func newReconcileCmd() *cobra.Command {
	var (
		srv       serverFlags
		out       outputFlag
		now       bool
		tokenFile string
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile --now",
		Short: "Ask a running daemon to fetch and reconcile now, and wait for the result",
		Long: `Reconcile asks a running daemon to look for a new revision at once (instead of at its next
poll) and to reconcile the current revision again in full, then waits until that
reconcile is recorded and prints the status, as 'circle status' does.

The daemon must be started with --trigger-token-file; give the same token with
--token-file or CIRCLE_TRIGGER_TOKEN. When it also has a read token, give that with
--read-token-file or CIRCLE_READ_TOKEN: the status is read with it.

Exit codes: 0 every environment is ready, 1 one is not, 2 the daemon refused or could not
be reached, or --timeout passed.`,
		Example: `  circle reconcile --now --token-file /etc/circle/keys/trigger-token`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !now {
				return fmt.Errorf("give --now: a reconcile is asked for explicitly")
			}
			token := os.Getenv("CIRCLE_TRIGGER_TOKEN")
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return err
				}
				token = strings.TrimSpace(string(b))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			before, err := srv.status(ctx)
			if err != nil && !strings.Contains(err.Error(), "503") {
				return err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(srv.server, "/")+"/api/v1/reconcile", nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := srv.http().Do(req)
			if err != nil {
				return fmt.Errorf("daemon at %s: %w", srv.server, err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("daemon at %s refused: %s: %s", srv.server, resp.Status, strings.TrimSpace(string(body)))
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "reconcile requested; waiting for it to be recorded")
			for {
				st, err := srv.status(ctx)
				if err == nil && (before == nil || st.ReconciledAt.After(before.ReconciledAt)) {
					if err := out.print(cmd.OutOrStdout(), st, func() string { return statusTable(st, time.Now()) }); err != nil {
						return err
					}
					if !st.Ready {
						return &exitError{code: exitFailed, err: fmt.Errorf("revision %s: %s: %s", short(st.Revision), st.Reason, st.Message)}
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("no reconcile recorded within %s", timeout)
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "reconcile now (required)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file with the daemon's trigger token (else CIRCLE_TRIGGER_TOKEN)")
	durationVar(cmd.Flags(), &timeout, "timeout", 5*time.Minute, time.Second, 24*time.Hour, "how long to wait for the reconcile to be recorded (1s to 24h)")
	srv.register(cmd)
	out.register(cmd)
	return cmd
}
