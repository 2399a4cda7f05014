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

	"github.com/circlecore/circle/dashboard"
	"github.com/circlecore/circle/redact"
)

// uiFlags are circle serve's dashboard flags. The dashboard (package dashboard) is served
// on the API's listener, under /ui/, reading the API in process.
type uiFlags struct {
	on        bool
	tokenFile string
}

func (f *uiFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.on, "ui", true,
		"serve the read-only dashboard at http://<--listen>/ui/: each environment and target's state, revisions,\n"+
			"errors, history and expiring licenses, updated live (server-sent events)")
	cmd.Flags().StringVar(&f.tokenFile, "ui-token-file", "",
		"file holding a token the dashboard asks every client for: as a bearer token, or as the password of\n"+
			"HTTP basic auth with any user name (browsers prompt for it). Without it only loopback clients\n"+
			"(this machine, kubectl port-forward) are served; a reverse proxy on this machine needs the token")
}

// handler puts the dashboard in front of the API: /ui/ for the pages, / redirected to
// them, and everything else to the API as before.
func (f *uiFlags) handler(ctx context.Context, api http.Handler, red *redact.Redactor) (http.Handler, error) {
	if !f.on {
		return api, nil
	}
	token := ""
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--ui-token-file: %w", err)
		}
		// As for the trigger token: white space around it is not part of it, and a short
		// one is refused.
		if token = strings.TrimSpace(string(b)); len(token) < 16 {
			return nil, fmt.Errorf("--ui-token-file %s: the token is %d characters; use at least 16 (openssl rand -hex 32)", f.tokenFile, len(token))
		}
	}
	mux := http.NewServeMux()
	mux.Handle(dashboard.Prefix, dashboard.New(dashboard.API(api), dashboard.Options{Redactor: red, Token: token, Done: ctx.Done()}))
	mux.Handle("GET /{$}", http.RedirectHandler(dashboard.Prefix, http.StatusFound))
	mux.Handle("/", api)
	return mux, nil
}

// announce logs where the dashboard is, and who may see it.
func (f *uiFlags) announce(log zerolog.Logger, addr net.Addr) {
	if !f.on {
		return
	}
	ev := log.Info().Str("url", "http://"+addr.String()+dashboard.Prefix)
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil && !ap.Addr().IsLoopback() && f.tokenFile == "" {
		ev = ev.Str("note", "only loopback clients are served; --ui-token-file opens it to others")
	}
	ev.Msg("dashboard")
}
