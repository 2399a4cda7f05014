// Package redact keeps secret values out of everything Circle writes: logs, errors, status,
// metric labels and plan output all pass through one Redactor.
//
// A value is sensitive when it came from a SOPS file, or when its key matches a pattern such
// as password|token|secret|key. Where a value is known field by field (a config tree, a plan
// diff) it is replaced with Mask; where it may hide in free text (an error from a library, a
// log line) String replaces every occurrence of every sensitive value. A mask carries a short
// hash salted per Redactor, so a reviewer sees that a secret changed without seeing it.
package redact

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// DefaultKeyPattern matches the keys whose values are treated as sensitive even in plain
// configuration files.
const DefaultKeyPattern = `(?i)(password|passwd|passphrase|token|secret|private[_-]?key|api[_-]?key|credential)`

// MinLength is the shortest value String hunts for in free text. A shorter secret ("1",
// "yes") would blank out unrelated text everywhere; such values are still masked wherever
// they are handled as fields.
const MinLength = 4

// Redactor replaces sensitive values. The zero value is not usable; call New. It is safe for
// concurrent use.
type Redactor struct {
	salt []byte
	keys *regexp.Regexp

	mu       sync.RWMutex
	values   map[string]struct{}
	replacer *strings.Replacer
}

// Option configures a Redactor.
type Option func(*Redactor)

// WithSalt fixes the salt of the masks' hashes. Without it each Redactor draws a random one,
// so hashes can be compared within a run (a plan's two sides) but not across runs, which
// keeps a low-entropy secret from being guessed by hashing candidates against old output.
func WithSalt(salt []byte) Option { return func(r *Redactor) { r.salt = salt } }

// WithKeyPattern replaces DefaultKeyPattern.
func WithKeyPattern(re *regexp.Regexp) Option { return func(r *Redactor) { r.keys = re } }

// New returns a Redactor that knows no values yet.
func New(opts ...Option) *Redactor {
	r := &Redactor{keys: regexp.MustCompile(DefaultKeyPattern), values: map[string]struct{}{}}
	for _, o := range opts {
		o(r)
	}
	if r.salt == nil {
		r.salt = make([]byte, 16)
		if _, err := rand.Read(r.salt); err != nil {
			panic("redact: no randomness: " + err.Error())
		}
	}
	return r
}

// SensitiveKey reports whether a key name (the last element of a config path, or the whole
// path) marks its value as sensitive.
func (r *Redactor) SensitiveKey(key string) bool { return r.keys.MatchString(key) }

// Mask returns the marker that stands in for value: `**redacted:<8 hex>**`.
func (r *Redactor) Mask(value string) string {
	h := sha256.New()
	h.Write(r.salt)
	h.Write([]byte(value))
	return "**redacted:" + hex.EncodeToString(h.Sum(nil)[:4]) + "**"
}

// Add registers sensitive values, so String and everything built on it hide them.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) < MinLength {
			continue
		}
		if _, ok := r.values[v]; !ok {
			r.values[v] = struct{}{}
			changed = true
		}
	}
	if changed {
		r.rebuild()
	}
}

// rebuild makes one strings.Replacer for every value and its JSON-escaped form (a value with
// a quote or newline appears escaped in JSON logs). Longer values go first so a secret that
// contains another is replaced whole.
func (r *Redactor) rebuild() {
	vals := make([]string, 0, len(r.values))
	for v := range r.values {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	pairs := make([]string, 0, 4*len(vals))
	for _, v := range vals {
		mask := r.Mask(v)
		pairs = append(pairs, v, mask)
		if q, _ := json.Marshal(v); string(q[1:len(q)-1]) != v {
			pairs = append(pairs, string(q[1:len(q)-1]), mask)
		}
	}
	r.replacer = strings.NewReplacer(pairs...)
}

// Len is the number of values registered.
func (r *Redactor) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.values)
}

// String returns s with every registered value replaced by its mask.
func (r *Redactor) String(s string) string {
	r.mu.RLock()
	rep := r.replacer
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// Error wraps err so its message is redacted; errors.Is and errors.As still see the original.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, r: r}
}

type redactedError struct {
	err error
	r   *Redactor
}

func (e *redactedError) Error() string { return e.r.String(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// Writer returns a writer that redacts each Write before passing it on. zerolog writes one
// whole event per Write, so a value never straddles two calls. Writes are serialized: the
// daemon logs from several goroutines at once (environments publish and apply in
// parallel), and the writer underneath (a console writer, a file, a test's buffer) need
// not be safe for that.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &writer{w: w, r: r} }

type writer struct {
	mu sync.Mutex
	w  io.Writer
	r  *Redactor
}

func (w *writer) Write(p []byte) (int, error) {
	s := w.r.String(string(p))
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := io.WriteString(w.w, s); err != nil {
		return 0, err
	}
	// The caller's bytes were all consumed, whatever length the redacted text had.
	return len(p), nil
}
