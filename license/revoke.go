package license

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// Revocation withdraws one license.
type Revocation struct {
	// ID is the revoked license's id.
	ID string
	// Reason says why, for people.
	Reason string
	// RevokedAt is when the issuer revoked it. It is a record: the license is refused as
	// soon as a list naming it is accepted, whatever this says.
	RevokedAt time.Time
}

// RevocationList is a signed list of revoked licenses. Its Serial grows with every list
// the issuer signs, so a verifier can refuse an older one ([ErrReplayed]).
type RevocationList struct {
	// Serial numbers the lists an issuer signs, from 1, each larger than the last.
	Serial uint64
	// IssuedAt is when the list was signed.
	IssuedAt time.Time
	// Entries are sorted by ID, each ID once.
	Entries []Revocation

	keyID   string
	payload []byte
	sig     []byte
}

// Lookup returns the entry revoking the license id, if any.
func (r *RevocationList) Lookup(id string) (Revocation, bool) {
	if r == nil {
		return Revocation{}, false
	}
	i, ok := slices.BinarySearchFunc(r.Entries, id, func(e Revocation, id string) int { return strings.Compare(e.ID, id) })
	if !ok {
		return Revocation{}, false
	}
	return r.Entries[i], true
}

// Add adds an entry, keeping Entries sorted; an id already listed is an error. The
// serial is the caller's to raise before the list is issued again.
func (r *RevocationList) Add(e Revocation) error {
	i, ok := slices.BinarySearchFunc(r.Entries, e.ID, func(e Revocation, id string) int { return strings.Compare(e.ID, id) })
	if ok {
		return fmt.Errorf("revocation list: %s is already revoked (%s, %s)", e.ID, r.Entries[i].RevokedAt.Format(time.RFC3339), r.Entries[i].Reason)
	}
	r.Entries = slices.Insert(r.Entries, i, e)
	return nil
}

// KeyID is the id of the key that signed the list.
func (r *RevocationList) KeyID() string { return r.keyID }

// Marshal returns the list's file as signed, byte for byte; see License.Marshal.
func (r *RevocationList) Marshal() ([]byte, error) {
	if r.payload == nil {
		return nil, errors.New("revocation list: marshal: not signed (use IssueRevocations)")
	}
	return marshalArmor(armorRevocations, r.keyID, r.sig, r.payload), nil
}

// IssueRevocations signs a revocation list and returns its file. IssuedAt defaults to now;
// times are normalised to UTC whole seconds; r is left unchanged. Raise Serial above the
// last list's before calling it: verifiers that saw that list refuse a lower serial.
func IssueRevocations(r *RevocationList, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("issue revocation list: not an Ed25519 private key")
	}
	n := &RevocationList{Serial: r.Serial, IssuedAt: r.IssuedAt, Entries: slices.Clone(r.Entries)}
	if n.IssuedAt.IsZero() {
		n.IssuedAt = time.Now()
	}
	n.IssuedAt = utcSeconds(n.IssuedAt)
	for i := range n.Entries {
		n.Entries[i].RevokedAt = utcSeconds(n.Entries[i].RevokedAt)
	}
	slices.SortStableFunc(n.Entries, func(a, b Revocation) int { return strings.Compare(a.ID, b.ID) })
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("issue revocation list: %w", err)
	}
	payload := appendRevocations(nil, n)
	if err := checkSchema(defRevocations, payload); err != nil {
		return nil, fmt.Errorf("issue revocation list: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	return marshalArmor(armorRevocations, KeyID(pub), ed25519.Sign(key, payload), payload), nil
}

// NextRevocations is the issuer's step of revoking a license: current (the list's file, or
// nil when there is none yet) is verified with keys first, e is added, and the serial is
// raised by one, issued at now. Sign the result with IssueRevocations. Verifiers that have
// seen a list refuse any older one, so a list only moves forward.
func NextRevocations(current []byte, keys *Keyring, e Revocation, now time.Time) (*RevocationList, error) {
	r := &RevocationList{}
	if current != nil {
		var err error
		if r, err = VerifyRevocations(current, keys, 0); err != nil {
			return nil, err
		}
	}
	if err := r.Add(e); err != nil {
		return nil, err
	}
	return &RevocationList{Serial: r.Serial + 1, IssuedAt: now, Entries: r.Entries}, nil
}

// ParseRevocations reads a revocation list without checking its signature; see Parse.
func ParseRevocations(data []byte) (*RevocationList, error) {
	const subject = "revocation list"
	if len(data) > MaxFileSize {
		return nil, refuse(subject, ErrTooLarge, "%d bytes, over %d", len(data), MaxFileSize)
	}
	a, err := parseArmor(armorRevocations, data)
	if err != nil {
		return nil, refuse(subject, ErrMalformed, "%v", err)
	}
	r, err := decodeRevocations(a.payload)
	if err != nil {
		return nil, refuse(subject, ErrMalformed, "payload: %v", err)
	}
	r.keyID, r.sig = a.keyID, a.sig
	return r, nil
}

// VerifyRevocations checks a revocation list's signature with keys and refuses it when its
// serial is below lastSerial, the highest serial accepted before ([ErrReplayed]). A
// Verifier keeps lastSerial itself; see Verifier.LoadRevocations.
func VerifyRevocations(data []byte, keys *Keyring, lastSerial uint64) (*RevocationList, error) {
	const subject = "revocation list"
	if len(data) > MaxFileSize {
		return nil, refuse(subject, ErrTooLarge, "%d bytes, over %d", len(data), MaxFileSize)
	}
	a, err := parseArmor(armorRevocations, data)
	if err != nil {
		return nil, refuse(subject, ErrMalformed, "%v", err)
	}
	if err := checkSignature(subject, keys, a); err != nil {
		return nil, err
	}
	r, err := decodeRevocations(a.payload)
	if err != nil {
		return nil, refuse(subject, ErrMalformed, "payload: %v", err)
	}
	r.keyID, r.sig = a.keyID, a.sig
	if r.Serial < lastSerial {
		return nil, refuse(subject, ErrReplayed, "serial %d is older than serial %d, already accepted", r.Serial, lastSerial)
	}
	return r, nil
}

type revocationsJSON struct {
	Entries  []revocationJSON `json:"entries"`
	Format   string           `json:"format"`
	IssuedAt string           `json:"issuedAt"`
	Serial   uint64           `json:"serial"`
}

type revocationJSON struct {
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	RevokedAt string `json:"revokedAt"`
}

func decodeRevocations(payload []byte) (*RevocationList, error) {
	var j revocationsJSON
	if err := decodeJSON(payload, &j); err != nil {
		return nil, err
	}
	if j.Format != formatRevocations {
		return nil, fmt.Errorf("format %q: want %q", truncate([]byte(j.Format)), formatRevocations)
	}
	if j.Entries == nil {
		return nil, errors.New("entries: missing")
	}
	r := &RevocationList{Serial: j.Serial, Entries: make([]Revocation, len(j.Entries))}
	var err error
	if r.IssuedAt, err = parseTime("issuedAt", j.IssuedAt); err != nil {
		return nil, err
	}
	for i, e := range j.Entries {
		r.Entries[i] = Revocation{ID: e.ID, Reason: e.Reason}
		if r.Entries[i].RevokedAt, err = parseTime(fmt.Sprintf("entries.%d.revokedAt", i), e.RevokedAt); err != nil {
			return nil, err
		}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(appendRevocations(make([]byte, 0, len(payload)), r), payload) {
		return nil, errors.New("not in canonical form (see the package documentation)")
	}
	r.payload = payload
	return r, nil
}

// validate checks the rules of #Revocations in license.cue.
func (r *RevocationList) validate() error {
	if r.Serial < 1 || r.Serial > maxCount {
		return fmt.Errorf("serial %d: want 1 to 2^53-1", r.Serial)
	}
	if err := checkTime("issuedAt", r.IssuedAt); err != nil {
		return err
	}
	for i, e := range r.Entries {
		switch {
		case !validID(e.ID):
			return fmt.Errorf("entries.%d: id %q: want [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters", i, truncate([]byte(e.ID)))
		case !validText(e.Reason, 1, 256):
			return fmt.Errorf("entries.%d: reason: want 1 to 256 characters", i)
		case i > 0 && r.Entries[i-1].ID >= e.ID:
			return fmt.Errorf("entries.%d: %s: not sorted by id, or listed twice", i, e.ID)
		}
		if err := checkTime(fmt.Sprintf("entries.%d.revokedAt", i), e.RevokedAt); err != nil {
			return err
		}
	}
	return nil
}

func appendRevocations(b []byte, r *RevocationList) []byte {
	b = append(b, `{"entries":[`...)
	for i, e := range r.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, e.ID)
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
		b = append(b, `,"revokedAt":`...)
		b = appendTime(b, e.RevokedAt)
		b = append(b, '}')
	}
	b = append(b, `],"format":"`+formatRevocations+`","issuedAt":`...)
	b = appendTime(b, r.IssuedAt)
	b = append(b, `,"serial":`...)
	b = strconv.AppendUint(b, r.Serial, 10)
	return append(b, '}')
}

// SerialStore keeps the highest revocation-list serial a Verifier has accepted, so that
// an older list stays refused after a restart. Without one, a Verifier remembers only
// while it runs.
type SerialStore interface {
	// LoadSerial returns the serial saved last, or 0 when none was.
	LoadSerial() (uint64, error)
	// SaveSerial records serial. It is called with a serial larger than any before.
	SaveSerial(serial uint64) error
}

// SerialFile is a SerialStore in a file holding the serial in decimal, replaced
// atomically on each save. Put it where the service keeps state, not beside the list:
// whoever can replace the list must not be able to reset it.
type SerialFile string

// LoadSerial reads the file; a missing file is serial 0.
func (f SerialFile) LoadSerial() (uint64, error) {
	data, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load revocation serial: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("load revocation serial: %s: %w", f, err)
	}
	return n, nil
}

// SaveSerial writes the file atomically (renameio: a temporary file, synced, renamed), so a
// crash leaves the old serial or the new one.
func (f SerialFile) SaveSerial(serial uint64) error {
	if err := renameio.WriteFile(string(f), []byte(strconv.FormatUint(serial, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("save revocation serial: %w", err)
	}
	return nil
}
