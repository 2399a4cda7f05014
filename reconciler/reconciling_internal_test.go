package reconciler

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The API says which revision is being reconciled while it is; status.json (the recorded
// status) never does.
func TestStatusAPI_Reconciling(t *testing.T) {
	r := New(nil, nil, zerolog.Nop(), Options{})
	r.last = &Status{Revision: "old", Ready: true}
	get := func() *Status {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/status", nil))
		var st Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	if st := get(); st.Reconciling != nil {
		t.Errorf("idle: %+v", st.Reconciling)
	}
	since := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r.inProgress.Store(&Reconciling{Revision: "new", Since: since})
	if st := get(); st.Reconciling == nil || st.Reconciling.Revision != "new" || !st.Reconciling.Since.Equal(since) || st.Revision != "old" {
		t.Errorf("busy: %+v", st)
	}
	if r.last.Reconciling != nil {
		t.Error("the recorded status was changed")
	}
}
