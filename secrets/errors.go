package secrets

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a caller can tell apart with errors.Is. Each Problem of an *Error carries one.
var (
	// ErrNoKey means no key in the keyring opens the file.
	ErrNoKey = errors.New("no key in the keyring opens it")
	// ErrTampered means the file's content does not match what was encrypted: a value, its
	// type tag or the MAC was changed after encryption, or the MAC was removed.
	ErrTampered = errors.New("the file was changed after it was encrypted")
	// ErrNotEncrypted means the file has no sops metadata, or does not parse.
	ErrNotEncrypted = errors.New("not a SOPS-encrypted file")
	// ErrKeySourceNotAllowed means the file names a remote key (KMS, Vault, …) the keyring
	// was not told to allow. No request is made for such a file.
	ErrKeySourceNotAllowed = errors.New("remote key source not allowed")
	// ErrUnencrypted means an entry of the file is not encrypted although the file's own sops
	// rules say it is, or is a null or empty value, which sops neither encrypts nor covers by
	// its MAC.
	ErrUnencrypted = errors.New("entry not encrypted")
)

// Problem is one thing wrong with a SOPS file.
//
// Every field is built by this package from the file's name, an entry's position and key
// path, and a message written here. No field is ever built from a decrypted value, nor from
// the text of an error returned by sops (whose parse errors quote plaintext): that is how
// no error of this package can carry a secret, whatever the file says.
type Problem struct {
	// Kind is the sentinel the problem is an instance of: ErrTampered, ErrNoKey, ….
	Kind error `json:"-"`
	// File is the file's name as the caller gave it.
	File string `json:"file"`
	// Line and Column locate the entry (1-based); 0 when unknown.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Path is the entry's key path, as in "db.password", "hosts[2]" or
	// "sops.hc_vault[0]"; empty for the file as a whole.
	Path string `json:"path,omitempty"`
	// Message says what is wrong, without the value.
	Message string `json:"message"`
}

// String formats the problem the way compilers do: file:line:col: path: message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is the error Decrypt and Recipients return: every problem found in one file.
// errors.Is matches the Kind of any of its problems.
type Error struct {
	// File is the file's name as the caller gave it.
	File string
	// Problems are what was found, at least one; each names its entry's line and key path
	// when it is about one entry.
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the kinds of the problems, so errors.Is(err, ErrTampered) works.
func (e *Error) Unwrap() []error {
	kinds := make([]error, 0, len(e.Problems))
	for _, p := range e.Problems {
		if p.Kind != nil {
			kinds = append(kinds, p.Kind)
		}
	}
	return kinds
}

// problems collects the problems of one file, with the positions of its entries.
type problems struct {
	file  string
	lines lineIndex
	list  []Problem
}

// add records a problem at the entry at (doc, path), or at the file when path is empty.
// The message must be a constant of this package or built from names and positions only.
func (ps *problems) add(kind error, doc int, path, message string) {
	p := Problem{Kind: kind, File: ps.file, Path: path, Message: message}
	if path != "" {
		p.Line, p.Column = ps.lines.at(doc, path)
	}
	ps.list = append(ps.list, p)
}

// addAt records a problem about the entry shown, at the first of paths the file has a
// position for.
func (ps *problems) addAt(kind error, shown string, paths []string, message string) {
	p := Problem{Kind: kind, File: ps.file, Path: shown, Message: message}
	for _, q := range paths {
		if l, c := ps.lines.at(0, q); l > 0 {
			p.Line, p.Column = l, c
			break
		}
	}
	ps.list = append(ps.list, p)
}

// err is the collected problems as an error, or nil.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &Error{File: ps.file, Problems: ps.list}
}

// fileError is an error of one problem about the file as a whole.
func fileError(file string, kind error, message string) error {
	return &Error{File: file, Problems: []Problem{{Kind: kind, File: file, Message: message}}}
}
