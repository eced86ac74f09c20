//go:build !linux

package transport

import (
	"errors"
	"os"
)

// Shared memory rings are implemented on Linux only; elsewhere every body
// goes inline.
var errNoRing = errors.New("shared memory rings are not supported on this system")

func createRing(string, int) (*ring, error) { return nil, errNoRing }
func openRing(string) (*ring, error)        { return nil, errNoRing }
func munmap([]byte)                         {}
func dropPages([]byte)                      {}

func ringDir() string { return os.TempDir() }
