// Package deploy holds Circle's own deployment: the kustomize tree base/ with the overlays
// dev/, staging/ and prod/ (see README.md), and systemd/ for a VM. The kustomize tree is
// embedded in the binary, so `circle install` renders exactly the manifests this source
// tree ships, and needs neither a checkout nor a network fetch of them.
package deploy

import (
	"embed"
	"io/fs"
)

// files is the kustomize tree: base and every overlay that builds on it. The systemd unit
// and the README are not manifests and stay out.
//
//go:embed base dev staging prod
var files embed.FS

// FS returns the embedded kustomize tree, rooted so that base/ and the overlays (dev/,
// staging/, prod/) are its top-level folders, as they are in deploy/: render.Render takes it
// with Manifests "." and the overlay's name as Env. It is a function, not a variable, so
// no caller can swap the manifests every other caller installs.
func FS() fs.FS { return files }
