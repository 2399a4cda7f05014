// Command service is the smallest service that runs on the configuration Circle publishes:
// it reads its environment's config.json from the published build, prints one value, and
// prints a line each time a new build changes it.
//
//	service -storage 's3://configs?region=eu-west-1' -env prod -keyring /etc/circle/keyring.json
//
// Flags default to CIRCLE_STORAGE_URL, CIRCLE_ENV and CIRCLE_STORAGE_KEYRING, as a
// Deployment would set them. Only the value of -key is printed, never the whole
// configuration: config.json carries the environment's secrets too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/circlecore/circle/sdk/config"
	"github.com/circlecore/circle/sdk/published"
	"github.com/circlecore/circle/storage/envelope"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("storage", os.Getenv("CIRCLE_STORAGE_URL"), "storage URL Circle publishes to (default $CIRCLE_STORAGE_URL)")
	env := fs.String("env", os.Getenv("CIRCLE_ENV"), "environment (default $CIRCLE_ENV)")
	keyring := fs.String("keyring", os.Getenv("CIRCLE_STORAGE_KEYRING"), "storage keyring file (default $CIRCLE_STORAGE_KEYRING)")
	key := fs.String("key", "db.host", "configuration key to print")
	poll := fs.Duration("poll", config.DefaultPollInterval, "how often to look for a new build")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *env == "" || *keyring == "" {
		return errors.New("give -storage, -env and -keyring")
	}
	ring, err := envelope.ReadKeyringFile(*keyring)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	e, err := published.Open(ctx, *url, *env, ring)
	if err != nil {
		return err
	}
	defer e.Close()
	src := e.Config()
	l, err := config.New(
		config.Remote(src),
		config.PollInterval(*poll),
		config.OnChange(func(old, new *config.Config) {
			if o, n := old.String(*key), new.String(*key); o != n {
				fmt.Fprintf(stdout, "%s: %s → %s (revision %s)\n", *key, o, n, src.Build().Revision)
			}
		}),
		config.OnError(func(err error) { fmt.Fprintln(stderr, "config not reloaded:", err) }),
	)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s = %s (env %s, revision %s)\n", *key, l.Current().String(*key), *env, src.Build().Revision)
	stop, err := l.Watch(ctx)
	if err != nil {
		return err
	}
	defer stop()
	<-ctx.Done()
	return nil
}
