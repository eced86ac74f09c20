package jsonl

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// MaxLineBytes is the longest line a Lines returns whole; a longer line is
// returned cut, with Lines.Long set, so that one runaway line cannot
// exhaust memory.
const MaxLineBytes = 16 << 20

// Files expands a path that may be a glob into the files it names, in
// lexical order. No match is protocol.ErrNotFound.
func Files(connector, option, pattern string) ([]string, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("connector %q: option %q: bad glob %q: %w: %w", connector, option, pattern, err, protocol.ErrConfig)
	}
	if len(files) == 0 {
		if _, err := os.Stat(pattern); err != nil {
			return nil, fmt.Errorf("file %s: %w", pattern, protocol.ErrNotFound)
		}
		files = []string{pattern}
	}
	slices.Sort(files)
	return files, nil
}

// CheckResume checks that a resume position's file (number file, named
// path) is still at that place among files, the expansion of the option's
// pattern: a glob that now matches other files cannot be resumed.
func CheckResume(connector, option, pattern string, resume protocol.Position, files []string, file int, path string) error {
	if file < 0 || file >= len(files) || files[file] != path {
		return fmt.Errorf("connector %q: resume position %s names a file that %q no longer matches at that place: %w",
			connector, resume, pattern, protocol.ErrConfig)
	}
	return nil
}

// Lines reads the lines of a text stream and counts them, with the byte
// offset after each (in the uncompressed stream). Not safe for concurrent
// use.
type Lines struct {
	r   *bufio.Reader
	buf []byte
	// Line is the 1-based number of the line last returned.
	Line int64
	// Offset is the byte offset just after the line last returned.
	Offset int64
	// Long is set when the line last returned was longer than
	// MaxLineBytes and was cut.
	Long bool
}

// NewLines returns a Lines over r that counts from line and offset.
func NewLines(r io.Reader, line, offset int64) *Lines {
	return &Lines{r: bufio.NewReaderSize(r, 64<<10), Line: line, Offset: offset}
}

// Next returns the next line without its line break (\n or \r\n), valid
// until the next call, or io.EOF.
func (l *Lines) Next() ([]byte, error) {
	l.buf, l.Long = l.buf[:0], false
	read := int64(0)
	for {
		chunk, err := l.r.ReadSlice('\n')
		read += int64(len(chunk))
		if len(l.buf)+len(chunk) <= MaxLineBytes {
			l.buf = append(l.buf, chunk...)
		} else {
			l.Long = true
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if read == 0 {
				return nil, io.EOF
			}
			err = nil
		}
		if err != nil {
			return nil, err
		}
		l.Line++
		l.Offset += read
		b := bytes.TrimSuffix(l.buf, []byte("\n"))
		return bytes.TrimSuffix(b, []byte("\r")), nil
	}
}

// File is an open input file, gzip-compressed or not.
type File struct {
	f  *os.File
	gz *gzip.Reader
	// Lines reads its lines.
	*Lines
}

// Close closes the file.
func (f *File) Close() error {
	if f.gz != nil {
		f.gz.Close()
	}
	return f.f.Close()
}

// OpenFile opens path for reading lines from offset (in the uncompressed
// stream), counting lines from line. A file that starts with the gzip magic
// bytes is decompressed (it cannot seek: the bytes before offset are read
// and dropped). A UTF-8 byte order mark at the start is skipped.
func OpenFile(path string, line, offset int64) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("file %s: %w", path, protocol.ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	out := &File{f: f}
	var magic [3]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var r io.Reader = f
	if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		if out.gz, err = gzip.NewReader(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: bad gzip header: %w: %w", path, err, protocol.ErrConfig)
		}
		r = out.gz
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, r, offset); err != nil {
				out.Close()
				return nil, fmt.Errorf("resume %s at offset %d: %w: %w", path, offset, err, protocol.ErrConfig)
			}
		}
	} else if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("resume %s at offset %d: %w", path, offset, err)
		}
	}
	out.Lines = NewLines(r, line, offset)
	if bom, _ := out.Lines.r.Peek(3); offset == 0 && string(bom) == "\ufeff" {
		out.Lines.r.Discard(3)
		out.Lines.Offset = 3
	}
	return out, nil
}
