package config_test

import (
	"context"
	"fmt"
	"log"

	"github.com/circlecore/circle/sdk/config"
)

// memSource is a Source kept in memory. A real one is sdk/published's File, which reads
// config.json of an environment's published build.
type memSource struct{ doc string }

func (s *memSource) Name() string                              { return "memory" }
func (s *memSource) Read(ctx context.Context) ([]byte, error)  { return []byte(s.doc), nil }
func (s *memSource) Changed(ctx context.Context) (bool, error) { return true, nil }

func ExampleRemote() {
	published := &memSource{doc: `{"db": {"host": "db.prod", "port": 5432}}`}
	l, err := config.New(
		config.Defaults(map[string]any{"db": map[string]any{"host": "localhost"}}),
		// Where a File would stand: over the defaults, under the environment.
		config.Remote(published),
		config.Env("SHOP_"),
		config.Environ([]string{"SHOP_DB__PORT=6432"}),
		config.Schema([]byte(shopSchema), "#Config"),
	)
	if err != nil {
		log.Fatal(err)
	}
	c := l.Current()
	fmt.Println(c.String("db.host"), c.Int("db.port"), c.String("timeout"))
	// Output: db.prod 6432 30s
}
