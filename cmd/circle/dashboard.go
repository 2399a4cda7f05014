package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/circlecore/circle/access"
	"github.com/circlecore/circle/dashboard"
	"github.com/circlecore/circle/redact"
)

// uiFlags are circle serve's dashboard flags. The dashboard (package dashboard) is served
// on the API's listener, under /ui/, reading the API in process.
type uiFlags struct {
	on        bool
	tokenFile string
	hosts     []string
}

func (f *uiFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.on, "ui", true,
		"serve the read-only dashboard at http://<--listen>/ui/: each environment and target's state, revisions,\n"+
			"errors, history and expiring licenses, updated live (server-sent events)")
	cmd.Flags().StringVar(&f.tokenFile, "read-token-file", "",
		"file holding the read token asked of every client of --listen (status API, history, metrics, dashboard),\n"+
			"loopback included: as a bearer token (Prometheus' authorization), or as the password of HTTP basic auth\n"+
			"with any user name (browsers prompt for it). Without it only loopback clients (this machine,\n"+
			"kubectl port-forward) are answered. /healthz and /readyz are open; the trigger has its own token")
	cmd.Flags().StringVar(&f.tokenFile, "ui-token-file", "", "the same as --read-token-file")
	_ = cmd.Flags().MarkDeprecated("ui-token-file", "it guards the whole API now: use --read-token-file")
	cmd.Flags().StringArrayVar(&f.hosts, "allowed-host", nil,
		"a name clients reach --listen by (an Ingress or Service host), repeatable; the Host header must be\n"+
			"an IP address, localhost or one of these, which defeats DNS rebinding")
}

// policy is who may read what --listen serves: one rule for every endpoint.
func (f *uiFlags) policy() (access.Policy, error) {
	p := access.Policy{Hosts: f.hosts, Open: []string{"/healthz", "/readyz"}, OwnAuth: []string{"POST /api/v1/reconcile"}}
	if f.tokenFile == "" {
		return p, nil
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return p, fmt.Errorf("--read-token-file: %w", err)
	}
	// As for the trigger token: white space around it is not part of it, and a short one is
	// refused.
	if p.Token = strings.TrimSpace(string(b)); len(p.Token) < 16 {
		return p, fmt.Errorf("--read-token-file %s: the token is %d characters; use at least 16 (openssl rand -hex 32)", f.tokenFile, len(p.Token))
	}
	return p, nil
}

// handler puts the dashboard in front of the API: /ui/ for the pages, / redirected to
// them, and everything else to the API as before.
func (f *uiFlags) handler(ctx context.Context, api http.Handler, red *redact.Redactor) (http.Handler, error) {
	p, err := f.policy()
	if err != nil {
		return nil, err
	}
	if !f.on {
		return p.Wrap(api), nil
	}
	token := p.Token
	mux := http.NewServeMux()
	mux.Handle(dashboard.Prefix, dashboard.New(dashboard.API(api), dashboard.Options{Redactor: red, Token: token, Done: ctx.Done()}))
	mux.Handle("GET /{$}", http.RedirectHandler(dashboard.Prefix, http.StatusFound))
	mux.Handle("/", api)
	return p.Wrap(mux), nil
}

// announce logs where the dashboard is, and who may see it.
func (f *uiFlags) announce(log zerolog.Logger, addr net.Addr) {
	if !f.on {
		return
	}
	ev := log.Info().Str("url", "http://"+addr.String()+dashboard.Prefix)
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil && !ap.Addr().IsLoopback() && f.tokenFile == "" {
		ev = ev.Str("note", "only loopback clients are served; --read-token-file opens it to others")
	}
	ev.Msg("dashboard")
}
