package state

import (
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Sync makes every write applied so far durable: it syncs the store's
// write-ahead log (a temporary store has none: nothing to do). The engine
// calls it before committing a checkpoint, so that no state written below
// a committed checkpoint is lost with the machine.
func (s *Store) Sync() error {
	if s.temp {
		return nil
	}
	if err := s.db.LogData([]byte("vigie.sync"), pebble.Sync); err != nil {
		return fmt.Errorf("sync state in %s: %w", s.dir, err)
	}
	return nil
}
