// Package linecount checks, in the tests of the line-based sources (JSON
// Lines, xAPI files), that every physical line of an input ends in exactly
// one of a row, a dead letter or a blank line, against a count of the
// lines made here independently of the sources' own line reader. For the
// sources whose records may take several lines (Pronote, OneRoster), it
// counts lines and checks the dead letters' spans (Lines, DeadLines,
// CheckSpans).
package linecount

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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

// Lines is the number of physical lines of data: each \n ends one, and
// the last bytes without one are one more.
func Lines(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// DeadLines is the number of lines the dead letters' texts hold, for the
// sources whose records may take several lines (CSV, Pronote, OneRoster).
func DeadLines(dead []protocol.DeadLetter) int {
	n := 0
	for _, d := range dead {
		n += strings.Count(d.Raw, "\n") + 1
	}
	return n
}

// CheckSpans checks the dead letters of a source whose records may take
// several lines, after a header line: each has a reason and the text of
// its lines, starts after the header and after the last line of the one
// before it (no overlap), and none goes past line lines.
func CheckSpans(dead []protocol.DeadLetter, lines int) error {
	next := int64(2)
	for _, d := range dead {
		if d.Reason == "" || d.Raw == "" || d.Line < next {
			return fmt.Errorf("dead letter without a reason or text, or at line %d before %d: %+v", d.Line, next, d)
		}
		next = d.Line + int64(strings.Count(d.Raw, "\n")) + 1
	}
	if next > int64(lines)+1 {
		return fmt.Errorf("dead letters go on to line %d, past the %d lines", next-1, lines)
	}
	return nil
}

// Compose makes a test input for a source whose records may take several
// lines: header, then up to 59 records, each good (a format whose one %d
// takes the record's index) or, one time in three, one of pieces chosen by
// r. A piece of white space alone is written as it is and counted in
// blank.
func Compose(r *rand.Rand, header, good string, pieces []string) (data string, blank int) {
	var b strings.Builder
	b.WriteString(header)
	for i := range r.IntN(60) {
		p := good
		if r.IntN(3) == 0 {
			p = pieces[r.IntN(len(pieces))]
		}
		if strings.TrimSpace(p) == "" {
			blank++
			b.WriteString(p)
			continue
		}
		fmt.Fprintf(&b, p, i)
	}
	return b.String(), blank
}

// CheckRecords checks that a source whose records may take several lines
// accounted for every line of data after its header: the dead letters'
// spans (CheckSpans), and 1 header + the lines of the rows (1 + the line
// breaks in each row's text) + the dead letters' lines + blank lines = the
// lines of data.
func CheckRecords(data []byte, rows []string, dead []protocol.DeadLetter, blank int) error {
	lines := Lines(data)
	if err := CheckSpans(dead, lines); err != nil {
		return err
	}
	inRows := 0
	for _, row := range rows {
		inRows += 1 + strings.Count(row, "\n")
	}
	if got := 1 + inRows + DeadLines(dead) + blank; got != lines {
		return fmt.Errorf("%d lines in, 1 header + %d in rows + %d dead-lettered + %d blank = %d",
			lines, inRows, DeadLines(dead), blank, got)
	}
	return nil
}
