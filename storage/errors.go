package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"gocloud.dev/gcerrors"
)

// Errors every backend maps to; test with errors.Is.
var (
	// ErrNotFound: the object (or, for Copy, its source) does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists: a Put with IfNotExists found the key taken.
	ErrExists = errors.New("object already exists")
	// ErrInvalid: a key, metadata or option this package refuses on every backend.
	ErrInvalid = errors.New("invalid argument")
)

// Error is the error every Store method returns: the operation, the backend (redacted URL)
// and the key, around the cause. It unwraps to the cause, so errors.Is finds ErrNotFound,
// ErrExists, ErrInvalid, context.Canceled or the backend's own error.
type Error struct {
	Op  string // "get", "put", "stat", "list", "delete", "copy", "set metadata"
	URL string // the Store's redacted URL
	Key string // the key, or the list prefix; empty when not about one key
	Err error
}

// Error says what failed where: `storage: get "key" in s3://bucket?region=…: cause`.
func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("storage: %s %s: %v", e.Op, e.URL, e.Err)
	}
	return fmt.Sprintf("storage: %s %s in %s: %v", e.Op, strconv.Quote(e.Key), e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// wrap classifies err into the package's vocabulary and adds the operation, backend and key.
// exists says whether a failed precondition means "the key is taken" (only for IfNotExists).
func (s *Store) wrap(ctx context.Context, op, key string, err error, exists bool) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err // already ours, e.g. from a nested call
	}
	switch {
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		// Some SDKs report a cancelled call as their own error; callers test for the
		// context's error, so put it in the chain.
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists), errors.Is(err, ErrInvalid):
	case gcerrors.Code(err) == gcerrors.NotFound:
		err = fmt.Errorf("%w: %w", ErrNotFound, err)
	case exists && gcerrors.Code(err) == gcerrors.FailedPrecondition:
		err = fmt.Errorf("%w: %w", ErrExists, err)
	case gcerrors.Code(err) == gcerrors.InvalidArgument:
		err = fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &Error{Op: op, URL: s.url, Key: key, Err: err}
}

// isPrecondition reports whether err is a failed conditional request (the object changed
// between a Stat and the call that was pinned to it).
func isPrecondition(err error) bool {
	return gcerrors.Code(err) == gcerrors.FailedPrecondition
}
