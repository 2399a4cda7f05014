// Package kubecheck checks rendered Kubernetes objects without a cluster (the pipeline's
// check stage), so `circle validate` and `circle plan` refuse a pull request whose
// manifests a cluster would refuse, or that break the repository's own rules, before
// anything is applied.
//
// Terms:
//
//   - A stream is one environment's rendered manifests: the multi-document YAML that
//     render.Render returns. An object is one document of it.
//   - A check has an ID (CheckIDs). CheckSchema is the OpenAPI schema of the object's
//     kind; the others are policies: Circle's own rules (required labels, no latest tags
//     in production, resource requests, no privileged containers or host namespaces,
//     Ingress hosts unique across environments).
//   - A Policy is what one environment asks of its objects (DefaultPolicy unless
//     circle.yaml says otherwise). An object opts out of named checks with
//     SkipAnnotation.
//   - A Problem names the environment, the file the object was written in (kustomize's
//     origin annotation, which render.Input.Origins turns on) with the line of the field
//     where it can be found, the object (Kind/name), the field path, and the check.
//
// # Schemas
//
// The schemas are the OpenAPI v3 documents of Kubernetes' built-in API groups, as the
// test kube-apiserver (KubernetesVersion; testenv builds it) serves them, merged into one
// file with the prose removed and gzipped into the binary: schemas/kubernetes.json.gz.
// Nothing is fetched at run time. To regenerate the file after the test kube-apiserver
// changes version (make testenv first), run from the repository root:
//
//	go generate ./manifests/
//
// which starts the cached kube-apiserver, reads /openapi/v3 for every group it serves,
// and rewrites the file; commit it with the version bump.
//
// Objects are checked the way `kubeconform -strict` does, with Kubernetes' own rules
// where the schemas leave them implicit:
//
//   - A field a built-in schema with properties does not name is an error: Kubernetes'
//     schemas do not say additionalProperties: false, but its decoder rejects unknown
//     fields in strict mode. A schema with neither properties nor additionalProperties
//     (RawExtension, FieldsV1) takes anything.
//   - Types are strict: "3" is not an integer and 3 is not a string; int-or-string and
//     Quantity take both. A plain yes/no/on/off is a boolean, as kubectl and Circle's
//     apply read YAML 1.1, though YAML 1.2 (and kustomize) keep it a string.
//   - An integer must fit its format, int32 or int64: the Go field behind it holds no
//     more, and the API server refuses what does not fit (replicas: 9223372036854775807).
//   - Required fields, enums, and the keys of lists that server-side apply merges by key
//     (x-kubernetes-list-type map or set: two containers with one name, two ports with one
//     number and protocol) are checked. null is "unset", as the API server reads it.
//   - A kind in one of Kubernetes' own groups that the schemas lack is an error, with the
//     versions that do serve it ("no schema for kind Ingress in apiVersion
//     networking.k8s.io/v1beta1 (Kubernetes v1.37.2 serves it as networking.k8s.io/v1)").
//     A kind in another group is a custom resource: it is checked against the
//     openAPIV3Schema of a CustomResourceDefinition in the same stream, with the API
//     server's structural rules (fields the schema does not name are errors unless
//     x-kubernetes-preserve-unknown-fields; metadata is ObjectMeta), or, with no such CRD,
//     reported as a Note and not checked.
//
// Not checked offline: what only the API server's Go validation knows (name formats,
// immutable fields, cross-field rules), CEL rules (x-kubernetes-validations), string
// formats, and admission. `circle validate --server-side` adds a dry-run apply against a
// real cluster for those.
package kubecheck

//go:generate go run ./internal/gen -o schemas/kubernetes.json.gz
