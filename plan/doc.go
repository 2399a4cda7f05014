// Package plan is the plan stage of the flow: what moving an organisation's repository from
// one revision (the base) to another (the head) would do to each environment, computed
// offline from the two builds, with no cluster and no storage: `circle plan` for a pull
// request.
//
// Build builds both revisions with the daemon's own stages (package build: load and
// validate, decrypt, licenses, packages, render), skipping, as the daemon does, the
// environments whose inputs are the same at both. Compare diffs the results per
// environment. WriteText, WriteJSON and WriteMarkdown present the Plan.
//
// # Terms
//
//   - Base, head: the revision compared against, and the one planned.
//   - Change: one configuration value, package, license, Kubernetes object or storage
//     file that differs. Expiring licenses are warnings, not changes.
//   - Prune: an object in base's rendered manifests and not in head's: the apply's
//     inventory deletes it from the cluster. Plans flag prunes loudly.
//   - Replaced: an object whose name carries kustomize's content hash
//     (circle-config-<hash>, circle-secrets-<hash>): a change of content is a new name,
//     and the old object is pruned. Plans show the pair as one change, with the fields
//     that differ.
//   - Mask: `**redacted:<8 hex>**`, a salted hash standing in for a secret value
//     (package redact). Both sides use one salt, so a changed secret shows a new mask.
//
// # Secrets
//
// No secret value leaves Compare. Configuration values from SOPS files or under keys
// that look secret are masked leaf by leaf; a Secret's data and stringData values are
// masked after decoding; the hash suffix of a Secret's name (an unsalted hash of its
// data) is masked; storage files are shown by size, without digests; and the whole plan
// then passes through the redactor, which knows every secret of both revisions, to catch
// a value copied into a plain field.
//
// # Exit codes
//
// Summary.Invalid (head has problems, or an environment fails to build) and
// Summary.HasChanges decide `circle plan`'s exit code: 1 when invalid, else 2 with
// changes, else 0, as `terraform plan -detailed-exitcode`.
//
// # JSON schema (circle.plan/v1)
//
// WriteJSON writes a Plan. The layout is stable: fields are only added under the same
// schema version; every list is present ([] when empty) and sorted as stated, so two
// plans of the same revisions are byte-identical.
//
//	{
//	  "schema": "circle.plan/v1",
//	  "base": "<commit hash>",                 // or a label
//	  "head": "<commit hash>",                 // or "worktree sha256:<digest>"
//	  "problems": [                            // head's validation problems
//	    {"location": "config/prod/app.yaml:2:13", "path": "app.replicas",
//	     "message": "invalid value 40 (out of bound <=20)", "environments": ["prod"]}
//	  ],
//	  "baseProblems": 0,                       // base with problems is compared as empty
//	  "environments": [                        // head's circle.yaml order, then removed ones
//	    {
//	      "name": "prod",
//	      "status": "changed",                 // unchanged | changed | failed | removed
//	      "error": "…",                        // why head does not build it (failed)
//	      "baseError": "…",                    // why base did not
//	      "config": [                          // by path
//	        {"path": "app.replicas", "action": "changed",   // added | changed | removed
//	         "from": "4", "to": "5",           // JSON text; secrets as masks
//	         "sensitive": false, "origin": "config/prod/app.yaml:2:13"}
//	      ],
//	      "packages": [                        // by name
//	        {"name": "worker", "action": "upgraded",        // added | removed | upgraded | downgraded | changed
//	         "from": "0.3.1", "to": "0.4.0",
//	         "why": ["api@1.3.0 depends on it: ^0.3.0 → ^0.4.0"],
//	         "license": "MIT", "licenseOK": true, "licenseReason": "",
//	         "advisories": ["CIRCLE-2027-0001"]}
//	      ],
//	      "advisories": [                      // new hits at head, by package, version, id
//	        {"package": "worker", "version": "0.4.0", "id": "CIRCLE-2027-0001",
//	         "summary": "…", "severity": "HIGH", "score": 8.1, "fixed": "0.4.1",
//	         "fails": true, "reason": "…"}
//	      ],
//	      "licenses": [                        // by id
//	        {"id": "lic_example_corp", "file": "licenses/circle-demo.lic", "licensee": "…",
//	         "action": "revoked",              // issued | changed | revoked | refused | accepted | removed | expiring
//	         "details": ["limits.seats: 25 → 50"], "expiresAt": "2036-12-31T23:59:59Z",
//	         "reason": "Revoked"}
//	      ],
//	      "objects": [                         // by id
//	        {"id": "Deployment/shop-prod/shop-api", "apiVersion": "apps/v1",
//	         "kind": "Deployment", "namespace": "shop-prod", "name": "shop-api",
//	         "action": "changed",              // created | changed | replaced | deleted
//	         "previousName": "",               // replaced: the pruned hash-named object
//	         "prune": false,                   // deleted: true
//	         "fields": [                       // document order
//	           {"path": "spec.replicas", "action": "changed", "from": "4", "to": "5"},
//	           {"path": "data.\"config.json\"", "action": "changed",
//	            "diff": "@@ -4,3 +4,3 @@\n-    \"replicas\": 4\n+    \"replicas\": 5"}
//	         ]}
//	      ],
//	      "storage": [                         // by path; sizes in bytes, no digests
//	        {"path": "config.json", "action": "changed", "size": 343, "previousSize": 344}
//	      ],
//	      "counts": {"config": 1, "packages": 0, "advisories": 0, "licenses": 0,
//	                 "warnings": 0, "created": 0, "changed": 1, "replaced": 1,
//	                 "deleted": 0, "storage": 2, "errors": 0}
//	    }
//	  ],
//	  "summary": {"environments": 3, "changed": 1, "failed": 0, "prunes": 0,
//	              "hasChanges": true, "invalid": false}
//	}
//
// Field paths within an object are dotted; a key that is not an identifier is quoted
// (data."config.json"); a list of maps with distinct "name"s is matched by name
// (containers[name=api]), another list of maps by index (sources[0]), a list of scalars
// compared whole.
//
// # Markdown
//
// WriteMarkdown writes a pull-request comment: Marker first (a hidden HTML comment a bot
// finds its earlier comment by), a summary table, prunes, head's problems, then one
// collapsible <details> per environment with changes (open when it fails). Objects
// changed alike (three or more of a kind with the same field changes: a label or image
// bumped across a kustomize base) are one item, their diff shown once. It never
// exceeds MarkdownOptions.MaxSize (60,000 bytes by default, under GitHub's 65,536
// characters): long values, diffs and field lists are cut with a note, and when the
// sections still do not fit, each gets a fair share of the room and says how many items
// it left out.
package plan
