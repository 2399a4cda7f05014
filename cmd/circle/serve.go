package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// publish targets
	_ "gocloud.dev/blob/memblob"  // mem:// publish targets, for trying things out

	"github.com/circlecore/circle/reconciler"
	"github.com/circlecore/circle/sources/dir"
)

type serveOptions struct {
	source    string
	publish   string
	logFormat string
}

func newServeCmd() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reconciler daemon: watch a repository, build and publish every new revision",
		Long: `Run the reconciler daemon. It watches the source and, for every new revision,
runs the pipeline and records the outcome in the publish target.

Today the source is a local folder (watched with fsnotify) and the pipeline records each
revision as status.json in the publish target. Git sources, validation, secrets, builds
and cluster apply arrive with their issues.`,
		Example: `  # the daemon on the example repository, publishing to ./.circle
  circle serve --source examples --publish file://$PWD/.circle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, cmd)
		},
	}
	cmd.Flags().StringVar(&o.source, "source", ".", "folder holding the desired-state repository")
	cmd.Flags().StringVar(&o.publish, "publish", "file://"+filepath.Join(".", ".circle"), "storage URL to publish to (file:///path, mem://)")
	cmd.Flags().StringVar(&o.logFormat, "log-format", "console", "log format: console or json")
	return cmd
}

func (o *serveOptions) run(ctx context.Context, cmd *cobra.Command) error {
	log := zerolog.New(cmd.ErrOrStderr()).With().Timestamp().Logger()
	if o.logFormat == "console" {
		log = log.Output(zerolog.ConsoleWriter{Out: cmd.ErrOrStderr()})
	}
	src, err := dir.New(o.source, dir.DefaultOptions())
	if err != nil {
		return err
	}
	bucket, where, err := openPublish(ctx, o.publish)
	if err != nil {
		return err
	}
	defer bucket.Close()
	log.Info().Str("source", o.source).Str("publish", where).Msg("circle serve started; status is written to " + where + "/" + reconciler.StatusKey)
	return reconciler.New(src, bucket, log).Run(ctx)
}

// openPublish opens the publish target. A file:// folder is created if missing, as rclone
// does for a local remote; the metadata side files and temp folder are kept out of it.
func openPublish(ctx context.Context, raw string) (*blob.Bucket, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("publish URL %q: %w", raw, err)
	}
	where := raw
	if u.Scheme == "file" {
		if err := os.MkdirAll(u.Path, 0o755); err != nil {
			return nil, "", fmt.Errorf("publish %s: %w", u.Path, err)
		}
		q := u.Query()
		q.Set("no_tmp_dir", "true")
		q.Set("metadata", "skip")
		u.RawQuery = q.Encode()
		where = u.Path
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, "", fmt.Errorf("publish %s: %w", raw, err)
	}
	return b, where, nil
}
