package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// EventComponent is the source component of the Events a Recorder writes: what `kubectl
// describe` shows in the From column.
const EventComponent = "circle"

// Event types, as Kubernetes defines them.
const (
	EventNormal  = corev1.EventTypeNormal
	EventWarning = corev1.EventTypeWarning
)

// Defaults of RecorderOptions: client-go's own (tools/record), so Circle floods an API
// server no more than any controller does.
const (
	DefaultEventBurst = 25
	DefaultEventQPS   = 1. / 300.
)

// MaxEventMessage is the longest message a Recorder sends, in bytes. events.k8s.io/v1
// refuses a note over 1 kB, and a `kubectl describe` line is no place for a whole error;
// the log has it in full.
const MaxEventMessage = 1024

// ErrNoInventory is returned by Recorder.Event when the environment has no inventory
// ConfigMap yet, so the event was not recorded.
var ErrNoInventory = errors.New("no inventory ConfigMap to attach the event to")

// RecorderOptions tune a Recorder.
type RecorderOptions struct {
	// InventoryNamespace is where the inventory ConfigMaps are, as Options.InventoryNamespace
	// of the applies; the events go there too. Default "default".
	InventoryNamespace string
	// Burst and QPS bound the events about one inventory ConfigMap of one type and reason:
	// Burst at once, then QPS per second (a token bucket; client-go's spam filter). 0
	// means DefaultEventBurst and DefaultEventQPS: 25, then one per 5 minutes.
	Burst int
	QPS   float32
	// Host names this daemon in the events' source (the pod name); optional.
	Host string
	// Log receives the events the API server refused or that could not be sent.
	Log zerolog.Logger
}

// Recorder writes Kubernetes Events (core/v1) about what Circle did to an environment on
// one cluster. Each event is attached to the environment's inventory ConfigMap
// (circle-inventory-<env>), so `kubectl describe configmap circle-inventory-dev` lists
// them, as `kubectl describe kustomization` lists Flux's.
//
// It sends through client-go's event broadcaster, as controllers do: asynchronously (a
// reconcile never waits on the API server for an event, and a queue of 1,000 drops rather
// than blocks), retried while the API server is unreachable, and correlated: an event
// identical to one already sent patches its count; more than 9 of the same reason with
// different messages within 10 minutes are combined into one ("combined from similar
// events"); and the spam filter lets Burst events through per ConfigMap, type and reason,
// then QPS. Zero Recorder is not usable; call NewRecorder.
type Recorder struct {
	cs          kubernetes.Interface
	ns          string
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

// NewRecorder starts a Recorder for the cluster at cfg. Close stops it.
func NewRecorder(cfg *rest.Config, opts RecorderOptions) (*Recorder, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("event recorder for %s: %w", cfg.Host, err)
	}
	return newRecorder(cs, opts), nil
}

func newRecorder(cs kubernetes.Interface, opts RecorderOptions) *Recorder {
	if opts.InventoryNamespace == "" {
		opts.InventoryNamespace = "default"
	}
	if opts.Burst == 0 {
		opts.Burst = DefaultEventBurst
	}
	if opts.QPS == 0 {
		opts.QPS = DefaultEventQPS
	}
	// client-go logs a refused event through klog, as plain text; the daemon's log is JSON,
	// so the sink below logs instead and klog hears nothing from the broadcaster.
	ctx := klog.NewContext(context.Background(), logr.Discard())
	b := record.NewBroadcaster(record.WithContext(ctx), record.WithCorrelatorOptions(record.CorrelatorOptions{
		BurstSize:   opts.Burst,
		QPS:         opts.QPS,
		SpamKeyFunc: spamKey,
	}))
	b.StartRecordingToSink(&loggingSink{EventSink: &typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")}, log: opts.Log})
	return &Recorder{cs: cs, ns: opts.InventoryNamespace, broadcaster: b,
		recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventComponent, Host: opts.Host})}
}

// spamKey is client-go's spam key (source, object, type) plus the reason: a run of Applied
// events must not use up the tokens an ApplyFailed or RolledBack after it needs.
func spamKey(e *corev1.Event) string {
	o := e.InvolvedObject
	return strings.Join([]string{e.Source.Component, e.Source.Host, o.Kind, o.Namespace, o.Name, string(o.UID), o.APIVersion, e.Type, e.Reason}, "\x00")
}

// Event records an event of eventType (EventNormal, EventWarning) with reason (CamelCase)
// and message about env, on its inventory ConfigMap, and returns before it is sent. The
// message must be free of secrets already: it goes to the API server as it is (cut to
// MaxEventMessage).
//
// An environment without an inventory ConfigMap (no apply of it ever got as far as
// writing one) gets no event: ErrNoInventory. Creating the ConfigMap only to hang an event
// on it would write to the cluster for a revision that was never applied, beside Apply's
// own inventory writes; and an event about an object that does not exist is one `kubectl
// describe` never shows (it looks events up by the object's UID). The status and the log
// say what happened either way.
func (r *Recorder) Event(ctx context.Context, env, eventType, reason, message string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cm, err := r.cs.CoreV1().ConfigMaps(r.ns).Get(ctx, inventoryName(env), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("event %s about %s: %w", reason, env, ErrNoInventory)
	}
	if err != nil {
		return fmt.Errorf("event %s about %s: read inventory %s/%s: %w", reason, env, r.ns, inventoryName(env), err)
	}
	ref := &corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: cm.Namespace, Name: cm.Name, UID: cm.UID}
	r.recorder.Event(ref, eventType, reason, truncate(message, MaxEventMessage))
	return nil
}

// Close stops the Recorder; events not sent yet are dropped.
func (r *Recorder) Close() { r.broadcaster.Shutdown() }

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	s = s[:n-len(more)]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + more
}

// loggingSink logs what the API server refused, through the daemon's logger: an event
// that RBAC forbids should be visible somewhere.
type loggingSink struct {
	record.EventSink
	log zerolog.Logger
}

func (s *loggingSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out, err := s.EventSink.Create(e)
	s.check("create", e, err)
	return out, err
}

func (s *loggingSink) Update(e *corev1.Event) (*corev1.Event, error) {
	out, err := s.EventSink.Update(e)
	s.check("update", e, err)
	return out, err
}

func (s *loggingSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	out, err := s.EventSink.Patch(e, data)
	// A patch of an event the API server no longer has (expired after an hour) is
	// followed by a create; that is no failure.
	if !apierrors.IsNotFound(err) {
		s.check("patch", e, err)
	}
	return out, err
}

func (s *loggingSink) check(verb string, e *corev1.Event, err error) {
	if err != nil {
		s.log.Warn().Err(err).Str("reason", e.Reason).Str("object", e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name).
			Msg("Kubernetes event " + verb + " failed")
	}
}
