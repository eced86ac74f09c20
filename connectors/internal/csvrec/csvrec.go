// Package csvrec splits CSV text into records as encoding/csv does (RFC
// 4180, or lenient with lazy quotes) but by physical lines: every line of
// the input goes into exactly one record, and a record that cannot be
// split (a quote that never closes, a quote out of place, more than
// MaxLines lines) is cut down to its first line, the lines after it being
// read again as the records that follow. The CSV, Pronote and OneRoster
// sources use it so that a stray quote costs one line, not the rest of the
// file.
package csvrec

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// DefaultMaxLines is the most physical lines one record (a quoted field
// with line breaks) may span, when not set, before it is taken for a quote
// that never closes.
const DefaultMaxLines = 1000

// Record is one CSV record as the splitter read it, with the physical
// lines it came from.
type Record struct {
	Line   int      // its first physical line, 1-based
	Lines  int      // physical lines it spans
	Raw    []byte   // its text as in the input, line ends included
	Fields []string // its fields, unquoted
	pos    []fieldPos
	// Malformed is why the record could not be split into fields ("" if
	// it could); Col is where, in bytes from 1 on its first line.
	Malformed string
	Col       int
}

// fieldPos is where a field starts: line relative to the record's first
// (0-based) and byte column (1-based).
type fieldPos struct{ line, col int }

// Reader splits text into records (see the package comment). Not safe for
// concurrent use.
type Reader struct {
	r        *bufio.Reader
	comma    rune
	lazy     bool
	maxLines int
	option   string // the option that sets maxLines, for messages
	line     int    // physical lines consumed before the next record
	offset   int64  // bytes consumed before the next record
	pend     []byte
	pendOff  int // lines read ahead and given back: pend[pendOff:]
	long     []byte
	rec      Record
	fieldBuf []byte
	ends     []int
	firstLen int // bytes of the current record's first line
	alias    bool
}

// AliasFields makes the fields of the records that follow point into the
// reader's buffer instead of being copied out: they are then valid only
// until the next call, as the Record is, and must be copied by whoever
// keeps one. It saves an allocation per record.
func (s *Reader) AliasFields() { s.alias = true }

// NewReader returns a Reader over r with delimiter comma; lazy accepts
// quotes out of place as text (encoding/csv's LazyQuotes); maxLines (0:
// DefaultMaxLines) bounds the lines of a record, and option names what
// sets it in messages ("" for none).
func NewReader(r io.Reader, comma rune, lazy bool, maxLines int, option string) *Reader {
	if maxLines <= 0 {
		maxLines = DefaultMaxLines
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, comma: comma, lazy: lazy, maxLines: maxLines, option: option}
}

// SetLine sets the physical lines consumed before the next record, for a
// reader started in the middle of its input: the lines of the records and
// of their messages then count from there.
func (s *Reader) SetLine(n int) { s.line = n }

// Line returns the physical lines consumed before the next record.
func (s *Reader) Line() int { return s.line }

// InputOffset returns the bytes consumed before the next record.
func (s *Reader) InputOffset() int64 { return s.offset }

// readLine returns the next physical line with its line end (none for a
// last line without one), nil and io.EOF at the end. The line is valid
// until the next call.
func (s *Reader) readLine() ([]byte, error) {
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

// Content returns a physical line without its line end (\n, \r\n, or a
// lone \r before the end of the input).
func Content(line []byte) []byte {
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return line[:n]
}

// Next returns the next record, io.EOF at the end of the input, or the
// error of the reader. The record is valid until the next call.
func (s *Reader) Next() (*Record, error) {
	rec := &s.rec
	rec.Line, rec.Lines, rec.Malformed, rec.Col = s.line+1, 1, "", 0
	rec.Raw, rec.pos = rec.Raw[:0], rec.pos[:0]
	s.fieldBuf, s.ends = s.fieldBuf[:0], s.ends[:0]
	first, err := s.readLine()
	if len(first) == 0 {
		if err == nil {
			err = io.EOF
		}
		return nil, err
	}
	rec.Raw = append(rec.Raw, first...)
	s.firstLen = len(rec.Raw)
	last := first[len(first)-1] == '\n' // the line has a line end
	line := Content(rec.Raw)
	if bytes.IndexByte(line, '"') < 0 {
		// No quote: the fields are the line cut at each delimiter.
		s.unquoted(rec, line)
		return rec, nil
	}
	rl, col := 0, 1 // relative line and byte column of line[0]
	commaLen := utf8.RuneLen(s.comma)
	stray := 0 // column of a quote taken as text inside a quoted field (lazy)
	strayLine := 0
	malformed := func(c int, why string) {
		rec.Malformed, rec.Col = why, c
	}
parse:
	for {
		if len(line) == 0 || line[0] != '"' {
			// An unquoted field: up to the next comma or the line end.
			var i int
			if s.comma < utf8.RuneSelf {
				i = bytes.IndexByte(line, byte(s.comma))
			} else {
				i = bytes.IndexRune(line, s.comma)
			}
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
						rec.Line+start.line, start.col))
					break parse
				}
				if rec.Lines >= s.maxLines {
					malformed(start.col, fmt.Sprintf("quoted field starting at line %d column %d does not close within %d lines%s",
						rec.Line+start.line, start.col, s.maxLines, s.optionNote()))
					break parse
				}
				next, err := s.readLine()
				if len(next) == 0 {
					if err != nil && err != io.EOF {
						return nil, err
					}
					malformed(start.col, fmt.Sprintf("quoted field starting at line %d column %d does not close before the end of the file",
						rec.Line+start.line, start.col))
					break parse
				}
				s.fieldBuf = append(s.fieldBuf, '\n')
				from := len(rec.Raw)
				rec.Raw = append(rec.Raw, next...)
				rec.Lines++
				rl++
				col = 1
				last = next[len(next)-1] == '\n'
				line = Content(rec.Raw[from:])
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
				if stray == 0 {
					stray, strayLine = col-1, rl
				}
			default:
				why, c := csv.ErrQuote.Error(), col-1
				if rl > 0 {
					// Reported on the first line, which alone is dead-lettered.
					why = fmt.Sprintf("quoted field starting at line %d column %d does not close on its line (%s at line %d column %d)",
						rec.Line+start.line, start.col, why, rec.Line+rl, col-1)
					c = 1
					if start.line == 0 {
						c = start.col
					}
				}
				malformed(c, why)
				break parse
			}
		}
	}
	if rec.Malformed == "" && stray > 0 && rec.Lines > 1 {
		// Lazy quotes let a field that opened by mistake run on until some
		// quote happens to close it: over several lines, a quote taken as
		// text is more likely a record's opening quote than a field's.
		malformed(1, fmt.Sprintf("a quoted field over %d lines holds a stray quote at line %d column %d: taken for a quote that does not close",
			rec.Lines, rec.Line+strayLine, stray))
	}
	if rec.Malformed != "" {
		rec.Fields = rec.Fields[:0]
		s.Cut()
	} else {
		str := string(s.fieldBuf)
		rec.Fields = rec.Fields[:0]
		prev := 0
		for _, e := range s.ends {
			rec.Fields = append(rec.Fields, str[prev:e])
			prev = e
		}
	}
	s.line += rec.Lines
	s.offset += int64(len(rec.Raw))
	return rec, nil
}

// NextPlain returns the next physical line, line end included, when it
// is a record of its own without a quote in it (which Next would split at
// each delimiter, as unquoted does): the caller splits it itself, without
// the copies and bookkeeping of a Record. The line is valid until the
// next call and counts as read (Line, InputOffset); Unread gives it back.
// ok is false when the next record is not such a line: nothing is then
// consumed and Next reads it. It returns io.EOF at the end of the input.
func (s *Reader) NextPlain() (line []byte, ok bool, err error) {
	if s.pendOff < len(s.pend) {
		return nil, false, nil
	}
	line, err = s.readLine()
	if len(line) == 0 {
		if err == nil {
			err = io.EOF
		}
		return nil, false, err
	}
	if bytes.IndexByte(line, '"') >= 0 {
		s.pend, s.pendOff = append(s.pend[:0], line...), 0
		return nil, false, nil
	}
	s.line++
	s.offset += int64(len(line))
	return line, true, nil
}

// Unread gives back the line the last NextPlain returned, to be read
// again by Next.
func (s *Reader) Unread(line []byte) {
	s.pend, s.pendOff = append(s.pend[:0], line...), 0
	s.line--
	s.offset -= int64(len(line))
}

// unquoted splits line, a record's only line with no quote in it.
func (s *Reader) unquoted(rec *Record, line []byte) {
	var str string
	switch {
	case len(line) == 0:
	case s.alias:
		str = unsafe.String(&line[0], len(line))
	default:
		str = string(line)
	}
	rec.Fields = rec.Fields[:0]
	commaLen := utf8.RuneLen(s.comma)
	col := 1
	for {
		var i int
		if s.comma < utf8.RuneSelf {
			i = strings.IndexByte(str, byte(s.comma))
		} else {
			i = strings.IndexRune(str, s.comma)
		}
		rec.pos = append(rec.pos, fieldPos{0, col})
		if i < 0 {
			rec.Fields = append(rec.Fields, str)
			break
		}
		rec.Fields = append(rec.Fields, str[:i])
		str = str[i+commaLen:]
		col += i + commaLen
	}
	s.line++
	s.offset += int64(len(rec.Raw))
}

// Cut reduces the current record to its first line and gives the lines
// after it back, to be read again as the next records.
func (s *Reader) Cut() {
	rec := &s.rec
	if rec.Lines == 1 {
		return
	}
	if rec.Malformed == "" {
		// Cut after Next returned: undo its count of the lines given back.
		s.line -= rec.Lines - 1
		s.offset -= int64(len(rec.Raw) - s.firstLen)
	}
	pend := make([]byte, 0, len(rec.Raw)-s.firstLen+len(s.pend)-s.pendOff)
	pend = append(pend, rec.Raw[s.firstLen:]...)
	pend = append(pend, s.pend[s.pendOff:]...)
	s.pend, s.pendOff = pend, 0
	rec.Raw = rec.Raw[:s.firstLen]
	rec.Lines = 1
	rec.Fields = rec.Fields[:0]
	rec.pos = rec.pos[:0]
}

// Text returns the record's text as in the input without its last line
// end, for a dead letter's Raw.
func (rec *Record) Text() string {
	return string(Content(rec.Raw))
}

// FieldPos returns the absolute line and the column of field i.
func (rec *Record) FieldPos(i int) (int, int) {
	return rec.Line + rec.pos[i].line, rec.pos[i].col
}

func (s *Reader) optionNote() string {
	if s.option == "" {
		return ""
	}
	return fmt.Sprintf(" (option %q)", s.option)
}

// ParseError is what Read returns for a malformed record.
type ParseError struct {
	StartLine int    // the record's first line (its only line, once cut)
	Column    int    // byte column on that line
	Err       string // what is wrong
	Raw       string // the line's text
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.StartLine, e.Column, e.Err)
}

// Read returns the fields of the next record as encoding/csv's Reader.Read
// does (the slice is reused), a *ParseError for a malformed one, io.EOF at
// the end. The record read is Current.
func (s *Reader) Read() ([]string, error) {
	rec, err := s.Next()
	if err != nil {
		return nil, err
	}
	if rec.Malformed != "" {
		return nil, &ParseError{StartLine: rec.Line, Column: rec.Col, Err: rec.Malformed, Raw: rec.Text()}
	}
	return rec.Fields, nil
}

// Current returns the record last read.
func (s *Reader) Current() *Record { return &s.rec }

// FieldPos returns the line and column of field i of the record last read.
func (s *Reader) FieldPos(i int) (int, int) { return s.rec.FieldPos(i) }

// IsEmpty reports whether the record is an empty line.
func (rec *Record) IsEmpty() bool { return len(Content(rec.Raw)) == 0 }
