package envelope_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/circlecore/circle/storage/envelope"
)

// cancelOnBodyRead is a context that, once armed, reports itself cancelled to the storage
// layer's body reads, and only to them: it stands for a connection that dies, or a caller
// that gives up, after the backend's Get has answered.
type cancelOnBodyRead struct {
	context.Context
	armed atomic.Bool
}

func (c *cancelOnBodyRead) Err() error {
	pc := make([]uintptr, 4)
	n := runtime.Callers(2, pc)
	frames := runtime.CallersFrames(pc[:n])
	f, _ := frames.Next()
	if strings.HasSuffix(f.Function, "storage.(*reader).Read") && c.armed.Load() {
		return context.Canceled
	}
	return c.Context.Err()
}

// A read that fails in the backend is not corruption: the envelope passes backend and
// context errors through unchanged so callers can retry them, and keeps ErrCorrupt for
// content that does not authenticate. That holds for every segment but the header, which
// Get reads itself (Tink's NewDecryptingReader reads the 40-byte header at once): a
// backend error there is reported as ErrCorrupt, formatted with %v so that
// context.Canceled (or the *storage.Error) is no longer in the chain. A `verify` that is
// cancelled, or hits a dropped connection, then reports a sound object as corrupt.
//
// Fix: in Get, return err as it is when isBackend(err) before wrapping it in ErrCorrupt.
func TestRegressionHeaderReadErrorReportedAsCorrupt(t *testing.T) {

	backend := open(t, "mem://")
	s := envelope.New(backend, newKeyring(t), "test")
	put(t, s, "sound", random(t, 3*envelope.SegmentSize), nil)

	// Cancelled after Get, while reading a segment: passed through, as it should be.
	ctx := &cancelOnBodyRead{Context: context.Background()}
	rc, _, err := s.Get(ctx, "sound")
	if err != nil {
		t.Fatal(err)
	}
	ctx.armed.Store(true)
	_, err = rc.Read(make([]byte, 10))
	rc.Close()
	if !errors.Is(err, context.Canceled) || errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("cancelled while reading a segment: %v", err)
	}

	// Cancelled while Get reads the header: reported as corruption.
	ctx = &cancelOnBodyRead{Context: context.Background()}
	ctx.armed.Store(true)
	_, _, err = s.Get(ctx, "sound")
	if !errors.Is(err, context.Canceled) || errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("cancelled while reading the header: %v; want context.Canceled, not ErrCorrupt", err)
	}
}
