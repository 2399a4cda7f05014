// Package license issues and verifies Circle's signed license files, and the signed
// revocation lists that withdraw them. A service imports it to check, offline and at run
// time, what it is licensed for:
//
//	keys, err := license.ReadKeyring("/etc/circle/license/issuers.pub")
//	v, err := license.NewVerifier(keys, license.DefaultVerifyOptions("shop"))
//	_, err = v.LoadRevocations(revokedListBytes)
//	lic, err := v.VerifyFile("/etc/circle/license/license.lic", time.Now())
//	if errors.Is(err, license.ErrExpired) { ... }
//	if lic.Allows("sso") && lic.Limit("seats") >= users { ... }
//
// and keeps it current with a [Watcher], which re-reads the file (or a mounted Kubernetes
// Secret) when Circle publishes a new one.
//
// # Terms
//
//   - Issuer: whoever holds an Ed25519 private key and signs licenses and revocation
//     lists with it (`circle license issue`, `circle license revoke`).
//   - Key id: the first 8 bytes of SHA-256 over the 32-byte raw Ed25519 public key, as 16
//     lower-case hex digits. It names a key; it is never trusted on its own, as the
//     signature is always checked with the key it names. Reproduce it with
//     `openssl pkey -pubin -in k.pub -outform DER | tail -c 32 | sha256sum | cut -c1-16`.
//   - Keyring: the public keys a verifier trusts, one or more, so an issuer key can be
//     rotated: sign with the new key, keep the old one in the keyring until every license it
//     signed has been re-issued or has expired.
//   - Payload: the license's content in its canonical encoding (below); the signature is
//     over exactly these bytes.
//   - License file: the armored payload, signature and key id. Revocation list: the same
//     armor with its own label and payload. In a repository they are licenses/*.lic and
//     licenses/revoked.list, beside the keyring licenses/issuers.pub.
//
// # License file format, version 1
//
// A license file is ASCII text, at most [MaxFileSize] (64 KiB) long:
//
//	-----BEGIN CIRCLE LICENSE-----
//	Version: 1
//	Key-Id: 8f1d3c0e5a7b9d21
//	Signature: <base64 of the 64-byte Ed25519 signature over the payload bytes>
//
//	<base64 of the payload bytes, standard alphabet with padding, in lines of 64>
//	-----END CIRCLE LICENSE-----
//
// Headers are "Name: value" lines, each exactly once, ended by an empty line; in version 1
// they are Version, Key-Id and Signature, and any other header is malformed. The Version
// header names the armor's layout and is not signed: the payload's own "format" field,
// which is signed, names the payload's version, and the two must agree. A reader refuses a
// Version it does not know, so a later version can change anything. Writers emit exactly
// the layout above ("\n" line ends, headers in that order, a final "\n"). Readers also
// take CRLF line ends, blank lines around the armor and base64 wrapped at any width, since
// Git checkouts and mail clients do that to text; nothing else may surround the armor.
//
// Files larger than 64 KiB are refused before they are parsed ([ErrTooLarge]), and
// [ReadFile] stops reading at the limit, so a huge file costs nothing.
//
// # Payload, version 1
//
// The payload is a JSON object. Its fields (the CUE definition #License in license.cue,
// embedded in this package, is the normative schema):
//
//	format        "circle-license/1"
//	id            the license's id: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters
//	licensee      who holds it: 1 to 256 characters of text
//	product       the product it is for: a name ([a-z0-9][a-z0-9._-]*, at most 64)
//	features      the features it grants: names, sorted, no duplicates; may be empty
//	limits        numeric limits (seats, clusters, environments…): name → integer ≥ 0
//	issuedAt      when it was signed
//	notBefore     when it starts to be valid
//	expiresAt     when it stops being valid; after notBefore
//	graceSeconds  optional: how long after expiresAt it is still accepted, in grace (at
//	              most 366 days)
//	binding       optional: {"cluster": id, "domain": lower-case DNS name}, at least one
//	metadata      optional: free text by key, keys [A-Za-z0-9][A-Za-z0-9._/-]* (at most
//	              128), values at most 1024 characters
//
// The encoding is canonical, so issuing is deterministic and one license has exactly one
// encoding; it is the JSON Canonicalization Scheme (RFC 8785) restricted so that it is
// easy to implement exactly: UTF-8; no whitespace between tokens; object members sorted by
// key (all keys are ASCII, so byte order, code point order and RFC 8785's UTF-16 order
// agree); optional members omitted when empty, required ones always present (features as
// [] and limits as {} when empty); strings escaped as RFC 8785 does (\" \\ \b \t \n \f \r,
// other control characters as \u00xx in lower-case hex, everything else literal); numbers
// are integers in [0, 2^53-1] in plain decimal; times are UTC in RFC 3339 with whole
// seconds, "2006-01-02T15:04:05Z". A payload that is not in canonical form is malformed,
// even when its signature is good: that closes every gap between JSON parsers (duplicate
// keys, case-insensitive matching, escapes, number forms).
//
// Verifiers check the signature over the stored payload bytes, and only then decode them;
// they never re-encode a payload to check a signature, so no encoder change can ever
// invalidate a license. Marshal(Parse(x)) == x holds for every file a writer produced.
//
// # Revocation list format, version 1
//
// The same armor with the label "CIRCLE REVOCATION LIST", the same headers and the same
// canonical encoding, signed by an issuer key in the same keyring. The payload:
//
//	format    "circle-revocations/1"
//	serial    an integer ≥ 1 that grows with every list the issuer signs
//	issuedAt  when the list was signed
//	entries   [{"id": license id, "reason": 1 to 256 characters, "revokedAt": time}],
//	          sorted by id, no id twice; may be empty
//
// A verifier remembers the highest serial it accepted ([SerialStore]) and refuses a list
// with a lower one ([ErrReplayed]): an attacker who can swap files cannot bring back an
// older list that did not yet revoke a license. A list with the serial last seen is
// accepted again (a restart reads the same file). A license is revoked from the moment the
// list that names it is accepted, whatever its revokedAt says.
//
// # Verification
//
// Checks run in this order, and the first that fails is the reason reported, as one of
// the [Reason] errors (use errors.Is): size ([ErrTooLarge]), armor and headers
// ([ErrMalformed]), key id in the keyring ([ErrUnknownKey]), signature ([ErrBadSignature]),
// payload decoding, canonical form and schema ([ErrMalformed]), product
// ([ErrWrongProduct]), revocation ([ErrRevoked]), time window ([ErrNotYetValid],
// [ErrExpired]), binding ([ErrBindingMismatch]).
//
// The time window allows for clocks that disagree by up to ClockSkew (default 5 minutes),
// in the license's favour at both ends. With skew s and grace g a license is
//
//	not yet valid  before notBefore − s
//	valid          from notBefore − s until expiresAt + s
//	in grace       from expiresAt + s until expiresAt + s + g (accepted: State() is StateInGrace)
//	expired        from expiresAt + s + g
//
// A license with a binding is accepted only by a verifier configured with the same
// cluster id and/or a domain equal to, or a subdomain of, the bound domain.
//
// # Schema on the hot path
//
// [Verify] checks the payload with Go code equivalent to the CUE schema, not with CUE
// itself. A test holds the two to the same verdict on some 150 payloads built to sit on
// either side of each rule, and the fuzz target checks that every payload the Go code
// accepts, CUE accepts too. Measured with BenchmarkVerify on one core of a shared Xeon:
// a whole verification takes 63 µs (16,000 a second), of which Ed25519 is 43 µs; the CUE
// schema, compiled once and kept, adds 265 µs and 800 allocations (3,000 a second) and
// serialises callers, since CUE values are not safe for concurrent use. Services verify
// on every reload and some on every request, so the CUE schema runs where speed does not
// matter: [Issue] refuses to sign a payload it rejects, `circle license verify` runs it
// after the Go checks, and [VerifyOptions].Schema turns it on for any verifier.
package license
