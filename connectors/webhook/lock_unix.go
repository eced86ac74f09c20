//go:build unix

package webhook

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockWait is how long Open waits for another process (a sink of a run
// being killed) to release the outbox.
var lockWait = 10 * time.Second

// lockDir takes the outbox's lock file, so that two sinks never append to
// one outbox. The lock goes with the process: a killed sink releases it.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open outbox lock: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("outbox %s is in use by another sink: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
