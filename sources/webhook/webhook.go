// Package webhook receives push notifications from Git hosts — GitHub, GitLab,
// Gitea/Forgejo, Bitbucket, and a generic HMAC-SHA256 sender — and turns a valid one for the
// watched repository and ref into a hint on a channel that a source's Watch listens to.
//
// A webhook is a hint, not the source of truth: the source still asks the remote what its
// head is, and keeps polling in case a hook is lost. So a receiver only needs to be right
// about who sent the request, and cheap: it never fetches, and a burst of pushes collapses
// into one pending hint.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
)

// Provider names a Git host's webhook dialect.
type Provider string

// Supported providers.
const (
	GitHub    Provider = "github"
	GitLab    Provider = "gitlab"
	Gitea     Provider = "gitea" // also Forgejo
	Bitbucket Provider = "bitbucket"
	Generic   Provider = "generic"
)

// MaxBody is the largest request body accepted; push payloads are a few KiB.
const MaxBody = 1 << 20

// Receiver is an http.Handler for one provider, one secret and one watched ref.
type Receiver struct {
	Provider Provider
	// Secret is the shared secret: HMAC key, or GitLab's token.
	Secret []byte
	// Repository, if set, must equal the payload's repository full name ("org/repo").
	Repository string
	// Match reports whether a pushed ref (refs/heads/main, refs/tags/v1.2.0) is watched.
	Match func(ref string) bool

	hints chan struct{}
}

// New returns a receiver; its Hints channel carries at most one pending hint.
func New(p Provider, secret []byte, repository string, match func(string) bool) (*Receiver, error) {
	switch p {
	case GitHub, GitLab, Gitea, Bitbucket, Generic:
	default:
		return nil, fmt.Errorf("webhook provider %q: want github, gitlab, gitea, bitbucket or generic", p)
	}
	if len(secret) == 0 {
		return nil, errors.New("webhook: a secret is required")
	}
	return &Receiver{Provider: p, Secret: secret, Repository: repository, Match: match, hints: make(chan struct{}, 1)}, nil
}

// Hints is the channel a source's Watch reads.
func (r *Receiver) Hints() <-chan struct{} { return r.hints }

// BranchOrTags matches one branch and, if tags is set, every tag.
func BranchOrTags(branch string, tags bool) func(string) bool {
	return func(ref string) bool {
		return ref == "refs/heads/"+branch || (tags && strings.HasPrefix(ref, "refs/tags/"))
	}
}

// payload holds the fields of every provider's push event that the receiver reads.
type payload struct {
	Ref        string `json:"ref"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Project struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	Push struct {
		Changes []struct {
			New *struct {
				Type string `json:"type"`
				Name string `json:"name"`
			} `json:"new"`
		} `json:"changes"`
	} `json:"push"`
}

// ServeHTTP implements http.Handler: 202 when a hint was given, 204 for a valid event that
// does not concern the watched ref, 400/401/405/413 for requests that are not valid.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if !r.authentic(req.Header, body) {
		http.Error(w, "signature missing or wrong", http.StatusUnauthorized)
		return
	}
	if !r.isPush(req.Header) {
		w.WriteHeader(http.StatusNoContent) // pings and other events: fine, nothing to do
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "malformed JSON payload", http.StatusBadRequest)
		return
	}
	repo, refs := r.extract(&p)
	if r.Repository != "" && !strings.EqualFold(repo, r.Repository) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for _, ref := range refs {
		if ref == anyRef || r.Match == nil || r.Match(ref) {
			select {
			case r.hints <- struct{}{}:
			default: // a hint is already pending: the coming fetch covers this push too
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *Receiver) authentic(h http.Header, body []byte) bool {
	switch r.Provider {
	case GitLab:
		return subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), r.Secret) == 1
	case Gitea:
		sig := h.Get("X-Forgejo-Signature")
		if sig == "" {
			sig = h.Get("X-Gitea-Signature")
		}
		return r.hmacOK(sig, body)
	case GitHub:
		return r.hmacOK(strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256="), body)
	case Bitbucket:
		return r.hmacOK(strings.TrimPrefix(h.Get("X-Hub-Signature"), "sha256="), body)
	default:
		return r.hmacOK(strings.TrimPrefix(h.Get("X-Signature-256"), "sha256="), body)
	}
}

func (r *Receiver) hmacOK(hexSig string, body []byte) bool {
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, r.Secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func (r *Receiver) isPush(h http.Header) bool {
	switch r.Provider {
	case GitHub:
		return h.Get("X-GitHub-Event") == "push"
	case GitLab:
		e := h.Get("X-Gitlab-Event")
		return e == "Push Hook" || e == "Tag Push Hook"
	case Gitea:
		e := h.Get("X-Forgejo-Event")
		if e == "" {
			e = h.Get("X-Gitea-Event")
		}
		return e == "push"
	case Bitbucket:
		return h.Get("X-Event-Key") == "repo:push"
	default:
		return true
	}
}

// extract returns the repository's full name and the refs the push moved.
func (r *Receiver) extract(p *payload) (string, []string) {
	switch r.Provider {
	case GitLab:
		return p.Project.PathWithNamespace, []string{p.Ref}
	case Bitbucket:
		var refs []string
		for _, c := range p.Push.Changes {
			if c.New == nil {
				continue // a deleted branch
			}
			kind := "heads"
			if c.New.Type == "tag" {
				kind = "tags"
			}
			refs = append(refs, path.Join("refs", kind, c.New.Name))
		}
		return p.Repository.FullName, refs
	default:
		if p.Ref == "" && r.Provider == Generic {
			return p.Repository.FullName, []string{anyRef} // a bare "something changed"
		}
		return p.Repository.FullName, []string{p.Ref}
	}
}

// anyRef stands for a generic hook that names no ref: it hints whatever is watched.
const anyRef = "*"
