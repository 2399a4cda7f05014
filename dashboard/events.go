package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// heartbeat is how often an idle event stream sends a comment, so proxies that cut idle
// connections (often at 30 or 60 seconds) leave it open. A variable for the tests.
var heartbeat = 15 * time.Second

// event is the data of a "status" event: enough for a page to tell whether it is out of
// date (Stamp differs from its own) and to say what changed.
type event struct {
	Stamp        string    `json:"stamp"`
	Revision     string    `json:"revision,omitempty"`
	ReconciledAt time.Time `json:"reconciledAt,omitzero"`
	Ready        bool      `json:"ready"`
	Reason       string    `json:"reason,omitempty"`
}

// events is a server-sent event stream: a "status" event now, and one each time the
// daemon records a reconcile (the status's ReconciledAt or revision changes). The stream
// polls the Source rather than being told by the reconciler, which keeps the reconciler
// unaware of the dashboard; a poll is one in-process status read.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	limit := int64(h.opts.MaxStreams)
	if limit <= 0 {
		limit = 64
	}
	if h.streams.Add(1) > limit {
		h.streams.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many event streams open", http.StatusServiceUnavailable)
		return
	}
	defer h.streams.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx would otherwise hold events back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead { // the headers are the whole answer; a stream would never end
		return
	}
	// A dropped stream is reopened by the browser after this many milliseconds.
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil {
		return
	}
	done := h.done(r.Context())
	tick := time.NewTicker(h.opts.Poll)
	defer tick.Stop()
	sent, quiet := "\x00", time.Duration(0) // "\x00": no stamp sent yet, so the first one goes
	for {
		var msg string
		st, err := h.src.Status(r.Context())
		switch {
		case err != nil:
			// Said as a comment: the page keeps what it shows until the status is readable.
			msg = ": status unreadable\n\n"
		case stamp(st) != sent:
			ev := event{Stamp: h.red(stamp(st))}
			if st != nil {
				ev.Revision, ev.ReconciledAt, ev.Ready, ev.Reason = h.red(st.Revision), st.ReconciledAt, st.Ready, h.red(st.Reason)
			}
			b, _ := json.Marshal(ev)
			msg, sent = "event: status\ndata: "+h.red(string(b))+"\n\n", stamp(st)
		case quiet >= heartbeat:
			msg = ": ping\n\n"
		}
		if msg != "" {
			if _, err := fmt.Fprint(w, msg); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			quiet = 0
		}
		select {
		case <-done:
			return
		case <-tick.C:
			quiet += h.opts.Poll
		}
	}
}
