package leader_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/circlecore/circle/leader"
	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Two replicas against a real API server: one leads, the other stands by; when the
// leader stops, the standby takes over within the lease, and the Lease names it.
func TestRun_TakeOver(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	opts := func(id string) leader.Options {
		return leader.Options{Namespace: ns, Name: "circle", Identity: id, Lease: 2 * time.Second}
	}
	var leading atomic.Value
	var changes atomic.Int32
	start := func(id string) (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- leader.Run(ctx, kube.Config, opts(id), zerolog.Nop(), func(ctx context.Context) {
				leading.Store(id)
				changes.Add(1)
				<-ctx.Done()
			})
		}()
		return cancel, done
	}
	waitLeader := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for leading.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("leader is %v, want %s", leading.Load(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	stopA, doneA := start("a")
	waitLeader("a")
	stopB, doneB := start("b")
	time.Sleep(3 * time.Second) // more than a lease: b must not take over a live leader
	if leading.Load() != "a" || changes.Load() != 1 {
		t.Fatalf("b took over from a live leader: %v (%d changes)", leading.Load(), changes.Load())
	}

	took := time.Now()
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("a clean stop: %v", err)
	}
	waitLeader("b")
	if d := time.Since(took); d > 3*time.Second {
		t.Errorf("take-over took %v, more than the lease", d)
	}
	lease, err := kube.Clientset(t).CoordinationV1().Leases(ns).Get(context.Background(), "circle", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "b" {
		t.Errorf("lease: %+v %v", lease, err)
	}
	stopB()
	<-doneB
}

// A leader that died without releasing (kill -9) leaves its Lease behind: a standby takes
// over once the lease has run out, not before.
func TestRun_TakeOverFromADeadLeader(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	dead, secs := "dead-replica", int32(2)
	now := metav1.NewMicroTime(time.Now())
	_, err := kube.Clientset(t).CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "circle", Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &dead, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := time.Now()
	led := make(chan time.Duration, 1)
	go func() {
		_ = leader.Run(ctx, kube.Config, leader.Options{Namespace: ns, Name: "circle", Identity: "standby", Lease: 2 * time.Second},
			zerolog.Nop(), func(ctx context.Context) { led <- time.Since(started); <-ctx.Done() })
	}()
	select {
	case d := <-led:
		if d < 1500*time.Millisecond || d > 6*time.Second {
			t.Errorf("took over after %v; want about the 2s lease", d)
		}
	case <-ctx.Done():
		t.Fatal("the standby never took over from the dead leader")
	}
}

// A leader whose Lease was taken (an API server that forgot it, an operator's edit) stops
// leading and Run says so, so the daemon exits rather than run beside another leader.
// Identity and lease length default to the host name and 15s.
func TestRun_LostLease(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t)
	leases := kube.Clientset(t).CoordinationV1().Leases(ns)
	leading := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- leader.Run(context.Background(), kube.Config, leader.Options{Namespace: ns, Name: "circle"}, zerolog.Nop(),
			func(ctx context.Context) { close(leading); <-ctx.Done() })
	}()
	select {
	case <-leading:
	case <-time.After(20 * time.Second):
		t.Fatal("never led")
	}
	host, _ := os.Hostname()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(context.Background(), "circle", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *lease.Spec.HolderIdentity != host || *lease.Spec.LeaseDurationSeconds != 15 {
			t.Fatalf("lease %+v", lease.Spec)
		}
		thief, long := "thief", int32(3600)
		lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = &thief, &long
		_, err = leases.Update(context.Background(), lease, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lost the lease") {
			t.Errorf("Run after losing the lease: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the leader kept leading after its lease was taken")
	}
}

// Settings client-go refuses are errors before anything runs.
func TestRun_BadSettings(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1", QPS: 1} // a QPS needs a burst
	if err := leader.Run(context.Background(), cfg, leader.Options{Namespace: "x", Name: "y", Identity: "me"}, zerolog.Nop(), nil); err == nil {
		t.Error("a config client-go refuses was accepted")
	}
	cfg = &rest.Config{Host: "https://127.0.0.1:1"}
	if err := leader.Run(context.Background(), cfg, leader.Options{Namespace: "x", Name: "y", Identity: "me", Lease: time.Nanosecond}, zerolog.Nop(), nil); err == nil {
		t.Error("a lease too short to renew was accepted")
	}
}
