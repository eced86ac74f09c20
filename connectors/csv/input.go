package csv

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Encodings accepted by the `encoding` option.
const (
	encAuto        = "auto"
	encUTF8        = "utf-8"
	encUTF16       = "utf-16"
	encWindows1252 = "windows-1252"
	encISO88591    = "iso-8859-1"
)

// sniffBytes is how much of a file is looked at to detect its encoding and
// delimiter.
const sniffBytes = 64 << 10

// listFiles expands the path option into the files to read, in sorted
// order: the file itself if it exists, else the files matching it as a glob
// (* ? [a-z] {a,b}, and ** for any number of folders).
func listFiles(pattern string) ([]string, error) {
	if st, err := os.Stat(pattern); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("csv path %s is a folder: expected a file or a glob such as %s: %w",
				pattern, pattern+string(os.PathSeparator)+"*.csv", protocol.ErrConfig)
		}
		return []string{pattern}, nil
	}
	if !strings.ContainsAny(pattern, "*?[{") {
		return nil, fmt.Errorf("csv file %s: %w", pattern, protocol.ErrNotFound)
	}
	files, err := doublestar.FilepathGlob(pattern, doublestar.WithFilesOnly())
	if err != nil {
		return nil, fmt.Errorf("csv path %q: not a valid glob (%v): %w", pattern, err, protocol.ErrConfig)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("csv path %s: no file matches: %w", pattern, protocol.ErrNotFound)
	}
	sort.Strings(files)
	return files, nil
}

// input is one opened file: its decoded text (UTF-8, past any byte order
// mark, gunzipped) and what it was.
type input struct {
	path     string
	encoding string // the encoding used, after detection
	text     *bufio.Reader
	bom      int64 // bytes of the file before its text: a UTF-8 byte order mark
	f        *os.File
	gz       *gzip.Reader
}

// openInput opens path, gunzips it if it starts with the gzip magic number,
// and decodes it from enc (encAuto: a byte order mark says UTF-8 or UTF-16;
// without one, valid UTF-8 is UTF-8 and anything else Windows-1252).
func openInput(path, enc string) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("csv file %s: %w", path, protocol.ErrNotFound)
		}
		return nil, fmt.Errorf("open csv file: %w", err)
	}
	in := &input{path: path, f: f}
	raw := bufio.NewReaderSize(f, sniffBytes)
	if magic, _ := raw.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(raw)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: starts like gzip but is not a valid gzip file (%v): %w", path, err, protocol.ErrConfig)
		}
		in.gz = gz
		raw = bufio.NewReaderSize(gz, sniffBytes)
	}
	head, err := peekFirst(raw)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	whole := len(head) < sniffBytes && raw.Buffered() == len(head) && atEOF(raw)
	var text io.Reader = raw
	switch {
	case (enc == encAuto || enc == encUTF8) && bytes.HasPrefix(head, []byte("\ufeff")):
		raw.Discard(3)
		in.encoding = encUTF8
		in.bom = 3
	case (enc == encAuto || enc == encUTF16) && (bytes.HasPrefix(head, []byte{0xff, 0xfe}) || bytes.HasPrefix(head, []byte{0xfe, 0xff})):
		in.encoding = encUTF16
	case enc == encUTF16:
		in.encoding = encUTF16 // no byte order mark: little endian, as Windows writes it
	case enc == encAuto:
		in.encoding = encWindows1252
		if validUTF8Prefix(head, whole) {
			in.encoding = encUTF8
		}
	default:
		in.encoding = enc
	}
	switch in.encoding {
	case encUTF16:
		text = unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder().Reader(raw)
	case encWindows1252:
		text = charmap.Windows1252.NewDecoder().Reader(raw)
	case encISO88591:
		text = charmap.ISO8859_1.NewDecoder().Reader(raw)
	}
	in.text = bufio.NewReaderSize(text, 64<<10)
	return in, nil
}

// peekFirst returns what the first read of b gives (up to its size),
// without consuming it. It does not wait for more: a named pipe or a slow
// stream is sniffed on what has arrived.
func peekFirst(b *bufio.Reader) ([]byte, error) {
	if _, err := b.Peek(1); err != nil && err != io.EOF {
		return nil, err
	}
	head, _ := b.Peek(b.Buffered())
	return head, nil
}

// atEOF reports whether b has nothing more to give than what it holds,
// trying one more read only when its buffer has room.
func atEOF(b *bufio.Reader) bool {
	n := b.Buffered()
	if n >= b.Size() {
		return false
	}
	_, err := b.Peek(n + 1)
	return err == io.EOF
}

// validUTF8Prefix reports whether b is valid UTF-8, allowing a rune cut at
// the end when b is not the whole file.
func validUTF8Prefix(b []byte, whole bool) bool {
	if !whole {
		for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
			if r, _ := utf8.DecodeLastRune(b); r != utf8.RuneError {
				break
			}
			b = b[:len(b)-1]
		}
	}
	return utf8.Valid(b)
}

// Close closes the file.
func (in *input) Close() error {
	if in.gz != nil {
		in.gz.Close()
	}
	return in.f.Close()
}

// skip reads and drops the first n bytes of the text and returns the
// number of line breaks among them.
func (in *input) skip(n int64) (int, error) {
	lines := 0
	buf := make([]byte, 64<<10)
	for n > 0 {
		k, err := in.text.Read(buf[:min(int64(len(buf)), n)])
		lines += bytes.Count(buf[:k], []byte{'\n'})
		n -= int64(k)
		if err == io.EOF && n > 0 {
			return 0, fmt.Errorf("resume %s: offset is past the end of the file: %w", in.path, protocol.ErrConfig)
		}
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("resume %s: %w", in.path, err)
		}
	}
	return lines, nil
}

// delimiterCandidates are the delimiters that detection chooses from, in
// order of preference when they fit the sample equally well.
var delimiterCandidates = []rune{',', ';', '\t', '|'}

// sniffDelimiter returns the candidate delimiter that splits the first
// records of head into the same number (two or more) of fields most
// consistently; ',' when none splits anything. whole says head is the whole
// file; otherwise its last, perhaps cut, line is ignored.
func sniffDelimiter(head []byte, whole bool) rune {
	if !whole {
		if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
			head = head[:i+1]
		}
	}
	best, bestScore := ',', 0.0
	for _, c := range delimiterCandidates {
		r := csv.NewReader(bytes.NewReader(head))
		r.Comma = c
		r.FieldsPerRecord = -1
		r.LazyQuotes = true
		var counts []int
		for len(counts) < 50 {
			rec, err := r.Read()
			if err != nil {
				break
			}
			counts = append(counts, len(rec))
		}
		if len(counts) == 0 || counts[0] < 2 {
			continue
		}
		same := 0
		for _, n := range counts {
			if n == counts[0] {
				same++
			}
		}
		if score := float64(same) / float64(len(counts)); score > bestScore {
			best, bestScore = c, score
		}
	}
	return best
}
