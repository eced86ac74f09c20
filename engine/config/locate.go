package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// The TOML decoder tells what a document holds but not where: it has no API
// for the line of a key. locator recovers that by scanning the text once. It
// understands just enough TOML to follow it: table headers ([a.b] and
// [[a.b]], with a running index per array of tables), key = value lines with
// dotted and quoted keys, comments, single- and multi-line strings, and
// arrays and inline tables that may span lines. It runs after the decoder
// has accepted the document, but it never fails or panics on bad input: it
// skips what it does not understand.
//
// Key paths are the ones used in error messages: segments joined by dots,
// each element of an array of tables (or of an inline array) written with
// its index, and segments that are not bare keys quoted, as in
// `source[1].options."file name"`.

// locator maps key paths to the line where each is first mentioned.
type locator struct {
	lines  map[string]int // key path -> first line
	arrays map[string]int // path of an array of tables -> elements so far
}

// locate scans a TOML document and returns its key positions.
func locate(data []byte) *locator {
	l := &locator{lines: map[string]int{}, arrays: map[string]int{}}
	s := &scanner{data: data, line: 1}
	l.document(s)
	return l
}

// line returns the line of path, or of its nearest located parent, or 0.
func (l *locator) line(path string) int {
	for path != "" {
		if n, ok := l.lines[path]; ok {
			return n
		}
		path = parentPath(path)
	}
	return 0
}

// mark records the line of path unless it is already known.
func (l *locator) mark(path string, line int) {
	if _, ok := l.lines[path]; !ok {
		l.lines[path] = line
	}
}

// joinKey appends one key segment to a path, quoting it when it is not a
// bare TOML key.
func joinKey(parent, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// indexKey appends an array index to a path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath strips the last segment (".key" or "[i]") from a path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
		return ""
	}
	if strings.HasSuffix(path, `"`) {
		// A quoted last segment: find its opening quote, skipping escapes.
		for i := len(path) - 2; i >= 0; i-- {
			if path[i] == '"' && (i == 0 || path[i-1] != '\\') {
				if i > 0 && path[i-1] == '.' {
					return path[:i-1]
				}
				return ""
			}
		}
		return ""
	}
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		if path[i] == ']' {
			return path[:i+1]
		}
		return path[:i]
	}
	return ""
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// scanner is a cursor over the document that counts lines.
type scanner struct {
	data []byte
	i    int
	line int
}

func (s *scanner) eof() bool { return s.i >= len(s.data) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.data[s.i]
}

func (s *scanner) hasPrefix(p string) bool {
	return strings.HasPrefix(string(s.data[min(s.i, len(s.data)):]), p)
}

// next consumes one byte, counting newlines.
func (s *scanner) next() {
	if s.eof() {
		return
	}
	if s.data[s.i] == '\n' {
		s.line++
	}
	s.i++
}

// blanks skips spaces and tabs.
func (s *scanner) blanks() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.next()
	}
}

// space skips spaces, tabs, newlines and comments (inside arrays and
// multi-line inline tables).
func (s *scanner) space() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.next()
		case '#':
			s.toEOL()
		default:
			return
		}
	}
}

// toEOL skips to the end of the line, leaving the newline.
func (s *scanner) toEOL() {
	for !s.eof() && s.peek() != '\n' {
		s.next()
	}
}

// document scans top-level lines: headers and key/value pairs.
func (l *locator) document(s *scanner) {
	table := "" // path of the current table
	for !s.eof() {
		start := s.i
		s.blanks()
		switch c := s.peek(); {
		case c == '\n' || c == '\r':
			s.next()
		case c == '#':
			s.toEOL()
		case c == '[':
			table = l.header(s, table)
			s.toEOL()
		default:
			l.keyValue(s, table)
			s.toEOL()
		}
		if s.i == start { // never loop without progress
			s.next()
		}
	}
}

// header scans "[a.b]" or "[[a.b]]" and returns the path of the new table.
// On a malformed header it returns the current table unchanged.
func (l *locator) header(s *scanner, table string) string {
	line := s.line
	s.next() // [
	array := s.peek() == '['
	if array {
		s.next()
	}
	keys := s.keys()
	if len(keys) == 0 {
		return table
	}
	s.blanks()
	if s.peek() != ']' {
		return table
	}
	path := ""
	for j, k := range keys {
		path = joinKey(path, k)
		if j == len(keys)-1 {
			break
		}
		// A header through an array of tables extends its last element.
		if n, ok := l.arrays[path]; ok && n > 0 {
			path = indexKey(path, n-1)
		}
		l.mark(path, line)
	}
	l.mark(path, line)
	if array {
		n := l.arrays[path]
		l.arrays[path] = n + 1
		path = indexKey(path, n)
		l.mark(path, line)
	}
	return path
}

// keyValue scans "a.b = value" in table.
func (l *locator) keyValue(s *scanner, table string) {
	line := s.line
	keys := s.keys()
	if len(keys) == 0 {
		return
	}
	s.blanks()
	if s.peek() != '=' {
		return
	}
	s.next()
	s.blanks()
	path := table
	for _, k := range keys {
		path = joinKey(path, k)
		l.mark(path, line)
	}
	l.value(s, path)
}

// keys scans a dotted key such as `a."b.c".'d'` and returns its segments,
// or nil when there is no key here.
func (s *scanner) keys() []string {
	var out []string
	for {
		s.blanks()
		k, ok := s.key()
		if !ok {
			return nil
		}
		out = append(out, k)
		s.blanks()
		if s.peek() != '.' {
			return out
		}
		s.next()
	}
}

// key scans one bare, "basic" or 'literal' key.
func (s *scanner) key() (string, bool) {
	switch s.peek() {
	case '"':
		start := s.i
		s.next()
		for !s.eof() {
			switch s.peek() {
			case '\\':
				s.next()
				if s.peek() == '\n' {
					return "", false
				}
				s.next()
				continue
			case '\n':
				return "", false
			case '"':
				s.next()
				raw := string(s.data[start:s.i])
				if k, ok := unquoteKey(raw); ok {
					return k, true
				}
				return raw[1 : len(raw)-1], true
			}
			s.next()
		}
		return "", false
	case '\'':
		s.next()
		start := s.i
		for !s.eof() {
			switch s.peek() {
			case '\n':
				return "", false
			case '\'':
				k := string(s.data[start:s.i])
				s.next()
				return k, true
			}
			s.next()
		}
		return "", false
	default:
		start := s.i
		for !s.eof() && isBareKey(string(s.data[s.i:s.i+1])) {
			s.next()
		}
		if s.i == start {
			return "", false
		}
		return string(s.data[start:s.i]), true
	}
}

// unquoteKey decodes a "basic" quoted key as the TOML decoder does: its
// escapes (\e, \xHH of TOML 1.1) are not all Go's, so strconv.Unquote
// would give another key, whose line would then not be found.
func unquoteKey(raw string) (string, bool) {
	var m map[string]any
	if _, err := toml.Decode(raw+" = 0", &m); err != nil || len(m) != 1 {
		return "", false
	}
	for k := range m {
		return k, true
	}
	return "", false
}

// value scans one value whose key path is path, recording the keys of
// inline tables and the elements of arrays.
func (l *locator) value(s *scanner, path string) {
	switch {
	case s.hasPrefix(`"""`):
		s.multiline(`"""`, true)
	case s.hasPrefix(`'''`):
		s.multiline(`'''`, false)
	case s.peek() == '"':
		s.next()
		for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
			if s.peek() == '\\' {
				s.next()
				if s.peek() == '\n' {
					return
				}
			}
			s.next()
		}
		s.next()
	case s.peek() == '\'':
		s.next()
		for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
			s.next()
		}
		s.next()
	case s.peek() == '[':
		s.next()
		for i := 0; ; i++ {
			s.space()
			if s.eof() || s.peek() == ']' {
				s.next()
				return
			}
			start := s.i
			elem := indexKey(path, i)
			l.mark(elem, s.line)
			l.value(s, elem)
			s.space()
			if s.peek() == ',' {
				s.next()
			} else if s.i == start || s.peek() != ']' {
				return // malformed: let the caller skip the line
			}
		}
	case s.peek() == '{':
		s.next()
		for {
			s.space()
			if s.eof() || s.peek() == '}' {
				s.next()
				return
			}
			start := s.i
			line := s.line
			keys := s.keys()
			s.blanks()
			if len(keys) == 0 || s.peek() != '=' {
				if s.i == start {
					s.next()
				}
				return
			}
			s.next()
			s.space()
			p := path
			for _, k := range keys {
				p = joinKey(p, k)
				l.mark(p, line)
			}
			l.value(s, p)
			s.space()
			if s.peek() == ',' {
				s.next()
			}
		}
	default:
		// A number, boolean or date: up to the next delimiter.
		for !s.eof() {
			switch s.peek() {
			case ',', ']', '}', '\n', '#':
				return
			}
			s.next()
		}
	}
}

// multiline skips a multi-line string delimited by delim. A delimiter may
// be followed by up to two more quotes that belong to the content.
func (s *scanner) multiline(delim string, escapes bool) {
	for range len(delim) {
		s.next()
	}
	for !s.eof() {
		if escapes && s.peek() == '\\' {
			s.next()
			s.next()
			continue
		}
		if s.hasPrefix(delim) {
			for range len(delim) {
				s.next()
			}
			for range 2 {
				if s.peek() == delim[0] {
					s.next()
				}
			}
			return
		}
		s.next()
	}
}
