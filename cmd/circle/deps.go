// The libraries the product is built on, imported here so one build of the binary proves
// they co-resolve at the pinned versions. Each line goes when a domain package imports the
// library for real.
package main

import (
	_ "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	_ "github.com/fluxcd/pkg/ssa"
	_ "github.com/github/go-spdx/v2/spdxexp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/tink-crypto/tink-go/v2/streamingaead"
	_ "go.etcd.io/bbolt"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
	_ "sigs.k8s.io/controller-runtime/pkg/client"
	_ "sigs.k8s.io/kustomize/api/krusty"
)
