// Package state is the daemon's embedded store (go.etcd.io/bbolt, one file under the state
// directory): small documents by key, and a bounded history of reconciles per
// environment. bbolt commits each transaction with fsync before returning, so a process
// killed at any moment leaves the last committed state, never half of one.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database file in the state directory.
const FileName = "circle.db"

// DefaultHistory is how many entries each environment's history keeps.
const DefaultHistory = 100

var (
	docsBucket    = []byte("docs")
	historyBucket = []byte("history")
)

// Store is an open state directory. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
	// Keep bounds each environment's history; 0 means DefaultHistory.
	Keep int
}

// Entry is one reconcile of one environment, as the history records it.
type Entry struct {
	Revision string        `json:"revision"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration"`
	Ready    bool          `json:"ready"`
	Reason   string        `json:"reason"`
	Message  string        `json:"message,omitempty"`
}

// Open opens (creating if needed) the store in dir. A second process opening the same
// directory waits up to a second for the file lock and then fails, so two daemons never
// share a state.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state %s: %w", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{docsBucket, historyBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Put stores v, as JSON, under key.
func (s *Store) Put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(docsBucket).Put([]byte(key), b) })
}

// PutAll stores each document, as JSON, under its key, in one transaction: a process
// killed meanwhile leaves all of them as they were or all of them written, so documents
// that must agree (a status and the trust it was judged with) never disagree.
func (s *Store) PutAll(docs map[string]any) error {
	enc := make(map[string][]byte, len(docs))
	for k, v := range docs {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("state %s: %w", k, err)
		}
		enc[k] = b
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for k, b := range enc {
			if err := tx.Bucket(docsBucket).Put([]byte(k), b); err != nil {
				return fmt.Errorf("state %s: %w", k, err)
			}
		}
		return nil
	})
}

// Get reads the document at key into v; it reports false when there is none.
func (s *Store) Get(key string, v any) (bool, error) {
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b = append([]byte(nil), tx.Bucket(docsBucket).Get([]byte(key))...)
		return nil
	})
	if err != nil || len(b) == 0 {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state %s: %w", key, err)
	}
	return true, nil
}

// Append adds entries to their environments' histories in one transaction, dropping the
// oldest beyond Keep.
func (s *Store) Append(entries map[string]Entry) error {
	keep := s.Keep
	if keep <= 0 {
		keep = DefaultHistory
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for env, e := range entries {
			b, err := tx.Bucket(historyBucket).CreateBucketIfNotExists([]byte(env))
			if err != nil {
				return err
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
			// Keys are big-endian sequence numbers: the first ones are the oldest.
			count := 0
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				count++
			}
			for ; count > keep; count-- {
				k, _ := c.First()
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// History returns env's last n entries (all when n ≤ 0), newest first.
func (s *Store) History(env string, n int) ([]Entry, error) {
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(historyBucket).Bucket([]byte(env))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("history %s: %w", env, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ErrLocked is wrapped when another process holds the state directory.
var ErrLocked = errors.New("state directory in use by another process")

func seqKey(n uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, n)
	return k
}
