package reconciler_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// syncWriter lets the reconciler's goroutine log while the test reads.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func osReadFile(root, name string) ([]byte, error) { return os.ReadFile(filepath.Join(root, name)) }
