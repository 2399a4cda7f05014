package published_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/circlecore/circle/sdk/config"
	"github.com/circlecore/circle/sdk/published"
	"github.com/circlecore/circle/storage"
	"github.com/circlecore/circle/storage/envelope"
	"github.com/circlecore/circle/storage/publish"
)

// publishBuild publishes a build of env whose config.json is cfg, as the daemon does.
func publishBuild(t *publish.Target, env, rev, cfg string) {
	if _, _, err := t.Publish(context.Background(), env, rev, []publish.File{
		{Path: "config.json", Data: []byte(cfg), ContentType: "application/json"},
	}); err != nil {
		log.Fatal(err)
	}
}

// A service reads its environment's configuration from the build Circle published, and
// follows new builds.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "circle-published")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	url := "file://" + dir // in production: s3://bucket?region=…, azblob://…, gs://…

	// The daemon's side: `circle serve --publish URL --storage-keyring FILE`.
	ring, err := envelope.NewKeyring() // a service reads the file: envelope.ReadKeyringFile
	if err != nil {
		log.Fatal(err)
	}
	backend, err := storage.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	daemon := publish.New(envelope.New(backend, ring, "circle"), "")
	publishBuild(daemon, "prod", "r1", `{"db": {"host": "db-1.internal", "password": "not printed"}}`)

	// The service's side.
	env, err := published.Open(ctx, url, "prod", ring)
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()
	changed := make(chan struct{})
	l, err := config.New(
		config.Remote(env.Config()),
		config.Schema([]byte(`#Config: {db: {host: string, port: int | *5432, ...}, ...}`), "#Config"),
		config.PollInterval(10*time.Millisecond), // the default is 30s
		config.OnChange(func(old, new *config.Config) {
			fmt.Printf("db.host: %s → %s\n", old.String("db.host"), new.String("db.host"))
			close(changed)
		}),
		config.OnError(func(err error) { log.Print(err) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	var c struct {
		DB struct {
			Host string `json:"host"`
			Port int    `json:"port"`
		} `json:"db"`
	}
	if err := l.Decode(&c); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("db %s:%d\n", c.DB.Host, c.DB.Port)

	stop, err := l.Watch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	publishBuild(daemon, "prod", "r2", `{"db": {"host": "db-2.internal", "password": "not printed"}}`)
	<-changed
	// Output:
	// db db-1.internal:5432
	// db.host: db-1.internal → db-2.internal
}

// New reads from a store the caller already holds, here a mem:// store that only this
// process sees.
func ExampleNew() {
	ctx := context.Background()
	backend, err := storage.Open(ctx, "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	ring, err := envelope.NewKeyring()
	if err != nil {
		log.Fatal(err)
	}
	store := envelope.New(backend, ring, "example")
	publishBuild(publish.New(store, "targets/eu"), "staging", "abc123", `{"replicas": 2}`)

	f := published.New(store, "targets/eu", "staging").Config()
	l, err := config.New(config.Remote(f))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("replicas", l.Current().Int("replicas"), "from revision", f.Build().Revision)
	// Output: replicas 2 from revision abc123
}
