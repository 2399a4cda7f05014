// Package leader runs a function only while this process holds a Kubernetes Lease, so that
// of several daemon replicas exactly one reconciles and a standby takes over within the
// lease duration when the leader dies. It is client-go's leaderelection with the choices
// the daemon needs made once: a Lease lock, the pod's host name as identity, release on
// a clean stop (so a rolling update hands over at once rather than after a lease).
package leader

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Options say which Lease to hold and how.
type Options struct {
	// Namespace and Name of the Lease.
	Namespace, Name string
	// Identity names this replica in the Lease; default the host name (the pod's name).
	Identity string
	// Lease is how long a leader's claim lasts without renewal, so how long a standby
	// waits after the leader died; default 15s. Renewal is tried for 2/3 of it, every
	// 1/7 of it (client-go's ratios for 15/10/2s).
	Lease time.Duration
}

// Run calls lead with a context that is cancelled when leadership is lost, and returns
// when ctx is done or, having led, it lost the lease (the caller should exit then: a
// replica that lost its lease cannot tell whether another leads now).
func Run(ctx context.Context, cfg *rest.Config, opts Options, log zerolog.Logger, lead func(ctx context.Context)) error {
	if opts.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("leader election: identity: %w", err)
		}
		opts.Identity = host
	}
	if opts.Lease <= 0 {
		opts.Lease = 15 * time.Second
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
	}
	lost := false
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   opts.Lease,
		RenewDeadline:   opts.Lease * 2 / 3,
		RetryPeriod:     opts.Lease / 7,
		ReleaseOnCancel: true,
		Name:            opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info().Str("identity", opts.Identity).Str("lease", opts.Namespace+"/"+opts.Name).Msg("leading: reconciling")
				lead(ctx)
			},
			OnStoppedLeading: func() {
				lost = ctx.Err() == nil
				log.Warn().Str("identity", opts.Identity).Bool("shuttingDown", !lost).Msg("no longer leading")
			},
			OnNewLeader: func(id string) {
				if id != opts.Identity {
					log.Info().Str("leader", id).Msg("standing by: another replica leads")
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	if lost {
		return fmt.Errorf("leader election: lost the lease %s/%s", opts.Namespace, opts.Name)
	}
	return nil
}
