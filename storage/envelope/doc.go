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
// # Rotation
//
// Rotate adds a key and makes it primary: new objects use it and every old object still
// opens. Rewrap re-encrypts an object's data key under the primary with a metadata-only
// update where the backend has one (S3, Azure, GCS, local files); the content is not
// touched. Retire disables a key; an object still wrapped by it then fails with
// ErrKeyRetired, naming the key. The keyring file records each event with its time.
package envelope
