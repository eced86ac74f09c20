package csv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"unicode/utf8"
)

// DefaultMaxRecordLines is the max_record_lines used when it is not set:
// the most physical lines one record (a quoted field with line breaks) may
// span before it is taken for a quote that never closes.
const DefaultMaxRecordLines = 1000

// record is one CSV record as the splitter read it, with the physical
// lines it came from.
type record struct {
	line   int      // its first physical line, 1-based
	lines  int      // physical lines it spans
	raw    []byte   // its text as in the input, line ends included
	fields []string // its fields, unquoted
	pos    []fieldPos
	// malformed is why the record could not be split into fields ("" if
	// it could); col is where, in bytes from 1 on its first line.
	malformed string
	col       int
}

// fieldPos is where a field starts: line relative to the record's first
// (0-based) and byte column (1-based).
type fieldPos struct{ line, col int }

// splitter splits decoded CSV text into records, RFC 4180 (or lenient with
// lazy quotes) as encoding/csv does, but keeping track of physical lines:
// every line of the input goes into exactly one record, and a record that
// cannot be split (a quote that never closes, a quote out of place, more
// than maxLines lines) is cut down to its first line, the lines after it
// being read again as the records that follow.
type splitter struct {
	r        *bufio.Reader
	comma    rune
	lazy     bool
	maxLines int
	line     int   // physical lines consumed before the next record
	offset   int64 // bytes consumed before the next record
	pend     []byte
	pendOff  int // lines read ahead and given back: pend[pendOff:]
	long     []byte
	rec      record
	fieldBuf []byte
	ends     []int
	firstLen int // bytes of the current record's first line
}

func newSplitter(r *bufio.Reader, comma rune, lazy bool, maxLines int) *splitter {
	if maxLines <= 0 {
		maxLines = DefaultMaxRecordLines
	}
	return &splitter{r: r, comma: comma, lazy: lazy, maxLines: maxLines}
}

// readLine returns the next physical line with its line end (none for a
// last line without one), nil and io.EOF at the end. The line is valid
// until the next call.
func (s *splitter) readLine() ([]byte, error) {
	if s.pendOff < len(s.pend) {
		rest := s.pend[s.pendOff:]
		n := len(rest)
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			n = i + 1
		}
		s.pendOff += n
		return rest[:n], nil
	}
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.r.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if len(line) > 0 && err == io.EOF {
		err = nil
	}
	return line, err
}

// content returns a physical line without its line end (\n, \r\n, or a
// lone \r before the end of the input).
func content(line []byte) []byte {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return line[:n]
}

// next returns the next record, io.EOF at the end of the input, or the
// error of the reader. The record is valid until the next call.
func (s *splitter) next() (*record, error) {
	rec := &s.rec
	rec.line, rec.lines, rec.malformed, rec.col = s.line+1, 1, "", 0
	rec.raw, rec.pos = rec.raw[:0], rec.pos[:0]
	s.fieldBuf, s.ends = s.fieldBuf[:0], s.ends[:0]
	first, err := s.readLine()
	if len(first) == 0 {
		if err == nil {
			err = io.EOF
		}
		return nil, err
	}
	rec.raw = append(rec.raw, first...)
	s.firstLen = len(rec.raw)
	last := first[len(first)-1] == '\n' // the line has a line end
	line := content(rec.raw)
	rl, col := 0, 1 // relative line and byte column of line[0]
	commaLen := utf8.RuneLen(s.comma)
	malformed := func(c int, why string) {
		rec.malformed, rec.col = why, c
	}
parse:
	for {
		if len(line) == 0 || line[0] != '"' {
			// An unquoted field: up to the next comma or the line end.
			i := bytes.IndexRune(line, s.comma)
			field := line
			if i >= 0 {
				field = field[:i]
			}
			if !s.lazy {
				if j := bytes.IndexByte(field, '"'); j >= 0 {
					malformed(col+j, csv.ErrBareQuote.Error())
					break parse
				}
			}
			s.fieldBuf = append(s.fieldBuf, field...)
			s.ends = append(s.ends, len(s.fieldBuf))
			rec.pos = append(rec.pos, fieldPos{rl, col})
			if i < 0 {
				break parse
			}
			line = line[i+commaLen:]
			col += i + commaLen
			continue
		}
		// A quoted field, which may go on over the next lines.
		start := fieldPos{rl, col}
		line = line[1:]
		col++
		for {
			i := bytes.IndexByte(line, '"')
			if i < 0 {
				// The line ends inside the quotes: the field goes on.
				s.fieldBuf = append(s.fieldBuf, line...)
				if !last {
					malformed(start.col, fmt.Sprintf("quoted field starting at line %d column %d does not close before the end of the file",
						rec.line+start.line, start.col))
					break parse
				}
				if rec.lines >= s.maxLines {
					malformed(start.col, fmt.Sprintf("quoted field starting at line %d column %d does not close within %d lines (option %q)",
						rec.line+start.line, start.col, s.maxLines, optMaxRecordLines))
					break parse
				}
				next, err := s.readLine()
				if len(next) == 0 {
					if err != nil && err != io.EOF {
						return nil, err
					}
					malformed(start.col, fmt.Sprintf("quoted field starting at line %d column %d does not close before the end of the file",
						rec.line+start.line, start.col))
					break parse
				}
				s.fieldBuf = append(s.fieldBuf, '\n')
				from := len(rec.raw)
				rec.raw = append(rec.raw, next...)
				rec.lines++
				rl++
				col = 1
				last = next[len(next)-1] == '\n'
				line = content(rec.raw[from:])
				continue
			}
			s.fieldBuf = append(s.fieldBuf, line[:i]...)
			line = line[i+1:]
			col += i + 1
			switch r, _ := utf8.DecodeRune(line); {
			case len(line) > 0 && r == '"':
				s.fieldBuf = append(s.fieldBuf, '"') // "" is a quote
				line = line[1:]
				col++
			case len(line) > 0 && r == s.comma:
				s.ends = append(s.ends, len(s.fieldBuf))
				rec.pos = append(rec.pos, start)
				line = line[commaLen:]
				col += commaLen
				continue parse
			case len(line) == 0:
				s.ends = append(s.ends, len(s.fieldBuf))
				rec.pos = append(rec.pos, start)
				break parse
			case s.lazy:
				s.fieldBuf = append(s.fieldBuf, '"')
			default:
				malformed(col-1, csv.ErrQuote.Error())
				break parse
			}
		}
	}
	if rec.malformed != "" {
		rec.fields = rec.fields[:0]
		s.cut()
	} else {
		str := string(s.fieldBuf)
		rec.fields = rec.fields[:0]
		prev := 0
		for _, e := range s.ends {
			rec.fields = append(rec.fields, str[prev:e])
			prev = e
		}
	}
	s.line += rec.lines
	s.offset += int64(len(rec.raw))
	return rec, nil
}

// cut reduces the current record to its first line and gives the lines
// after it back, to be read again as the next records.
func (s *splitter) cut() {
	rec := &s.rec
	if rec.lines == 1 {
		return
	}
	if rec.malformed == "" {
		// cut after next returned: undo its count of the lines given back.
		s.line -= rec.lines - 1
		s.offset -= int64(len(rec.raw) - s.firstLen)
	}
	pend := make([]byte, 0, len(rec.raw)-s.firstLen+len(s.pend)-s.pendOff)
	pend = append(pend, rec.raw[s.firstLen:]...)
	pend = append(pend, s.pend[s.pendOff:]...)
	s.pend, s.pendOff = pend, 0
	rec.raw = rec.raw[:s.firstLen]
	rec.lines = 1
	rec.fields = rec.fields[:0]
	rec.pos = rec.pos[:0]
}

// text returns the record's text as in the input without its last line
// end, for a dead letter's Raw.
func (rec *record) text() string {
	return string(content(rec.raw))
}

// fieldPos returns the absolute line and the column of field i.
func (rec *record) fieldPos(i int) (int, int) {
	return rec.line + rec.pos[i].line, rec.pos[i].col
}
