package reconciler

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the daemon's Prometheus series. Labels hold environment names, reasons and
// revisions, never values: nothing here can carry a secret.
type metrics struct {
	registry  *prometheus.Registry
	duration  *prometheus.HistogramVec
	results   *prometheus.CounterVec
	envReady  *prometheus.GaugeVec
	revision  *prometheus.GaugeVec
	published *prometheus.CounterVec
	drift     *prometheus.CounterVec
	rollbacks *prometheus.CounterVec
	triggers  *prometheus.CounterVec
	targets   *prometheus.HistogramVec
	queue     prometheus.Gauge
	fetches   *prometheus.HistogramVec
	webhooks  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "circle_reconcile_duration_seconds", Help: "Time to reconcile one revision, by result.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"result"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circle_reconciles_total", Help: "Revisions reconciled, by result (the status reason).",
		}, []string{"result"}),
		envReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "circle_environment_ready", Help: "1 when the environment accepted the last revision, else 0.",
		}, []string{"env", "reason"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "circle_revision_info", Help: "The last revision reconciled (value 1) and whether it was accepted everywhere.",
		}, []string{"revision", "ready"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circle_published_objects_total", Help: "Objects uploaded by the publish stage, by environment.",
		}, []string{"env"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circle_drift_corrected_objects_total", Help: "Objects found changed outside Git and put back, by environment and target.",
		}, []string{"env", "target"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circle_rollbacks_total", Help: "Failed applies followed by a re-apply of the target's last good build, by environment and target.",
		}, []string{"env", "target"}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circle_trigger_requests_total", Help: "Manual reconcile requests (POST /api/v1/reconcile), by result.",
		}, []string{"result"}),
		targets: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "circle_target_duration_seconds", Help: "Time to publish or apply one environment to one target, by result (ok or failed).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"env", "target", "result"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "circle_queue_depth", Help: "Reconciles waiting for the one in progress (new revisions, retries, triggers).",
		}),
		fetches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "circle_git_fetch_duration_seconds", Help: "Time to fetch a new revision from the Git remote, by result.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circle_webhook_requests_total", Help: "Push webhooks received, by result (accepted, ignored, refused, bad).",
		}, []string{"result"}),
	}
	m.registry.MustRegister(m.duration, m.results, m.envReady, m.revision, m.published, m.drift, m.rollbacks, m.triggers,
		m.targets, m.queue, m.fetches, m.webhooks,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// observe records one reconcile's outcome.
func (m *metrics) observe(st *Status, took time.Duration) {
	m.duration.WithLabelValues(st.Reason).Observe(took.Seconds())
	m.results.WithLabelValues(st.Reason).Inc()
	m.envReady.Reset()
	for _, e := range st.Environments {
		v := 0.0
		if e.Ready {
			v = 1
		}
		m.envReady.WithLabelValues(e.Name, e.Reason).Set(v)
	}
	m.revision.Reset()
	ready := "false"
	if st.Ready {
		ready = "true"
	}
	m.revision.WithLabelValues(st.Revision, ready).Set(1)
}

// ObserveFetch records a fetch from the Git remote (git.Options.OnFetch).
func (r *Reconciler) ObserveFetch(took time.Duration, err error) {
	r.metrics.fetches.WithLabelValues(result(err)).Observe(took.Seconds())
}

// ObserveWebhook records a webhook request by the status the receiver answered.
func (r *Reconciler) ObserveWebhook(status int) {
	res := "bad"
	switch {
	case status == http.StatusAccepted:
		res = "accepted"
	case status == http.StatusNoContent:
		res = "ignored"
	case status == http.StatusUnauthorized:
		res = "refused"
	}
	r.metrics.webhooks.WithLabelValues(res).Inc()
}

func result(err error) string {
	if err != nil {
		return "failed"
	}
	return "ok"
}

// Handler serves the daemon's HTTP API:
//
//	/healthz          200 while the process runs
//	/readyz           200 once a first revision has been reconciled, else 503
//	/metrics          Prometheus metrics (circle_* and the Go runtime's)
//	/api/v1/status    the last recorded Status, as in status.json, with the reconcile
//	                  in progress, if any (reconciling)
//	/api/v1/history   ?env=E[&limit=N]: E's reconciles, newest first (with a state store)
//	/api/v1/reconcile POST with "Authorization: Bearer <TriggerToken>": look for a new
//	                  revision now and reconcile the current one again (202)
func (r *Reconciler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if r.current() == nil {
			http.Error(w, "no revision reconciled yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		st := r.current()
		if st != nil {
			cp := *st // the recorded status is shared: answer with a copy that says what runs now
			cp.Reconciling = r.inProgress.Load()
			st = &cp
		}
		if st == nil {
			http.Error(w, `{"error": "no revision reconciled yet"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	})
	mux.HandleFunc("GET /api/v1/history", func(w http.ResponseWriter, req *http.Request) {
		if r.opts.State == nil {
			http.Error(w, `{"error": "no state store (circle serve --state-dir)"}`, http.StatusNotFound)
			return
		}
		env := req.URL.Query().Get("env")
		if env == "" {
			http.Error(w, `{"error": "give ?env="}`, http.StatusBadRequest)
			return
		}
		limit, _ := strconv.Atoi(req.URL.Query().Get("limit"))
		h, err := r.opts.State.History(env, limit)
		if err != nil {
			http.Error(w, `{"error": "history unreadable"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"env": env, "history": h})
	})
	mux.HandleFunc("POST /api/v1/reconcile", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.opts.TriggerToken == "" {
			http.Error(w, `{"error": "no trigger token configured (circle serve --trigger-token-file)"}`, http.StatusNotFound)
			return
		}
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(r.opts.TriggerToken)) != 1 {
			r.metrics.triggers.WithLabelValues("refused").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="circle"`)
			http.Error(w, `{"error": "bad or missing bearer token"}`, http.StatusUnauthorized)
			return
		}
		rev, ok := r.Trigger()
		r.metrics.triggers.WithLabelValues("accepted").Inc()
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"accepted": true, "revision": rev, "pending": !ok})
	})
	return mux
}

// current is the last recorded status, safe to call from any goroutine.
func (r *Reconciler) current() *Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.last
}
