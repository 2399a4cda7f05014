// Package fetch fetches the package artifacts a manifest names by URL, verifies them
// against the manifest's size and SHA-256, and keeps what it verified in a cache named by
// digest. It is the registry.Fetcher Circle uses.
//
// # The boundary
//
// A repository is hostile input (docs/security.md), and nothing it holds may make Circle
// reach the network. A manifest naming a URL therefore does not by itself make anything
// fetch it: a Fetcher reaches only the sources the operator allows (Options.Sources, from
// `--artifact-source`), and with none it fetches nothing. The allow check is made on the
// parsed URL, never on its text, and is strict rather than clever:
//
//   - Schemes https, s3, gs, azblob and file only; http is refused (anyone on the path could
//     answer), as are a URL with user info, a query, a fragment, a percent sign (no encoded
//     "..", "/" or host is ever decoded), a backslash, any byte outside printable ASCII, and
//     a path with an empty, "." or ".." segment.
//   - The scheme, the host (lower-cased, the default port dropped) and the path are
//     compared with a source's: the path must lie under the source's path on a "/"
//     boundary ("https://h/releases/" allows "https://h/releases/a.tgz", never
//     "https://h/releases-old/a.tgz").
//   - An https request follows at most 5 redirects, each of which must pass the same check
//     against the same source (a query is allowed there: it is the allowed server's, not
//     the repository's). A redirect anywhere else is refused before it is requested.
//   - Reading stops one byte past the manifest's size (and a server's Content-Length or a
//     store's object size that differs refuses the artifact before its body is read); no
//     artifact larger than Options.MaxSize is asked for; each artifact's fetch is bounded by
//     Options.Timeout. Compression is off, so the bytes hashed are the bytes served.
//   - Storage URLs (s3://, gs://, azblob://, file://) are read through package storage, with
//     the store options (endpoint, region) of the operator's source, never of the artifact
//     URL, which may carry none; credentials come from the daemon's environment, as for
//     publishing.
//
// # The cache
//
// A cache is a folder (the daemon's under its state directory, the CLI's under
// os.UserCacheDir()/circle/artifacts) of files named by the hex SHA-256 of their content.
// A file is written to a temporary name beside its final one, hashed and counted as it is
// written, and renamed into place only when it matches the manifest; a file that does not
// is removed. So a second run with the same artifacts fetches nothing.
//
// A cached file is hashed again each time it is used rather than trusted by its name. That
// costs one read of the file, as a path: artifact in the repository costs on every load,
// and it buys two things: the cache need not be fsynced (a file a power loss leaves short
// or garbled fails its digest, is removed and fetched again), and a cache folder someone
// else can write to can at worst make Circle fetch again, never accept other bytes.
//
// Offline (Options.Offline: `circle validate`, `circle plan` and `circle package` without
// --fetch) a Fetcher only looks in the cache: an artifact found there is verified, one that
// is not is "not fetched" (registry.ErrNotFetched), and the network is never reached. A
// cached file is verified by its bytes, so it counts whatever URL the manifest gives.
package fetch
