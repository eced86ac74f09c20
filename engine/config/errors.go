package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in a pipeline file: the file name as given to [Parse] or
// [Load], and a 1-based line number. Errors of [Parse] and [Load] always
// have a line; one that concerns the whole file rather than one line of it
// (a missing table, no source) is at line 1. A zero Line prints as the file
// alone.
type Pos struct {
	File string
	Line int
}

// String returns "file:line", or just "file" when Line is 0.
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Error is one problem found in a pipeline file. Key is the path of the
// offending key, such as "rule[0].input" or "source[1].options"; it is empty
// for TOML syntax errors.
type Error struct {
	Pos Pos
	Key string
	Msg string
}

// Error returns "file:line: key: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a pipeline file, sorted by line. [Parse]
// and [Load] return an Errors value whenever they fail on the content of
// the file; errors.As finds either the Errors or its first *Error.
type Errors []*Error

// Error returns the errors one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns each *Error, so that errors.Is and errors.As look at them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sort orders errors by line, then key, then message, so output is stable.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Key, b.Key),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}
