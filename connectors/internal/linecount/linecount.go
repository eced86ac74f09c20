// Package linecount checks, in the tests of the line-based sources (JSON
// Lines, xAPI files), that every physical line of an input ends in exactly
// one of a row, a dead letter or a blank line, against a count of the
// lines made here independently of the sources' own line reader.
package linecount

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Count is how the lines of an input ended.
type Count struct {
	Lines, Rows, Dead, Blank int64
}

// Check checks that rows rows and the dead letters account for every
// line of data (one record per line; a line is what ends with \n, or the
// last bytes without one): each dead letter names a distinct, non-blank
// line and carries text of it, and rows + dead letters + blank lines =
// lines. A blank line holds only white space; data is the text as the
// line reader gets it (past any byte order mark the source strips).
func Check(data []byte, rows int64, dead []protocol.DeadLetter) (Count, error) {
	lines := bytes.Split(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	c := Count{Lines: int64(len(lines)), Rows: rows, Dead: int64(len(dead))}
	blank := make([]bool, len(lines))
	for i, l := range lines {
		if len(bytes.TrimSpace(l)) == 0 {
			blank[i] = true
			c.Blank++
		}
	}
	seen := make(map[int64]bool, len(dead))
	for _, d := range dead {
		if d.Line < 1 || d.Line > c.Lines {
			return c, fmt.Errorf("dead letter at line %d, outside the %d lines: %+v", d.Line, c.Lines, d)
		}
		if seen[d.Line] {
			return c, fmt.Errorf("two dead letters for line %d", d.Line)
		}
		seen[d.Line] = true
		text := strings.ToValidUTF8(string(lines[d.Line-1]), "\uFFFD")
		if blank[d.Line-1] || d.Raw == "" || !strings.Contains(text, strings.ToValidUTF8(d.Raw, "\uFFFD")) {
			return c, fmt.Errorf("dead letter for line %d does not carry its text %q: %+v", d.Line, text, d)
		}
	}
	if c.Rows+c.Dead+c.Blank != c.Lines {
		return c, fmt.Errorf("%d lines in, %d rows + %d dead-lettered + %d blank = %d",
			c.Lines, c.Rows, c.Dead, c.Blank, c.Rows+c.Dead+c.Blank)
	}
	return c, nil
}
