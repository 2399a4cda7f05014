// Package dashboard is the daemon's read-only web page: what state each environment is
// in, at a glance, without kubectl. `circle serve` serves it on its --listen address,
// next to the HTTP API, under /ui/:
//
//	/ui/                    overview: each environment × target with its state, the
//	                        revision the target has, the environment's last good revision,
//	                        since when, the last error on one line, the last 10 reconciles,
//	                        and the licenses that expire soon or were refused
//	/ui/environments/{env}  one environment: the whole message, last good revision (how many
//	                        values and secrets, never which), published build, applies per
//	                        cluster target, the repository's problems, licenses, and the
//	                        history of reconciles with their durations and results
//	/ui/revisions/{rev}     one revision: what the status and the histories say of it
//	/ui/events              server-sent events: "status" now and after each reconcile
//
// Open http://127.0.0.1:9090/ui/ while `circle serve` runs (the default --listen).
//
// # Terms
//
//   - Target: where an environment's builds go. "publish" is the storage target the
//     publish stage writes (the status does not keep its name); a cluster target is
//     named as in circle.yaml. An environment with neither yet is "status only".
//   - State: In sync when the environment accepted the last revision, or when this
//     target took it although another failed; Failed otherwise, marked "retrying" when
//     the daemon tries the target again by itself (a failed publish or apply). The
//     target keeps its last good revision meanwhile. Progressing while the daemon
//     reconciles a revision the target does not have yet (the API's "reconciling").
//   - Revision: what the target has (a commit hash, or sha256:… of a folder), shown by
//     its first 12 hex digits; the full one is in its tooltip and on its page.
//
// # Live updates
//
// With JavaScript, the page listens to /ui/events and, when the daemon records a
// reconcile, fetches itself and replaces its content in place; when the stream is
// refused it polls every 10 seconds. Without JavaScript it refreshes every 30 seconds.
// Nothing else needs the script: every page is plain HTML.
//
// # Security
//
// The dashboard only reads: it answers GET and HEAD, and 405 to anything else. It shows
// what the status and the history hold, which the reconciler has redacted already, and
// passes every string, and then every page and event as a whole, through the daemon's
// redactor, so a secret value the daemon decrypted never reaches a browser. html/template
// escapes everything; a Content-Security-Policy allows only the dashboard's own script
// and stylesheet.
//
// Without a token (Options.Token; circle serve --ui-token-file) only clients connecting
// from a loopback address are served: the daemon's own machine, or `kubectl
// port-forward` to its pod. A reverse proxy on the same machine makes every request
// loopback; put a token in front of it. With a token, every client must give it: as
// "Authorization: Bearer <token>", or as the password of HTTP basic auth with any user
// name, which is what a browser prompts for. Use HTTPS (a proxy) off the machine, or the
// token travels in the clear.
//
// # Design
//
// The dependency runs cmd/circle → dashboard → reconciler: the dashboard reads the
// reconciler's Status and state.Entry types through a Source, and the reconciler knows
// nothing of it. API adapts the daemon's own HTTP API (reconciler.Handler) to a Source,
// in process, so the dashboard shows exactly what API clients see and the reconciler's
// state stays private to it; cmd/circle mounts both handlers on one mux.
package dashboard
