// Package storage is Circle's backend layer: one small API over gocloud.dev/blob that behaves
// the same on S3, Azure Blob Storage, Google Cloud Storage, a local folder and memory.
//
// A Store is opened from a URL:
//
//	s3://BUCKET?region=R[&endpoint=http://host:port&use_path_style=true]
//	azblob://CONTAINER[?protocol=http&domain=host:port&localemu=true]
//	gs://BUCKET                      (STORAGE_EMULATOR_HOST selects an emulator)
//	file:///ABSOLUTE/PATH            (created if missing)
//	mem://                           (a new, empty, process-local bucket)
//
// Credentials come from each SDK's usual chain (AWS_* variables, shared config and IMDS;
// AZURE_STORAGE_ACCOUNT/KEY/SAS_TOKEN or azidentity's default chain; Google application
// default credentials) and never from this package. URLs in errors and logs go through
// Redacted.
//
// # Terms
//
// A key names an object: a non-empty UTF-8 string of at most 1,024 bytes, shaped like a
// relative path: it does not start or end with "/" and has no empty, "." or ".." segment
// ("a//b", "a/./b"), since file systems and file-backed object servers (versitygw's posix
// backend, MinIO) fold or refuse those. Otherwise "/" has no meaning to the store except in
// List with a Delimiter, where it usually separates the parts of a path-like key. Keys may
// hold spaces, control characters and any Unicode; gocloud escapes what a backend cannot
// store.
//
// Whether a key may be an object and also the prefix of other keys ("x" beside "x/y") is the
// one thing that depends on the server: S3, GCS and Azure allow it; file-backed stores (the
// file backend, versitygw's posix backend, MinIO) refuse the second write with an error and
// leave the first object alone. Circle's own layouts never need both.
//
// Attrs are what the store knows about an object; Metadata is the caller's own string map
// stored with it, for example the keys an encryption layer adds ("circle-key-id",
// "circle-wrapped-key"). SetMetadata replaces it without touching the content where the
// backend can, and says when it could not.
//
// # One behaviour
//
// The conformance suite in storage/storagetest runs against every backend. What it proves,
// and how the differences between backends are hidden:
//
//   - Missing objects: Get, Stat, Copy (source) and SetMetadata return an error for which
//     errors.Is(err, ErrNotFound) holds, whatever the backend said (S3 NoSuchKey/404, Azure
//     BlobNotFound, GCS ErrObjectNotExist, ENOENT). Delete of a missing key succeeds, as it
//     does on S3, so deletes can be retried.
//   - Conditional create: PutOptions.IfNotExists maps to If-None-Match: * on S3 (also on
//     multipart completion), an If-None-Match: * access condition on Azure, ifGenerationMatch=0
//     on GCS, and a lock plus an existence check on file and mem. The cloud
//     backends are atomic against any writer; file is atomic only against writers in the
//     same process. A lost race returns ErrExists.
//   - Metadata keys are lower-cased on write and on read: S3 lower-cases them itself, Azure
//     and GCS keep case, so a key must not depend on it. Two keys that differ only in case
//     are refused. Values are any UTF-8; gocloud escapes what a backend cannot carry. The
//     total size is capped at MaxMetadataSize (S3's 2 KiB limit, counted after escaping) on
//     every backend, so what works on mem works on S3.
//   - Content type: an empty PutOptions.ContentType stores "application/octet-stream" on
//     every backend (gocloud would otherwise sniff the first 512 bytes).
//   - Listing order: objects and prefixes come back in ascending byte order of their keys
//     on every backend. S3, GCS and Azure list in that order themselves; each page is also
//     sorted here, cheaply, in case a server orders a page differently. For file, gocloud's
//     walker is not in key order across directories ("a-b" sorts before "a/b" but is visited
//     after it), which also breaks its page tokens, so file listings are computed here: the
//     folder under the prefix is walked, sorted and paged by key. That costs a walk of that
//     subtree per page.
//   - Get returns the body and the attributes of the same version of an object: the read is
//     made conditional on the ETag (S3, Azure) or reads the generation (GCS) that its Stat
//     saw, and looks again if the object changed in between. file and mem read what is there
//     when the body is opened (a file's metadata is a side file, replaced before the object).
//   - Cancelling the context stops every call, including a Get body that is being read and
//     a Put that is being uploaded; a Put that fails or is cancelled writes nothing.
//
// # Large objects and retries
//
// Put streams: the body is cut into parts of PartSize bytes (default 8 MiB, at least 5 MiB,
// raised so that a known Size fits in 10,000 parts) which S3 and Azure upload Concurrency at a
// time as a multipart upload / block list, and GCS as a resumable upload. At most about
// PartSize × Concurrency bytes are held in memory. Without a Size, S3 objects are limited to
// 10,000 parts (78 GiB at the default part size).
//
// Retries are the SDKs' own: the AWS SDK's standard retryer (3 attempts, exponential backoff
// with jitter, on throttling, 5xx and connection errors), azcore's retry policy (3 retries,
// exponential backoff) and the Google client's, which this package sets to retry every call
// on transient errors (a Put here always writes a whole object, so repeating one is safe)
// up to 5 attempts per call and 3 retries per upload (it would otherwise retry until the
// context ends). Multipart uploads retry failed parts, not whole objects.
//
// # Backend notes
//
//   - file: metadata and content type live in a JSON side file "<name>.attrs" next to each
//     object, so keys ending in ".attrs" are refused. A key cannot be both an object and a
//     "directory" of other keys ("a" and "a/b"), as on any file system. Objects are written
//     to a temporary file and renamed into place; the temporary file is made in os.TempDir
//     when it is on the same file system as the folder (nothing half-written appears in the
//     folder), and next to the object otherwise ("<name>.<hex>.tmp", visible to List while
//     the write lasts). Folders emptied by Delete are left in place.
//   - mem: each Open of "mem://" is a new bucket, gone when the Store is closed.
//   - S3: Copy and the metadata-only SetMetadata use CopyObject, which S3 limits to 5 GiB;
//     larger objects are copied by streaming them through this process. Delete asks for the
//     object first (gocloud does, to report a missing key), so it costs two requests.
//   - Azure: SetMetadata is metadata-only for keys that need no escaping by gocloud (no
//     control characters, none of \ " # % ?) and rewrites the object otherwise.
//   - GCS: SetMetadata patches the metadata, or rewrites the object onto itself on the
//     server when keys are removed; removing all metadata rewrites it through this process.
//     fake-gcs-server, the emulator the tests use, gets paged listings with a delimiter
//     wrong (each page repeats every later prefix); the suite skips those cases there.
package storage
