// Package coltypes looks up the column type names that text sources accept
// in their `columns` option (utf8, int32, date32...).
package coltypes

import (
	"fmt"
	"slices"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/suggest"
)

// Lookup returns the type called name in types, or an error wrapping
// protocol.ErrConfig that names the column and suggests the closest name
// (or lists the known ones).
func Lookup[T any](types map[string]T, column, name string) (T, error) {
	if t, ok := types[name]; ok {
		return t, nil
	}
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	slices.Sort(names)
	msg := fmt.Sprintf("column %q: unknown type %q%s", column, name, suggest.Hint(name, names, "known"))
	var zero T
	return zero, fmt.Errorf("%s: %w", msg, protocol.ErrConfig)
}
