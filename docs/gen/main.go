// Command gen writes docs/reference.md from the CUE schemas (go generate ./docs).
package main

import (
	"fmt"
	"os"

	"github.com/circlecore/circle/docs"
)

func main() {
	sections, err := docs.Sections("..")
	if err == nil {
		var out []byte
		if out, err = docs.Reference(sections...); err == nil {
			err = os.WriteFile("reference.md", out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
