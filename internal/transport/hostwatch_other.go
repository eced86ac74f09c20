//go:build !unix

package transport

import "log/slog"

// watchHost does nothing where there are no Unix signals or process
// groups; see hostwatch_unix.go.
func watchHost(*slog.Logger) {}
