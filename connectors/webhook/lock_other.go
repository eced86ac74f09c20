//go:build !unix

package webhook

import (
	"fmt"
	"os"
)

// lockDir opens the outbox's lock file; without flock, nothing stops a
// second sink on the same outbox.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open outbox lock: %w", err)
	}
	return f, nil
}
