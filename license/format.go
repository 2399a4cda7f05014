package license

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxFileSize is the largest license file or revocation list accepted, in bytes. A license
// is a few hundred bytes; the limit keeps a hostile or mistaken file (a log, an image) from
// costing more than a glance.
const MaxFileSize = 64 << 10

// The armor labels: a file's first line is "-----BEGIN " + label + "-----".
const (
	// LicenseLabel labels a license file.
	LicenseLabel = "CIRCLE LICENSE"
	// RevocationListLabel labels a revocation list.
	RevocationListLabel = "CIRCLE REVOCATION LIST"
)

const (
	armorLicense     = LicenseLabel
	armorRevocations = RevocationListLabel
	armorVersion     = "1"

	formatLicense     = "circle-license/1"
	formatRevocations = "circle-revocations/1"

	// timeLayout is the one time form payloads use: UTC, whole seconds.
	timeLayout = "2006-01-02T15:04:05Z"
	// maxCount is 2^53-1, the largest integer every JSON implementation holds exactly.
	maxCount = 1<<53 - 1
	// maxGrace bounds graceSeconds: a longer grace is a longer license.
	maxGrace = 366 * 24 * time.Hour
	// lineWidth is the base64 line length writers use, as PEM does.
	lineWidth = 64
)

var b64 = base64.StdEncoding.Strict()

// ReadFile reads a license file or revocation list, refusing with ErrTooLarge as soon as
// it is over MaxFileSize, without reading the rest.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, refuse(name, ErrTooLarge, "over %d bytes", MaxFileSize)
	}
	return data, nil
}

// armored is what the armor holds: the signed payload, its signature and the key's id.
type armored struct {
	keyID   string
	sig     []byte
	payload []byte
}

// parseArmor reads the armor labelled label. Its errors are the detail of ErrMalformed.
func parseArmor(label string, data []byte) (armored, error) {
	var a armored
	if bytes.IndexByte(data, '\r') >= 0 {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	data = bytes.Trim(data, " \t\n")
	begin, end := "-----BEGIN "+label+"-----\n", "\n-----END "+label+"-----"
	if !bytes.HasPrefix(data, []byte(begin)) {
		for _, other := range []string{armorLicense, armorRevocations} {
			if other != label && bytes.HasPrefix(data, []byte("-----BEGIN "+other+"-----")) {
				return a, fmt.Errorf("a %s, not a %s", other, label)
			}
		}
		return a, fmt.Errorf("does not start with %q", "-----BEGIN "+label+"-----")
	}
	if len(data) < len(begin)+len(end) || !bytes.HasSuffix(data, []byte(end)) {
		return a, fmt.Errorf("does not end with %q", "-----END "+label+"-----")
	}
	body := data[len(begin) : len(data)-len(end)+1]
	var version, sig string
	var seen [3]bool
	for {
		i := bytes.IndexByte(body, '\n')
		if i < 0 {
			return a, errors.New("no empty line after the headers")
		}
		line := body[:i]
		body = body[i+1:]
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			return a, fmt.Errorf("header %q: want \"Name: value\"", truncate(line))
		}
		var slot int
		switch string(name) {
		case "Version":
			slot, version = 0, string(value)
		case "Key-Id":
			slot, a.keyID = 1, string(value)
		case "Signature":
			slot, sig = 2, string(value)
		default:
			return a, fmt.Errorf("unknown header %q", truncate(name))
		}
		if seen[slot] {
			return a, fmt.Errorf("header %s twice", name)
		}
		seen[slot] = true
	}
	switch {
	case !seen[0]:
		return a, errors.New("no Version header")
	case version != armorVersion:
		return a, fmt.Errorf("version %q: this reader knows version %s only", truncate([]byte(version)), armorVersion)
	case !seen[1]:
		return a, errors.New("no Key-Id header")
	case !validKeyID(a.keyID):
		return a, fmt.Errorf("Key-Id %q: want 16 lower-case hex digits", truncate([]byte(a.keyID)))
	case !seen[2]:
		return a, errors.New("no Signature header")
	}
	s, err := b64.DecodeString(sig)
	if err != nil || len(s) != signatureSize {
		return a, errors.New("Signature: want the base64 of 64 bytes")
	}
	a.sig = s
	// base64's decoder skips line ends, so any wrapping width reads the same.
	p := make([]byte, b64.DecodedLen(len(body)))
	n, err := b64.Decode(p, body)
	if err != nil {
		return a, fmt.Errorf("payload: %w", err)
	}
	if n == 0 {
		return a, errors.New("empty payload")
	}
	a.payload = p[:n]
	return a, nil
}

const signatureSize = 64

// marshalArmor writes the armor exactly as doc.go lays it out.
func marshalArmor(label, keyID string, sig, payload []byte) []byte {
	enc := b64.EncodeToString(payload)
	var b bytes.Buffer
	b.Grow(len(label)*2 + len(enc) + len(enc)/lineWidth + 200)
	b.WriteString("-----BEGIN " + label + "-----\n")
	b.WriteString("Version: " + armorVersion + "\n")
	b.WriteString("Key-Id: " + keyID + "\n")
	b.WriteString("Signature: " + b64.EncodeToString(sig) + "\n\n")
	for len(enc) > lineWidth {
		b.WriteString(enc[:lineWidth])
		b.WriteByte('\n')
		enc = enc[lineWidth:]
	}
	b.WriteString(enc)
	b.WriteString("\n-----END " + label + "-----\n")
	return b.Bytes()
}

// truncate keeps error messages short when a header is long or binary.
func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// Parse reads a license file without checking its signature, for tools that show what a
// file says (`circle license inspect`). Its errors wrap ErrTooLarge or ErrMalformed. Never
// act on what Parse returns: use Verify.
func Parse(data []byte) (*License, error) {
	if len(data) > MaxFileSize {
		return nil, refuse("license", ErrTooLarge, "%d bytes, over %d", len(data), MaxFileSize)
	}
	a, err := parseArmor(armorLicense, data)
	if err != nil {
		return nil, refuse("license", ErrMalformed, "%v", err)
	}
	l, err := decodeLicense(a.payload)
	if err != nil {
		return nil, refuse("license", ErrMalformed, "payload: %v", err)
	}
	l.keyID, l.sig = a.keyID, a.sig
	return l, nil
}

// licenseJSON is the payload as encoding/json sees it; decodeLicense turns it into a
// License and then insists that the License encodes back to the very same bytes.
type licenseJSON struct {
	Binding      *bindingJSON      `json:"binding"`
	ExpiresAt    string            `json:"expiresAt"`
	Features     []string          `json:"features"`
	Format       string            `json:"format"`
	GraceSeconds int64             `json:"graceSeconds"`
	ID           string            `json:"id"`
	IssuedAt     string            `json:"issuedAt"`
	Licensee     string            `json:"licensee"`
	Limits       map[string]int64  `json:"limits"`
	Metadata     map[string]string `json:"metadata"`
	NotBefore    string            `json:"notBefore"`
	Product      string            `json:"product"`
}

type bindingJSON struct {
	Cluster string `json:"cluster"`
	Domain  string `json:"domain"`
}

// decodeJSON decodes a payload strictly: unknown fields and trailing data are errors.
func decodeJSON(payload []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// decodeLicense decodes and checks a payload; the License keeps payload as its signed bytes.
func decodeLicense(payload []byte) (*License, error) {
	var j licenseJSON
	if err := decodeJSON(payload, &j); err != nil {
		return nil, err
	}
	if j.Format != formatLicense {
		return nil, fmt.Errorf("format %q: want %q", truncate([]byte(j.Format)), formatLicense)
	}
	l := &License{
		ID: j.ID, Licensee: j.Licensee, Product: j.Product,
		Features: j.Features, Limits: j.Limits, Metadata: j.Metadata,
	}
	var err error
	if l.IssuedAt, err = parseTime("issuedAt", j.IssuedAt); err != nil {
		return nil, err
	}
	if l.NotBefore, err = parseTime("notBefore", j.NotBefore); err != nil {
		return nil, err
	}
	if l.ExpiresAt, err = parseTime("expiresAt", j.ExpiresAt); err != nil {
		return nil, err
	}
	if j.GraceSeconds < 0 || j.GraceSeconds > int64(maxGrace/time.Second) {
		return nil, fmt.Errorf("graceSeconds: %d is not within 1 and %d", j.GraceSeconds, int64(maxGrace/time.Second))
	}
	l.Grace = time.Duration(j.GraceSeconds) * time.Second
	if j.Binding != nil {
		if j.Binding.Cluster == "" && j.Binding.Domain == "" {
			return nil, errors.New("binding: empty")
		}
		l.Binding = Binding{Cluster: j.Binding.Cluster, Domain: j.Binding.Domain}
	}
	if j.Features == nil {
		return nil, errors.New("features: missing")
	}
	if j.Limits == nil {
		return nil, errors.New("limits: missing")
	}
	if j.Metadata != nil && len(j.Metadata) == 0 {
		return nil, errors.New("metadata: empty (omit it)")
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(appendLicense(make([]byte, 0, len(payload)), l), payload) {
		return nil, errors.New("not in canonical form (see the package documentation)")
	}
	l.payload = payload
	return l, nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not a UTC time like 2006-01-02T15:04:05Z", field, truncate([]byte(s)))
	}
	return t, nil
}

// validate checks a License against the rules of license.cue, in Go, fast; the schema
// test holds the two to the same verdicts. Times must already be UTC whole seconds.
func (l *License) validate() error {
	switch {
	case !validID(l.ID):
		return fmt.Errorf("id %q: want [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters", truncate([]byte(l.ID)))
	case !validText(l.Licensee, 1, 256):
		return errors.New("licensee: want 1 to 256 characters")
	case !validName(l.Product):
		return fmt.Errorf("product %q: want a name: [a-z0-9][a-z0-9._-]*, at most 64 characters", truncate([]byte(l.Product)))
	}
	for i, f := range l.Features {
		if !validName(f) {
			return fmt.Errorf("features: %q: want a name: [a-z0-9][a-z0-9._-]*, at most 64 characters", truncate([]byte(f)))
		}
		if i > 0 && l.Features[i-1] >= f {
			return errors.New("features: not sorted, or listed twice")
		}
	}
	for k, v := range l.Limits {
		if !validName(k) {
			return fmt.Errorf("limits: %q: want a name: [a-z0-9][a-z0-9._-]*, at most 64 characters", truncate([]byte(k)))
		}
		if v < 0 || v > maxCount {
			return fmt.Errorf("limits: %s: %d is not within 0 and 2^53-1", k, v)
		}
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"issuedAt", l.IssuedAt}, {"notBefore", l.NotBefore}, {"expiresAt", l.ExpiresAt}} {
		if err := checkTime(t.name, t.t); err != nil {
			return err
		}
	}
	if !l.ExpiresAt.After(l.NotBefore) {
		return errors.New("expiresAt: not after notBefore")
	}
	if l.Grace < 0 || l.Grace > maxGrace || l.Grace%time.Second != 0 {
		return fmt.Errorf("grace %s: want whole seconds, at most 366 days", l.Grace)
	}
	if l.Binding.Cluster != "" && !validID(l.Binding.Cluster) {
		return fmt.Errorf("binding: cluster %q: want [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters", truncate([]byte(l.Binding.Cluster)))
	}
	if l.Binding.Domain != "" && !validDomain(l.Binding.Domain) {
		return fmt.Errorf("binding: domain %q: want a lower-case DNS name", truncate([]byte(l.Binding.Domain)))
	}
	for k, v := range l.Metadata {
		if !validMetaKey(k) {
			return fmt.Errorf("metadata: key %q: want [A-Za-z0-9][A-Za-z0-9._/-]*, at most 128 characters", truncate([]byte(k)))
		}
		if !validText(v, 0, 1024) {
			return fmt.Errorf("metadata: %s: want at most 1024 characters of UTF-8", k)
		}
	}
	return nil
}

// checkTime refuses times the canonical form cannot hold.
func checkTime(field string, t time.Time) error {
	switch {
	case t.IsZero():
		return fmt.Errorf("%s: missing", field)
	case t.Location() != time.UTC || t.Nanosecond() != 0:
		return fmt.Errorf("%s: want UTC, whole seconds", field)
	case t.Year() < 0 || t.Year() > 9999:
		return fmt.Errorf("%s: year %d out of range", field, t.Year())
	}
	return nil
}

// The character classes of license.cue, as loops: a regexp costs more than the rest of
// the decoding.

func isLower(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || 'A' <= c && c <= 'Z' }

// validName: ^[a-z0-9][a-z0-9._-]{0,63}$
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || !isLower(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLower(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validID: ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validMetaKey: ^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$
func validMetaKey(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' && c != '/' {
			return false
		}
	}
	return true
}

// validDomain: labels of [a-z0-9-], 1 to 63 long, not starting or ending with '-',
// joined by '.', at most 253 in all.
func validDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if c := s[i]; !isLower(c) && c != '-' {
				return false
			}
			continue
		}
		label := s[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// validText: valid UTF-8 of min to max characters (code points, as CUE's MinRunes counts).
func validText(s string, min, max int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := utf8.RuneCountInString(s)
	return min <= n && n <= max
}

func validKeyID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// appendLicense appends l's canonical payload: members in key order, as doc.go defines.
func appendLicense(b []byte, l *License) []byte {
	b = append(b, '{')
	if !l.Binding.IsZero() {
		b = append(b, `"binding":{`...)
		if l.Binding.Cluster != "" {
			b = append(b, `"cluster":`...)
			b = appendString(b, l.Binding.Cluster)
			if l.Binding.Domain != "" {
				b = append(b, ',')
			}
		}
		if l.Binding.Domain != "" {
			b = append(b, `"domain":`...)
			b = appendString(b, l.Binding.Domain)
		}
		b = append(b, "},"...)
	}
	b = append(b, `"expiresAt":`...)
	b = appendTime(b, l.ExpiresAt)
	b = append(b, `,"features":[`...)
	for i, f := range l.Features {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f)
	}
	b = append(b, `],"format":"`+formatLicense+`"`...)
	if l.Grace > 0 {
		b = append(b, `,"graceSeconds":`...)
		b = strconv.AppendInt(b, int64(l.Grace/time.Second), 10)
	}
	b = append(b, `,"id":`...)
	b = appendString(b, l.ID)
	b = append(b, `,"issuedAt":`...)
	b = appendTime(b, l.IssuedAt)
	b = append(b, `,"licensee":`...)
	b = appendString(b, l.Licensee)
	b = append(b, `,"limits":`...)
	b = appendMap(b, l.Limits, func(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) })
	if len(l.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = appendMap(b, l.Metadata, appendString)
	}
	b = append(b, `,"notBefore":`...)
	b = appendTime(b, l.NotBefore)
	b = append(b, `,"product":`...)
	b = appendString(b, l.Product)
	return append(b, '}')
}

// appendMap appends an object with m's members sorted by key. Keys are ASCII, so byte
// order is RFC 8785's UTF-16 order too.
func appendMap[V any](b []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = value(b, m[k])
	}
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, timeLayout)
	return append(b, '"')
}

// appendString escapes as RFC 8785 (and ECMAScript's JSON.stringify) does: the two
// mandatory escapes, the short forms of control characters, \u00xx for the other control
// characters, and every other character as itself. The caller has checked s is UTF-8.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
