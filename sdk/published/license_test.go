package published_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"testing"
	"time"

	"github.com/circlecore/circle/license"
	"github.com/circlecore/circle/sdk/published"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
)

var licNow = time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)

func issueLicense(priv ed25519.PrivateKey, id, licensee string) []byte {
	b, err := license.Issue(&license.License{ID: id, Licensee: licensee, Product: "shop",
		IssuedAt: licNow.Add(-time.Hour), ExpiresAt: licNow.Add(365 * 24 * time.Hour)}, priv)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func issueRevocations(priv ed25519.PrivateKey, serial uint64, ids ...string) []byte {
	r := &license.RevocationList{Serial: serial, IssuedAt: licNow}
	for _, id := range ids {
		r.Entries = append(r.Entries, license.Revocation{ID: id, Reason: "test", RevokedAt: licNow})
	}
	b, err := license.IssueRevocations(r, priv)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func publishLicense(t *publish.Target, rev string, lic, revoked []byte) {
	files := []publish.File{{Path: "config.json", Data: []byte(`{}`)}, {Path: "licenses/shop.lic", Data: lic}}
	if revoked != nil {
		files = append(files, publish.File{Path: "licenses/revoked.list", Data: revoked})
	}
	if _, _, err := t.Publish(context.Background(), "prod", rev, files); err != nil {
		log.Fatal(err)
	}
}

// TestWatchLicense follows the license of published builds: a new license replaces the one
// held; one signed by a key the service does not trust is reported and the one held stays;
// a revocation list that revokes the license held takes it away (OnChange nil).
func TestWatchLicense(t *testing.T) {
	p := newPublisher(t, "mem://")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	publishLicense(p.target, "r1", issueLicense(priv, "lic-1", "First"), issueRevocations(priv, 1))

	v, err := license.NewVerifier(license.NewKeyring(pub), license.DefaultVerifyOptions("shop"))
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan *license.License, 10)
	errs := make(chan error, 10)
	w, err := published.WatchLicense(context.Background(), published.New(p.store, "", "prod"), v, published.LicenseOptions{
		File: "licenses/shop.lic", Revocations: "licenses/revoked.list",
		OnChange: func(l *license.License) { changes <- l },
		OnError:  func(err error) { errs <- err },
		Poll:     10 * time.Millisecond,
		Now:      func() time.Time { return licNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if l := <-changes; l == nil || l.Licensee != "First" {
		t.Fatalf("first OnChange %v, want First's license", l)
	}

	publishLicense(p.target, "r2", issueLicense(priv, "lic-2", "Second"), issueRevocations(priv, 1))
	select {
	case l := <-changes:
		if l == nil || l.Licensee != "Second" {
			t.Errorf("OnChange %v, want Second's license", l)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the new license was not picked up")
	}

	publishLicense(p.target, "r3", issueLicense(stranger, "lic-3", "Stranger"), issueRevocations(priv, 1))
	select {
	case err := <-errs:
		if !errors.Is(err, license.ErrUnknownKey) {
			t.Errorf("OnError %v, want ErrUnknownKey", err)
		}
	case l := <-changes:
		t.Fatalf("OnChange %v for a license signed by an unknown key", l)
	case <-time.After(10 * time.Second):
		t.Fatal("the bad license was not reported")
	}
	if l := w.License(); l == nil || l.Licensee != "Second" {
		t.Errorf("License() = %v, want Second's kept", l)
	}

	publishLicense(p.target, "r4", issueLicense(priv, "lic-2", "Second"), issueRevocations(priv, 2, "lic-2"))
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-changes:
			if l != nil {
				t.Fatalf("OnChange %v, want nil (revoked)", l)
			}
			if w.License() != nil {
				t.Error("License() still holds the revoked license")
			}
			return
		case <-errs: // the refusal of lic-2 itself
		case <-deadline:
			t.Fatal("the revocation was not applied")
		}
	}
}

// A service follows the license that Circle publishes with its environment's build,
// verified with the issuer keys it trusts.
func ExampleWatchLicense() {
	ctx := context.Background()
	backend, err := storage.Open(ctx, "mem://") // Open(ctx, url, env, ring) in a service
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	ring, err := envelope.NewKeyring()
	if err != nil {
		log.Fatal(err)
	}
	store := envelope.New(backend, ring, "example")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	publishLicense(publish.New(store, ""), "r1", issueLicense(priv, "lic-1", "Example Corp"), nil)

	// The service's own trusted keys (license.ReadKeyring of a file it ships with).
	v, err := license.NewVerifier(license.NewKeyring(pub), license.DefaultVerifyOptions("shop"))
	if err != nil {
		log.Fatal(err)
	}
	w, err := published.WatchLicense(ctx, published.New(store, "", "prod"), v, published.LicenseOptions{
		File: "licenses/shop.lic",
		OnChange: func(l *license.License) {
			if l == nil {
				fmt.Println("no valid license")
				return
			}
			fmt.Println("licensed to", l.Licensee, "until", l.ExpiresAt.Format(time.DateOnly))
		},
		OnError: func(err error) { log.Print(err) },
		Now:     func() time.Time { return licNow },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	// Output: licensed to Example Corp until 2031-06-01
}
