// Package registry is Circle's package registry: the package manifests a repository
// keeps, checked; the packages each environment resolves to, with a PubGrub solver; the
// advisories that hit them; the licenses they carry; and the index and lock published per
// environment.
//
// # Layout
//
// Everything lives in the packages folder (circle.yaml paths.packages, "packages" by
// default) and the advisories folder (paths.advisories, "advisories"):
//
//	packages/<name>/<version>.yaml   one manifest per version: name, version (semver 2.0),
//	                                 description, license (SPDX expression), dependencies
//	                                 (name -> range), environments (optional enablement),
//	                                 artifacts (path or url, sha256, size)
//	packages/environments.yaml       per environment: requires (name -> range) and the
//	                                 vulnerability and license policies (see Config)
//	packages/<env>.lock.json         the lock `circle package lock` writes (see Lock)
//	advisories/*.json                OSV records (https://ossf.github.io/osv-schema/) whose
//	                                 affected[].package.ecosystem is "Circle"
//
// One file per version, rather than one file per package, so adding a release is adding a
// file: a pull request never rewrites the history of older versions, and a manifest's
// digest changes only when that version changes. The name and version in a manifest must
// match its path.
//
// # Terms
//
//   - A version is a semver 2.0 version, parsed strictly (ParseVersion).
//   - A range is what users write to accept versions: "^1.2", "~1.2.3", ">=1.0 <2.0",
//     "1.x", "*", "^1 || ^2" (Range, from Masterminds/semver). A pre-release matches only a
//     range that names one.
//   - An environment's requirements are the root of its resolution; its resolution picks
//     one version of every package reachable from them, newest first, among the versions
//     enabled in that environment (registry/solver).
//   - A lock records a resolution: name -> version and the manifest's digest.
//   - An advisory is an OSV record (registry/osv); it hits a resolved version its ranges or
//     versions list include, unless withdrawn. The environment's policy says which hits fail
//     it: a severity threshold and an allow list with expiry dates.
//   - A license policy is an allow list and a deny list of SPDX identifiers
//     (registry/spdx); an unknown identifier is always an error.
//   - An artifact is a file a version ships, with the size and SHA-256 its bytes must have:
//     a path in the repository, read on every load, or a url in an artifact store. A url is
//     verified only through Options.Fetcher (registry/fetch), which fetches from the
//     sources the operator allows and nowhere else; without one, or offline with nothing
//     cached, it is "not fetched", a note. A url the fetcher refuses, or bytes that differ,
//     is a problem at the artifact's line like a path's.
//   - The index is what is published per environment: the resolution, its lock, every
//     package with its versions, digests, licenses and advisories (Index).
//
// Problems are reported as schema.Issues, each at the file, line, column and field a user
// fixes, the same way `circle validate` reports configuration problems.
package registry
