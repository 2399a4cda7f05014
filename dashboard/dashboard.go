package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sync/atomic"
	"time"

	"github.com/circlecore/circle/access"
	"github.com/circlecore/circle/redact"
)

// Prefix is the path the dashboard is served under; mount the handler New returns there.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Options tune the dashboard. The zero value serves loopback clients without a token.
type Options struct {
	// Redactor hides secret values in every string a page or event shows. The status is
	// already redacted by the reconciler; this is defence in depth, with the daemon's own
	// redactor (which knows every value it decrypted). Nil means a fresh one.
	Redactor *redact.Redactor
	// Token, when set, is asked of every client: as a bearer token, or as the password of
	// HTTP basic auth with any user name (what a browser prompts for). When empty, only
	// clients connecting from a loopback address are served.
	Token string
	// Poll is how often each open event stream checks the status for a finished
	// reconcile; 0 means one second.
	Poll time.Duration
	// HistoryLimit bounds the reconciles the environment and revision pages read per
	// environment; 0 means 100 (state.DefaultHistory).
	HistoryLimit int
	// Done, when closed, ends every open event stream. An http.Server's Shutdown does not
	// cancel the requests in flight, so without it a stream would hold the shutdown up.
	Done <-chan struct{}
	// Now is the clock ages are computed against; nil means time.Now.
	Now func() time.Time
	// MaxStreams bounds the event streams open at once (each holds a connection and a
	// goroutine for as long as a page stays open); past it a stream is answered 503 and the
	// browser tries again later. 0 means 64.
	MaxStreams int
}

// recentResults is how many of each environment's reconciles the overview shows.
const recentResults = 10

// handler serves the pages.
type handler struct {
	src     Source
	opts    Options
	streams atomic.Int64 // event streams open now
	mux     *http.ServeMux
	pages   map[string]*template.Template
	// css and js are the assets' URLs, with a digest of their content so a browser may
	// cache them for good and still load new ones after an upgrade.
	css, js string
}

// New returns the dashboard: read-only HTML pages about what src reports, served under
// Prefix. See the package documentation for the pages and the authentication rules.
func New(src Source, opts Options) http.Handler {
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handler{src: src, opts: opts, mux: http.NewServeMux(), pages: map[string]*template.Template{},
		css: assetURL("style.css"), js: assetURL("app.js")}
	for _, name := range []string{"overview", "environment", "revision", "error"} {
		h.pages[name] = template.Must(template.New(name).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html"))
	}
	h.mux.HandleFunc("GET "+Prefix+"{$}", h.overview)
	h.mux.HandleFunc("GET "+Prefix+"environments/{env}", h.environment)
	h.mux.HandleFunc("GET "+Prefix+"revisions/{rev}", h.revision)
	h.mux.HandleFunc("GET "+Prefix+"events", h.events)
	h.mux.HandleFunc("GET "+Prefix+"static/{file}", h.static)
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
	return h
}

// ServeHTTP applies what every response shares (headers, read-only, authentication)
// before routing.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Scripts and styles come from the dashboard itself only, so even markup that slipped
	// past escaping could not run anything; no page may be framed (clickjacking).
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, "Read-only", "The dashboard only answers GET and HEAD.")
		return
	}
	switch h.authorize(r) {
	case authMissing:
		hd.Set("WWW-Authenticate", `Basic realm="circle dashboard", charset="UTF-8"`)
		h.fail(w, r, http.StatusUnauthorized, "Sign in", "The dashboard asks for its token: as a bearer token, or as the password of HTTP basic auth (any user name).")
		return
	case authRemote:
		h.fail(w, r, http.StatusForbidden, "Loopback only", "Without a token (circle serve --ui-token-file) the dashboard only serves clients on this machine.")
		return
	}
	h.mux.ServeHTTP(w, r)
}

type auth int

const (
	authOK auth = iota
	authMissing
	authRemote
)

// authorize decides whether r may see the pages, under the daemon's one access policy.
func (h *handler) authorize(r *http.Request) auth {
	switch (access.Policy{Token: h.opts.Token}).Client(r) {
	case access.Allowed:
		return authOK
	case access.NeedsToken:
		return authMissing
	}
	return authRemote
}

// render executes a page into a buffer first, so a template error is a clean 500 rather
// than half a page, and passes the whole page through the redactor last: whatever string
// a view forgot to redact, a secret in it does not leave.
func (h *handler) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, h.opts.Redactor.String("render "+name+": "+err.Error()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, h.opts.Redactor.String(buf.String()))
}

// errorView is the error page.
type errorView struct {
	page
	Code    int
	Heading string
	Text    string
}

func (h *handler) fail(w http.ResponseWriter, _ *http.Request, code int, heading, text string) {
	v := errorView{page: h.page(heading, nil), Code: code, Heading: heading, Text: h.opts.Redactor.String(text)}
	h.render(w, code, "error", v)
}

// static serves the embedded stylesheet and script. Their URLs carry a digest of the
// content, so they can be cached as immutable.
func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "Not found", "There is no file "+name+".")
		return
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	if r.URL.Query().Get("v") == digest(b) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(b)
}

func assetURL(name string) string {
	b, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil {
		panic("dashboard: missing asset " + name) // embedded at build time: cannot happen
	}
	return Prefix + "static/" + name + "?v=" + digest(b)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// done is closed when the request ends or the dashboard is told to stop.
func (h *handler) done(ctx context.Context) <-chan struct{} {
	if h.opts.Done == nil {
		return ctx.Done()
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		select {
		case <-ctx.Done():
		case <-h.opts.Done:
		}
	}()
	return ch
}
