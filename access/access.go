// Package access decides who may read what the daemon serves: the status API, the history,
// the metrics and the dashboard answer under one policy, so no endpoint is forgotten.
//
//   - Without a read token, only clients on this machine (a loopback address: the daemon's
//     own host, `kubectl port-forward`) are answered; everyone else gets 403.
//   - With a read token, every client presents it, loopback included (a reverse proxy on the
//     same machine would otherwise open everything to everyone): as a bearer token, which is
//     what Prometheus' `authorization` setting sends, or as the password of HTTP basic auth,
//     which is what a browser prompts for.
//   - The Host header must be an IP address, localhost, or a name the operator configured.
//     DNS rebinding, where a page on an attacker's site resolves the attacker's name to
//     127.0.0.1 and reads the loopback listener, needs a name the attacker controls; it cannot
//     pass this check.
//
// Health probes are open to every client with an acceptable Host; an endpoint that carries its
// own credential (the reconcile trigger's token) is exempt from the read token.
package access

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Policy is who may read what the daemon serves. The zero value serves loopback clients
// only, with a Host that is an IP address or localhost.
type Policy struct {
	// Token, when set, is asked of every client (see the package documentation).
	Token string
	// Hosts are names, besides IP addresses and localhost, the Host header may carry
	// (without a port): the names an Ingress or a Service gives the daemon.
	Hosts []string
	// Open are the paths served without the token: health probes.
	Open []string
	// OwnAuth are the routes ("METHOD /path") that check a credential of their own.
	OwnAuth []string
}

// Decision is what Check says of a request.
type Decision int

// The decisions, with the HTTP status Wrap answers each with.
const (
	// Allowed: serve it.
	Allowed Decision = iota
	// BadHost: the Host header names something this daemon is not (421 Misdirected Request).
	BadHost
	// NeedsToken: a token is configured and the request did not carry it (401).
	NeedsToken
	// NotLoopback: no token is configured and the client is not on this machine (403).
	NotLoopback
)

// Check decides whether r may be answered.
func (p Policy) Check(r *http.Request) Decision {
	if !p.hostAllowed(r.Host) {
		return BadHost
	}
	if slices.Contains(p.Open, r.URL.Path) || slices.Contains(p.OwnAuth, r.Method+" "+r.URL.Path) {
		return Allowed
	}
	return p.Client(r)
}

// Client is Check without the Host header and the exempt routes: whether the client may
// read, by its token or its address. For a handler mounted behind Wrap that applies the
// same rule again, such as the dashboard used on its own.
func (p Policy) Client(r *http.Request) Decision {
	if p.Token == "" {
		if IsLoopback(r.RemoteAddr) {
			return Allowed
		}
		return NotLoopback
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	// Constant time, so the token's bytes cannot be found by timing.
	if ok && subtle.ConstantTimeCompare([]byte(got), []byte(p.Token)) == 1 {
		return Allowed
	}
	return NeedsToken
}

func (p Policy) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false // HTTP/1.1 requires Host; an empty one is not a client we know
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" {
		return true
	}
	for _, h := range p.Hosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), host) {
			return true
		}
	}
	return false
}

// Wrap answers every request next would serve under the policy: 421, 401 (with the
// challenges a browser and a bearer client understand) or 403 instead of the content.
func (p Policy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.Check(r) {
		case Allowed:
			next.ServeHTTP(w, r)
		case BadHost:
			http.Error(w, "unknown host: the daemon answers to its address, localhost, or a name given with --allowed-host", http.StatusMisdirectedRequest)
		case NeedsToken:
			w.Header().Add("WWW-Authenticate", `Bearer realm="circle"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="circle", charset="UTF-8"`)
			http.Error(w, "the daemon asks for its read token: as a bearer token, or as the password of HTTP basic auth (any user name)", http.StatusUnauthorized)
		case NotLoopback:
			http.Error(w, "without a read token (circle serve --read-token-file) only clients on this machine are answered", http.StatusForbidden)
		}
	})
}

// IsLoopback reports whether a request's remote address (host:port) is on this machine.
func IsLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
