package config_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/circlecore/circle/sdk/config"
)

// The schema Circle validated the document with; a service usually embeds
// it with go:embed.
const shopSchema = `
#Config: {
	db: {
		host: string
		port: int | *5432
	}
	timeout: string | *"30s"
	debug:   bool | *false
}
`

type ShopConfig struct {
	DB struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"db"`
	Timeout time.Duration `json:"timeout"`
	Debug   bool          `json:"debug"`
}

func Example() {
	// Stands in for the ConfigMap mounted at /etc/circle/config.yaml.
	dir, err := os.MkdirTemp("", "circle-config")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("db:\n  host: db.prod\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	l, err := config.New(
		config.Defaults(map[string]any{"timeout": "10s"}),
		config.File(path),
		config.Env("SHOP_"),
		// Stands in for the Deployment's environment; omit it to use os.Environ.
		config.Environ([]string{"SHOP_DB__PORT=5433", "SHOP_DEBUG=true"}),
		config.Schema([]byte(shopSchema), "#Config"),
		config.OnChange(func(old, new *config.Config) {
			log.Printf("config changed: db.host %s -> %s", old.String("db.host"), new.String("db.host"))
		}),
		config.OnError(func(err error) { log.Printf("config not reloaded: %v", err) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	stop, err := l.Watch(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	var c ShopConfig
	if err := l.Decode(&c); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s:%d timeout=%s debug=%t\n", c.DB.Host, c.DB.Port, c.Timeout, c.Debug)
	// Output: db.prod:5433 timeout=10s debug=true
}
