// Package envelope encrypts objects on their way into a storage.Store and checks them on
// the way out: envelope encryption with a fresh data key per object, wrapped by the
// primary key of a keyring that can rotate.
//
// # Format, version 1
//
// The content of an encrypted object is the plaintext encrypted with Tink's streaming AEAD
// AES-GCM-HKDF (HKDF-SHA256, 32-byte segment keys, 64 KiB ciphertext segments, first
// segment offset 0; Tink's documented wire format: a header of length byte, 32-byte salt
// and 7-byte nonce prefix, then segments each sealed with a 16-byte tag, the last one
// marked as last in its nonce), keyed by a data key of 32 random bytes made for that object
// alone, with associated data "circle-storage/1". Segments are authenticated one by one, so
// an object of any size streams in bounded memory, and a flipped byte, a truncated object
// or reordered segments fail to decrypt.
//
// The data key never leaves the process in the clear. It is encrypted with the keyring's
// primary key (a Tink AEAD keyset of AES-256-GCM keys; each ciphertext carries the key's
// id in its Tink prefix), with associated data "circle-storage/1 <sha256> <size>", which
// ties the wrapped key to the object's recorded digest and size: metadata edited to match
// other content no longer unwraps.
//
// Every object, encrypted or not, carries this metadata (lower-case keys):
//
//	circle-format        "1"
//	circle-encryption    "tink-aes256-gcm-hkdf-64k" or "none"
//	circle-key-id        the id of the keyring key that wrapped the data key (decimal)
//	circle-wrapped-key   the wrapped data key, base64 (standard, padded)
//	circle-sha256        sha256 of the plaintext, hex
//	circle-size          plaintext length in bytes
//	circle-content-type  the plaintext's content type (the backend's is
//	                     application/vnd.circle.encrypted for encrypted objects)
//	circle-revision      the source revision it was built from, when given
//	circle-env           the environment, when given
//	circle-writer        the program that wrote it
//
// Reads verify the sha256 and size of what they return and fail with ErrCorrupt, at the
// end of the stream, when either differs.
//
// # Keyring files
//
// A keyring file is one JSON object. In the clear (circle storage keyring init FILE):
//
//	keyset     Tink's JSON keyset: AES-256-GCM keys with their ids, status and the
//	           primary's id, key material included (seal the file with SOPS, or keep it
//	           in a Secret)
//	history    [{"key": ID, "action": "created"|"rotated"|"retired", "at": RFC 3339}]
//
// Sealed under a KMS key (circle storage keyring init FILE --kms URL), "keyset" is absent
// (an older Circle then refuses the file as having no keyset) and two fields take its place:
//
//	kms               the KMS key, a gocloud.dev/secrets URL: awskms://KEY-ID?region=R
//	                  (or awskms:///ARN, awskms:///alias/NAME), gcpkms://projects/P/
//	                  locations/L/keyRings/R/cryptoKeys/K, azurekeyvault://VAULT.vault.
//	                  azure.net/keys/NAME. Its query is gocloud.dev's (region, profile,
//	                  role, endpoint, context_NAME=VALUE for AWS encryption context).
//	encrypted_keyset  Tink's JSON encrypted keyset: {"encryptedKeyset": base64,
//	                  "keysetInfo": ids, types and status of the keys, no material}.
//	                  encryptedKeyset is Tink's KMS envelope AEAD of the serialized
//	                  (protobuf) keyset with associated data "circle-storage-keyring/1":
//	                  a 4-byte big-endian length n, n bytes of KMS ciphertext of a fresh
//	                  AES-256-GCM key (Tink's serialized AesGcmKey), then that key's
//	                  AES-GCM encryption of the keyset (12-byte IV, ciphertext, 16-byte
//	                  tag).
//
// The keyset is enveloped, not sent to the KMS whole, because KMS Encrypt takes at most
// 4 KiB and a keyring grows by a key at each rotation. Loading a sealed file costs one KMS
// Decrypt; writing it (init, rotate, retire) one Encrypt, under the same key. Objects cost
// no KMS call: data keys are wrapped by the keyring's keys in memory, as with a cleartext
// keyring, not by the KMS per object, which would put the KMS's latency, price, rate limits
// and outages on every read and write. So a KMS key that is disabled or deleted stops the
// next load (naming the key), not a process that has already loaded the keyring. For AWS
// the key is named in Decrypt as well, so the URL is the key that decrypts: a file whose
// URL names another key fails instead of opening under the key its ciphertext names.
//
// # Rotation
//
// Rotate adds a key and makes it primary: new objects use it and every old object still
// opens. Rewrap re-encrypts an object's data key under the primary with a metadata-only
// update where the backend has one (S3, Azure, GCS, local files); the content is not
// touched. Retire disables a key; an object still wrapped by it then fails with
// ErrKeyRetired, naming the key. The keyring file records each event with its time. A
// KMS-sealed file is sealed again under its KMS key at each change.
package envelope
