package reconciler_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/circlecore/circle/apply"
	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/redact"
)

// healthyCluster applies every environment, or fails those in fail (quoting the value, as
// an API server's error can); it tells each object's health from health (Current when not
// listed) and, from the second apply of an environment on, reports drift when drift is set.
type healthyCluster struct {
	fail   map[string]string
	health map[string]string
	// drift, when set, is what Drift reports; driftErr fails the correcting apply.
	mu       sync.Mutex
	drift    []apply.Drifted
	driftErr error
	applies  int
}

func (c *healthyCluster) Apply(_ context.Context, env string, _ []byte, _ apply.Options) (*apply.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applies++
	if v, ok := c.fail[env]; ok {
		return nil, fmt.Errorf("apply %s: Secret/shop/circle-secrets: invalid value %q", env, v)
	}
	if c.drift != nil {
		if c.driftErr != nil {
			return nil, c.driftErr
		}
		return &apply.Result{Configured: []string{"ConfigMap/shop/a"}, Unchanged: []string{"Deployment/shop/api"}}, nil
	}
	return &apply.Result{Created: []string{"ConfigMap/shop/a", "Deployment/shop/api"}}, nil
}

func (c *healthyCluster) Health(_ context.Context, env string, _ []byte) ([]apply.ObjectHealth, error) {
	var out []apply.ObjectHealth
	for _, s := range []string{"ConfigMap/shop/a", "Deployment/shop/api"} {
		h := apply.ObjectHealth{Subject: s, Status: "Current"}
		if v, ok := c.health[s]; ok {
			h.Status, h.Message = v, "Deployment does not have minimum availability"
		}
		out = append(out, h)
	}
	return out, nil
}

func (c *healthyCluster) Drift(context.Context, string, []byte) ([]apply.Drifted, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drift, nil
}

func (c *healthyCluster) setDrift(d []apply.Drifted, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drift, c.driftErr = d, err
}

// objectsOnly is a cluster connection that can tell neither health nor drifted fields.
type objectsOnly struct{ fakeCluster }

// Each environment's status holds its package set with the advisories that hit it, and
// per cluster target the objects applied with their health and the target's own error:
// staging fails on two targets with two different errors, and each is there, redacted,
// while the environment's message names only one.
func TestReconcile_ClusterStates(t *testing.T) {
	root := copyExamples(t)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+
		"  - name: east\n    kind: cluster\n    environments: [dev, staging]\n"+
		"  - name: west\n    kind: cluster\n    environments: [dev, staging]\n"+
		"  - name: plain\n    kind: cluster\n    environments: [dev]\n")
	advisory := strings.NewReplacer("CIRCLE-2026-0001", "CIRCLE-2026-0002", `"fixed": "0.3.1"`, `"fixed": "0.3.2"`,
		"worker before 0.3.1", "worker before 0.3.2").Replace(readFile(t, root, "advisories/CIRCLE-2026-0001.json"))
	write(t, root, "advisories/CIRCLE-2026-0002.json", advisory)
	east := &healthyCluster{fail: map[string]string{"staging": canary}, health: map[string]string{"Deployment/shop/api": "InProgress"}}
	west := &healthyCluster{fail: map[string]string{"staging": "quota exceeded"}}
	red := redact.New()
	red.Add(canary)
	d := newDaemon(t, nil, memStore(t), reconciler.Options{Keyring: exampleKeys(t), Redactor: red,
		Clusters: map[string]reconciler.Cluster{"east": east, "west": west, "plain": objectsOnly{}}})
	st, err := d.Reconcile(context.Background(), snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}

	dev := envByName(st, "dev")
	if dev.Packages == nil || !dev.Packages.Resolved {
		t.Fatalf("dev's packages: %+v", dev.Packages)
	}
	var names []string
	for _, p := range dev.Packages.Packages {
		names = append(names, p.Name+"@"+p.Version+" "+p.License)
		if p.Name == "worker" && (len(p.Advisories) != 1 || p.Advisories[0].ID != "CIRCLE-2026-0002" || p.Advisories[0].Fixed != "0.3.2" || p.Advisories[0].Severity == "") {
			t.Errorf("worker's advisories: %+v", p.Advisories)
		}
	}
	if want := []string{"api@1.2.0 Apache-2.0", "worker@0.3.1 MIT OR Apache-2.0"}; !slices.Equal(names, want) {
		t.Errorf("dev's packages: %q, want %q", names, want)
	}

	e := dev.Clusters["east"]
	if e == nil || e.Error != "" || e.Revision != st.Revision || e.HealthAt.IsZero() {
		t.Fatalf("dev on east: %+v", e)
	}
	if want := []reconciler.ObjectState{{Subject: "ConfigMap/shop/a", Health: "Current"},
		{Subject: "Deployment/shop/api", Health: "InProgress", Message: "Deployment does not have minimum availability"}}; !slices.Equal(e.Objects, want) {
		t.Errorf("dev's objects on east: %+v", e.Objects)
	}
	if p := dev.Clusters["plain"]; p == nil || len(p.Objects) != 2 || p.Objects[0].Health != reconciler.HealthUnknown || !p.HealthAt.IsZero() {
		t.Errorf("dev on a cluster that cannot tell health: %+v", p)
	}

	staging := envByName(st, "staging")
	if staging.Reason != reconciler.ReasonApplyFailed {
		t.Fatalf("staging: %+v", staging)
	}
	se, sw := staging.Clusters["east"], staging.Clusters["west"]
	if se == nil || sw == nil {
		t.Fatalf("staging's targets: %+v", staging.Clusters)
	}
	if !strings.Contains(se.Error, "invalid value") || strings.Contains(se.Error, canary) || se.ErrorAt.IsZero() {
		t.Errorf("staging's error on east: %q (the secret must be masked)", se.Error)
	}
	if !strings.Contains(sw.Error, "quota exceeded") {
		t.Errorf("staging's error on west: %q", sw.Error)
	}
	if strings.Contains(staging.Message, "east") && strings.Contains(staging.Message, "west") {
		t.Logf("the environment's message names both targets now: %q", staging.Message)
	}
	d.noSecret(t)

	// The next revision carries both over; a target that applies again loses its error.
	delete(west.fail, "staging")
	write(t, root, "config/staging/app.yaml", readFile(t, root, "config/staging/app.yaml")+"\n# touched\n")
	st, err = d.Reconcile(context.Background(), snapshot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	staging = envByName(st, "staging")
	if staging.Clusters["east"].Error == "" || staging.Clusters["west"].Error != "" || len(staging.Clusters["west"].Objects) != 2 {
		t.Errorf("staging after west recovered: east %+v, west %+v", staging.Clusters["east"], staging.Clusters["west"])
	}
	if envByName(st, "dev").Packages == nil || envByName(st, "dev").Clusters["east"] == nil {
		t.Errorf("dev lost its packages or its cluster state: %+v", envByName(st, "dev"))
	}
}

// The drift check records the last drift per environment and target: which objects and
// which fields, corrected when the apply put them back, drifted when it could not; a
// cluster that cannot tell fields has the objects the apply changed. The recorded status
// (status.json) follows, and says when it was amended.
func TestRun_RecordsDrift(t *testing.T) {
	root := copyExamples(t)
	write(t, root, "circle.yaml", readFile(t, root, "circle.yaml")+
		"  - name: east\n    kind: cluster\n    environments: [staging]\n"+
		"  - name: plain\n    kind: cluster\n    environments: [staging]\n")
	east := &healthyCluster{}
	plain := &driftOnce{}
	bucket := memStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	red := redact.New()
	red.Add(canary)
	sink := &fakeSink{}
	d := newDaemon(t, staticSource{snap: snapshot(t, root)}, bucket, reconciler.Options{Keyring: exampleKeys(t), Redactor: red,
		Clusters: map[string]reconciler.Cluster{"east": east, "plain": plain}, DriftInterval: 20 * time.Millisecond,
		Events: map[string]reconciler.EventSink{"plain": sink}})
	go func() { _ = d.Run(ctx) }()
	first := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool { return envByName(st, "staging").Clusters["east"] != nil })

	east.setDrift([]apply.Drifted{{Subject: "ConfigMap/shop/a", Fields: []string{`data.config\.json`, "metadata.labels.team"}}}, nil)
	st := waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool {
		c := envByName(st, "staging").Clusters
		return c["east"] != nil && c["east"].Drift != nil && c["plain"] != nil && c["plain"].Drift != nil
	})
	dr := envByName(st, "staging").Clusters["east"].Drift
	if dr.State != reconciler.DriftCorrected || !dr.FieldsKnown || dr.Revision != first.Revision || len(dr.Objects) != 1 ||
		!slices.Equal(dr.Objects[0].Fields, []string{`data.config\.json`, "metadata.labels.team"}) {
		t.Errorf("east's drift: %+v", dr)
	}
	if st.UpdatedAt.IsZero() || st.ReconciledAt != first.ReconciledAt {
		t.Errorf("an amended status: updatedAt %v, reconciledAt %v (was %v)", st.UpdatedAt, st.ReconciledAt, first.ReconciledAt)
	}
	if pd := envByName(st, "staging").Clusters["plain"].Drift; pd.FieldsKnown || len(pd.Objects) != 1 || pd.Objects[0].Subject != "ConfigMap/shop/a" || pd.State != reconciler.DriftCorrected {
		t.Errorf("plain's drift (objects only): %+v", pd)
	}
	// The correction is a Warning event on the target, naming the object.
	var corrected []string
	for _, e := range sink.take() {
		if e.reason == reconciler.EventDriftCorrected {
			corrected = append(corrected, e.typ+" "+e.message)
		}
	}
	if len(corrected) == 0 || !strings.HasPrefix(corrected[0], apply.EventWarning+" Put back 1 object(s) changed outside Git") ||
		!strings.Contains(corrected[0], "ConfigMap/shop/a") {
		t.Errorf("DriftCorrected events: %v", corrected)
	}

	// A correction that fails leaves the drift standing, with why.
	east.setDrift([]apply.Drifted{{Subject: "Deployment/shop/api", Fields: []string{"spec.replicas"}}}, fmt.Errorf("conflict: token %s", canary))
	st = waitStatus(t, ctx, bucket, func(st *reconciler.Status) bool {
		c := envByName(st, "staging").Clusters["east"]
		return c != nil && c.Drift != nil && c.Drift.State == reconciler.DriftDrifted
	})
	dr = envByName(st, "staging").Clusters["east"].Drift
	if dr.Objects[0].Subject != "Deployment/shop/api" || !strings.Contains(dr.Error, "conflict") || strings.Contains(dr.Error, canary) {
		t.Errorf("east's uncorrected drift: %+v", dr)
	}
	cancel()
	d.noSecret(t)
}

// driftOnce is a cluster that cannot tell fields or health: its second apply finds one
// object drifted and puts it back, the others none.
type driftOnce struct {
	mu sync.Mutex
	n  int
}

func (c *driftOnce) Apply(context.Context, string, []byte, apply.Options) (*apply.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n == 2 {
		return &apply.Result{Configured: []string{"ConfigMap/shop/a"}}, nil
	}
	return &apply.Result{Unchanged: []string{"ConfigMap/shop/a"}}, nil
}
