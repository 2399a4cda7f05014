package reconciler

import (
	"bytes"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The log says how long each stage took: snapshot (named at the start, never entered) from
// the reconcile's start, each entered stage to the next, the last to the end.
func TestStageTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	st := &Status{Stages: []string{"snapshot"}, began: t0}
	for i, s := range []string{"settings", "build", "record"} {
		st.Stages = append(st.Stages, s)
		st.mark()
		st.entered[len(st.entered)-1] = t0.Add(time.Duration(10*(i+1)) * time.Millisecond)
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Dict("stageMs", st.stageTimes(t0.Add(100*time.Millisecond))).Msg("reconciled")
	want := `{"level":"info","stageMs":{"snapshot":10,"settings":10,"build":10,"record":70},"message":"reconciled"}` + "\n"
	if buf.String() != want {
		t.Errorf("log\n got %s\nwant %s", buf.String(), want)
	}
}
