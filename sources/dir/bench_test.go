package dir_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/circlecore/circle/sources/dir"
)

// BenchmarkSource_Snapshot reads and hashes a tree the size of a mid-sized config repo:
// 1,000 files of 2 KiB across 50 folders.
func BenchmarkSource_Snapshot(b *testing.B) {
	root := b.TempDir()
	body := strings.Repeat("key: value\n", 186)
	for i := 0; i < 1000; i++ {
		write(b, root, fmt.Sprintf("config/env%02d/file%04d.yaml", i%50, i), body)
	}
	src, err := dir.New(root, dir.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(1000 * len(body)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := src.Snapshot(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
