//go:build unix

package storage

import (
	"os"
	"syscall"
)

// sameFileSystem reports whether a and b are on one file system, so a file can be renamed
// from one to the other.
func sameFileSystem(a, b string) bool {
	ia, err := os.Stat(a)
	if err != nil {
		return false
	}
	ib, err := os.Stat(b)
	if err != nil {
		return false
	}
	sa, ok := ia.Sys().(*syscall.Stat_t)
	sb, ok2 := ib.Sys().(*syscall.Stat_t)
	return ok && ok2 && sa.Dev == sb.Dev
}
