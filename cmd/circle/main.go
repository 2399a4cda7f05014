// Command circle is Circle Core's one binary: the reconciler daemon (circle serve) and the
// offline tools around the same pipeline (validate, plan, render, storage, package, license).
//
// Exit codes:
//
//	0  success
//	1  the work ran and found a problem (invalid repository, failed check)
//	2  usage or I/O error (bad flags, unreadable files, unreachable servers)
//	3  the command is not implemented yet
//
// circle plan differs, as terraform plan -detailed-exitcode: 0 no changes, 1 an error or
// an invalid head, 2 changes.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
