package license_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
)

// events collects a Watcher's callbacks, in the order they were made.
type events struct{ ch chan event }

type event struct {
	lic *license.License
	err error
}

func newEvents() *events { return &events{ch: make(chan event, 32)} }

func (e *events) options(file string) license.WatchOptions {
	o := license.DefaultWatchOptions(file)
	o.Debounce = 20 * time.Millisecond
	o.OnChange = func(l *license.License) { e.ch <- event{lic: l} }
	o.OnError = func(err error) { e.ch <- event{err: err} }
	return o
}

func (e *events) next(t *testing.T) event {
	t.Helper()
	select {
	case ev := <-e.ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no callback within 5s")
	}
	return event{}
}

// change waits for the next callback and wants it to be OnChange.
func (e *events) change(t *testing.T) *license.License {
	t.Helper()
	ev := e.next(t)
	if ev.err != nil {
		t.Fatalf("error instead of a change: %v", ev.err)
	}
	return ev.lic
}

// err waits for the next callback and wants it to be OnError with the reason (any
// error for "").
func (e *events) err(t *testing.T, want license.Reason) error {
	t.Helper()
	ev := e.next(t)
	if ev.err == nil {
		t.Fatalf("change to %v instead of an error", ev.lic)
	}
	if want != "" && !errors.Is(ev.err, want) {
		t.Fatalf("error %v, want %s", ev.err, want)
	}
	return ev.err
}

// quiet wants no callback for a while.
func (e *events) quiet(t *testing.T) {
	t.Helper()
	select {
	case ev := <-e.ch:
		t.Fatalf("unexpected callback: %+v", ev)
	case <-time.After(150 * time.Millisecond):
	}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	// Write and rename, as editors and kubectl cp do, so a reader never sees half a file.
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

func withID(id string) *license.License {
	l := sample()
	l.ID = id
	return l
}

func newVerifier(t *testing.T, iss issuer) *license.Verifier {
	t.Helper()
	v, err := license.NewVerifier(iss.keyring(), opts())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A plain file: each new license that verifies replaces the one held; one that fails is
// reported and the held one stays.
func TestWatch_File(t *testing.T) {
	iss := newIssuer(t)
	file := filepath.Join(t.TempDir(), "license.lic")
	writeFile(t, file, iss.issue(t, withID("lic_one")))
	ev := newEvents()
	o := ev.options(file)
	o.Now = func() time.Time { return t0 }
	w, err := license.Watch(context.Background(), newVerifier(t, iss), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if l := ev.change(t); l.ID != "lic_one" || w.License().ID != "lic_one" {
		t.Fatalf("first load: %v", l)
	}

	writeFile(t, file, iss.issue(t, withID("lic_two")))
	if l := ev.change(t); l.ID != "lic_two" || w.License().ID != "lic_two" {
		t.Fatalf("after a new file: %v", l)
	}

	writeFile(t, file, []byte("garbage"))
	ev.err(t, license.ErrMalformed)
	ev.quiet(t)
	if w.License().ID != "lic_two" {
		t.Fatal("a failed file replaced the license held")
	}

	// Removing the file keeps the license held too.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := ev.err(t, ""); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed file: %v", err)
	}
	if w.License() == nil {
		t.Fatal("a removed file dropped the license held")
	}
	writeFile(t, file, iss.issue(t, withID("lic_three")))
	if l := ev.change(t); l.ID != "lic_three" {
		t.Fatalf("after the file came back: %v", l)
	}
}

// A mounted Kubernetes Secret: files are links through ..data, which the kubelet swaps
// to a new timestamped folder in one rename.
func TestWatch_KubernetesSecret(t *testing.T) {
	iss := newIssuer(t)
	dir := t.TempDir()
	publish := func(version string, files map[string][]byte) {
		t.Helper()
		ts := filepath.Join(dir, "..2026_06_01_"+version)
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(ts, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for name := range files {
			link := filepath.Join(dir, name)
			if _, err := os.Lstat(link); err != nil {
				if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	publish("a", map[string][]byte{"license.lic": iss.issue(t, withID("lic_one")), "revoked.list": iss.revocations(t, 1)})

	ev := newEvents()
	o := ev.options(filepath.Join(dir, "license.lic"))
	o.Revocations = filepath.Join(dir, "revoked.list")
	o.Now = func() time.Time { return t0 }
	w, err := license.Watch(context.Background(), newVerifier(t, iss), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if l := ev.change(t); l.ID != "lic_one" {
		t.Fatalf("first load: %v", l)
	}

	publish("b", map[string][]byte{"license.lic": iss.issue(t, withID("lic_two")), "revoked.list": iss.revocations(t, 2)})
	if l := ev.change(t); l.ID != "lic_two" {
		t.Fatalf("after the swap: %v", l)
	}

	// A new list revoking the license held: it is dropped (nil), with the reason.
	publish("c", map[string][]byte{"license.lic": iss.issue(t, withID("lic_two")), "revoked.list": iss.revocations(t, 3, "lic_two")})
	ev.err(t, license.ErrRevoked)
	if l := ev.change(t); l != nil || w.License() != nil {
		t.Fatalf("a revoked license is still held: %v", l)
	}

	// Swapping back to the older list is a replay; the license stays revoked (and that is
	// not reported again).
	publish("d", map[string][]byte{"license.lic": iss.issue(t, withID("lic_two")), "revoked.list": iss.revocations(t, 2)})
	ev.err(t, license.ErrReplayed)
	ev.quiet(t)
	if w.License() != nil {
		t.Fatal("a replayed list brought the license back")
	}
}

// The clock moves the license into grace, then out of it, without any file event.
func TestWatch_Recheck(t *testing.T) {
	iss := newIssuer(t)
	l := sample()
	file := filepath.Join(t.TempDir(), "license.lic")
	writeFile(t, file, iss.issue(t, l))
	var now atomic.Int64
	now.Store(t0.Unix())
	ev := newEvents()
	o := ev.options(file)
	o.Recheck = 20 * time.Millisecond
	o.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	w, err := license.Watch(context.Background(), newVerifier(t, iss), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := ev.change(t); got.State() != license.StateValid {
		t.Fatalf("first load: %s", got.State())
	}
	ev.quiet(t) // rechecks of an unchanged state say nothing

	now.Store(l.ExpiresAt.Add(time.Hour).Unix())
	if got := ev.change(t); got == nil || got.State() != license.StateInGrace {
		t.Fatalf("after expiry: %v", got)
	}
	now.Store(l.ExpiresAt.Add(l.Grace + time.Hour).Unix())
	ev.err(t, license.ErrExpired)
	if got := ev.change(t); got != nil {
		t.Fatalf("after grace: %v", got)
	}
	ev.quiet(t) // the expiry is reported once

	// A renewal arrives; then a new file that fails while it is held, and the held one
	// expires meanwhile.
	renewed := withID("lic_renewed")
	renewed.ExpiresAt = l.ExpiresAt.AddDate(1, 0, 0)
	writeFile(t, file, iss.issue(t, renewed))
	if got := ev.change(t); got == nil || got.ID != "lic_renewed" {
		t.Fatalf("renewed: %v", got)
	}
	writeFile(t, file, []byte("garbage"))
	ev.err(t, license.ErrMalformed)
	now.Store(renewed.ExpiresAt.Add(renewed.Grace + time.Hour).Unix())
	ev.err(t, license.ErrExpired)
	if got := ev.change(t); got != nil {
		t.Fatalf("the held license expired: %v", got)
	}
}

func TestWatch_Refuses(t *testing.T) {
	v := newVerifier(t, newIssuer(t))
	if _, err := license.Watch(context.Background(), v, license.WatchOptions{}); err == nil {
		t.Error("no file")
	}
	if _, err := license.Watch(context.Background(), v, license.DefaultWatchOptions("/nonexistent/dir/license.lic")); err == nil {
		t.Error("a folder that does not exist")
	}
	// A missing file in an existing folder is watched for; the failure is reported.
	ev := newEvents()
	o := ev.options(filepath.Join(t.TempDir(), "license.lic"))
	o.Recheck, o.Debounce, o.Now = 0, 0, nil
	w, err := license.Watch(context.Background(), v, o)
	if err != nil {
		t.Fatal(err)
	}
	ev.err(t, "")
	if w.License() != nil {
		t.Error("a license from nowhere")
	}
	w.Close()
}
