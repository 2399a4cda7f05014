package config

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Source is a configuration document kept somewhere other than a local file: typically
// the config.json of an environment's build that Circle published to object storage, which
// package github.com/circlecore/circle/sdk/published reads and verifies. [Remote] adds one.
//
// The interface lives here, and the storage code elsewhere, so that a service that reads
// only mounted files does not link the S3, Azure and GCS clients.
type Source interface {
	// Name names the document in errors and logs ("file:///srv/circle env prod
	// config.json"). It must not carry credentials.
	Name() string
	// Read returns the document, a JSON object, verified as far as the source can verify
	// it. It is called by New and by every reload; an error keeps the current
	// configuration.
	Read(ctx context.Context) ([]byte, error)
	// Changed reports whether Read may now return another document than it last returned,
	// as cheaply as the source can tell (one metadata request, no download). [Loader.Watch]
	// calls it every [PollInterval] and reloads only when it says true. A false positive
	// costs one Read and no OnChange (an unchanged result is not installed); a false
	// negative hides a change, so a source that cannot tell says true.
	Changed(ctx context.Context) (bool, error)
}

// Remote adds src, a JSON document read through a [Source], at this point of the
// precedence order: it takes the place of a [File] given here, so files given before it
// are overridden by it and files given after it override it, and environment variables
// ([Env]) still override both. [Loader.Watch] polls it every [PollInterval].
//
//	env, err := published.Open(ctx, "s3://configs?region=eu-west-1", "prod", ring)
//	...
//	l, err := config.New(config.Remote(env.Config()), config.Schema(cueSrc, "#Config"))
func Remote(src Source) Option {
	return func(o *options) {
		if src == nil {
			o.errs = append(o.errs, errors.New("config: Remote: nil Source"))
			return
		}
		o.files = append(o.files, source{remote: src})
	}
}

// DefaultPollInterval is how often [Loader.Watch] asks each [Remote] source whether it
// changed, unless [PollInterval] says otherwise: a build reaches services within about
// half a minute, for one small request per source per interval.
const DefaultPollInterval = 30 * time.Second

// PollInterval sets how often [Loader.Watch] asks each [Remote] source whether it changed.
// Every poll costs what the source's Changed costs (for a published build, one metadata
// request); a shorter interval brings new builds sooner.
func PollInterval(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.errs = append(o.errs, fmt.Errorf("config: PollInterval %s: want a positive duration", d))
			return
		}
		o.poll = d
	}
}

// remoteTimeout bounds one Read or Changed, so a storage server that stops answering
// fails a reload (reported, current configuration kept) instead of hanging New or the
// watcher; one minute leaves room for a slow download of a large document.
const remoteTimeout = time.Minute

// readRemote reads one Remote source for load.
func readRemote(ctx context.Context, src Source) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	b, err := src.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", src.Name(), err)
	}
	return b, nil
}

// remotes returns the Remote sources, in precedence order.
func (l *Loader) remotes() []Source {
	var out []Source
	for _, f := range l.opts.files {
		if f.remote != nil {
			out = append(out, f.remote)
		}
	}
	return out
}

// poll asks every Remote source whether it changed, every PollInterval, and reloads once
// when any did. A source whose Changed fails is reported and asked again next time; the
// others still count.
func (l *Loader) poll(ctx context.Context, srcs []Source) {
	t := time.NewTicker(l.opts.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed := false
		for _, src := range srcs {
			cctx, cancel := context.WithTimeout(ctx, remoteTimeout)
			c, err := src.Changed(cctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				l.report(fmt.Errorf("config: poll %s: %w", src.Name(), err))
				continue
			}
			changed = changed || c
		}
		if !changed {
			continue
		}
		if err := l.reload(ctx); err != nil && ctx.Err() == nil {
			l.report(err)
		}
	}
}

// rawBytes is a koanf provider for a document already in memory, so a Remote document
// goes through the same parser and merge as a file.
type rawBytes []byte

func (r rawBytes) ReadBytes() ([]byte, error) { return r, nil }

func (r rawBytes) Read() (map[string]any, error) {
	return nil, errors.New("config: raw bytes need a parser")
}
