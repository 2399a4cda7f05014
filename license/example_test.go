package license_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/circlecore/circle/license"
)

// A service checks its license at start-up and branches on the reason when it is refused.
func ExampleVerifier() {
	keys, err := license.ReadKeyring("../examples/licenses/issuers.pub")
	if err != nil {
		log.Fatal(err)
	}
	v, err := license.NewVerifier(keys, license.DefaultVerifyOptions("circle-demo"))
	if err != nil {
		log.Fatal(err)
	}
	revs, err := license.ReadFile("../examples/licenses/revoked.list")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := v.LoadRevocations(revs); err != nil {
		log.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	lic, err := v.VerifyFile("../examples/licenses/circle-demo.lic", now)
	switch {
	case errors.Is(err, license.ErrExpired):
		log.Fatal("license expired: renew it")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(lic.Licensee, lic.State())
	fmt.Println("sso:", lic.Allows("sso"), "seats:", lic.Limit("seats"))
	// Output:
	// Example Corp valid
	// sso: true seats: 25
}

// A service follows its mounted license Secret, and reacts when a new license arrives or
// the one it holds stops being valid.
func ExampleWatch() {
	keys, err := license.ReadKeyring("../examples/licenses/issuers.pub")
	if err != nil {
		log.Fatal(err)
	}
	v, err := license.NewVerifier(keys, license.DefaultVerifyOptions("circle-demo"))
	if err != nil {
		log.Fatal(err)
	}
	opts := license.DefaultWatchOptions("../examples/licenses/circle-demo.lic")
	opts.Revocations = "../examples/licenses/revoked.list"
	opts.OnChange = func(l *license.License) {
		if l == nil {
			fmt.Println("no valid license")
			return
		}
		fmt.Println("licensed to", l.Licensee, "until", l.ExpiresAt.Format(time.DateOnly))
	}
	opts.OnError = func(err error) { log.Print(err) }
	w, err := license.Watch(context.Background(), v, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	// Output:
	// licensed to Example Corp until 2036-12-31
}
