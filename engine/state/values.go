package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble"
)

// Values is a stage's keyspace of one value per key, beside the
// timelines in the same store (the alerts stage keeps there what it
// announced). Writes are pending until Commit, which makes them durable
// at once; Discard drops them. Get sees the pending writes. This lets the
// engine write a stage's state only once the run's sinks have committed
// the rows that state describes. Safe for concurrent use.
type Values struct {
	s      *Store
	prefix []byte

	mu      sync.Mutex
	pending *pebble.Batch // nil when nothing is pending
}

// Values opens the value keyspace of a stage.
func (s *Store) Values(stage string) *Values {
	ns := binary.AppendUvarint(nil, uint64(len(stage)))
	ns = append(ns, stage...)
	return &Values{s: s, prefix: append([]byte("v"), ns...)}
}

func (v *Values) key(k []byte) []byte {
	return append(append([]byte(nil), v.prefix...), k...)
}

func (v *Values) batch() *pebble.Batch {
	if v.pending == nil {
		v.pending = v.s.db.NewIndexedBatch()
	}
	return v.pending
}

// Get returns a copy of the value of k, pending writes included, and
// whether there is one.
func (v *Values) Get(k []byte) ([]byte, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var (
		val    []byte
		closer interface{ Close() error }
		err    error
	)
	if v.pending != nil {
		val, closer, err = v.pending.Get(v.key(k))
	} else {
		val, closer, err = v.s.db.Get(v.key(k))
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: read value: %w", err)
	}
	out := append([]byte(nil), val...)
	closer.Close()
	return out, true, nil
}

// Set records val for k, pending until Commit.
func (v *Values) Set(k, val []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.batch().Set(v.key(k), val, nil); err != nil {
		return fmt.Errorf("state: write value: %w", err)
	}
	return nil
}

// Delete removes k, pending until Commit.
func (v *Values) Delete(k []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.batch().Delete(v.key(k), nil); err != nil {
		return fmt.Errorf("state: delete value: %w", err)
	}
	return nil
}

// Commit makes the pending writes durable, all or none.
func (v *Values) Commit() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending == nil {
		return nil
	}
	b := v.pending
	v.pending = nil
	defer b.Close()
	if err := b.Commit(v.s.writeOpts()); err != nil {
		return fmt.Errorf("state: commit values: %w", err)
	}
	return nil
}

// Discard drops the pending writes.
func (v *Values) Discard() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending != nil {
		v.pending.Close()
		v.pending = nil
	}
}
