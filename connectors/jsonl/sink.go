package jsonl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// SinkName is the registry name of the JSON Lines sink.
const SinkName = "jsonl_file"

const optAppend = "append"

// Sink is the JSON Lines sink, registered as "jsonl_file". It is stateless
// and safe for concurrent use.
type Sink struct{}

var _ protocol.Sink = Sink{}

var sinkSpec = protocol.Spec{
	Name:    SinkName,
	Kind:    protocol.KindSink,
	Version: "1.1.0",
	// In a continuous run the next run goes on with the file from the
	// last checkpoint's position, after a stop as after a crash.
	AppendsAcrossRuns: true,
	Doc: `Connector "jsonl_file" (sink): writes each row as one JSON object per
line (arrow's JSON rendering: dates and timestamps as strings, nulls as
null), straight into the file, so that a reader following it (tail -f)
sees rows as they are flushed: made for continuous runs, such as alert
changes. The file is replaced at the start of a run, or kept and appended
to with append = true. Unlike csv_file and parquet it is not renamed into
place: a failed run leaves what it flushed. Flushes sync the file, and a
restarted plugin truncates it to the last flush and goes on, so a crash
loses nothing acknowledged and duplicates nothing. In a continuous run
(checkpoints) a run resumed from the last checkpoint, after a stop as after
a crash, truncates the file to the length that checkpoint recorded and
appends to it, so the file holds every row once. The source of the same
format is "jsonl".`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "JSON Lines file to write"},
		{Name: optAppend, Type: protocol.TypeBool, Default: false, Doc: "keep what the file holds and append to it, rather than replace it"},
	},
}

// Spec describes the connector and its options.
func (Sink) Spec() protocol.Spec { return sinkSpec }

// Validate checks the options and creates the output folder.
func (Sink) Validate(_ context.Context, cfg protocol.Config) error {
	opts, err := sinkSpec.Check(cfg.Options)
	if err != nil {
		return err
	}
	cfg.Options = opts
	if err := os.MkdirAll(filepath.Dir(cfg.String(optPath)), 0o755); err != nil {
		return fmt.Errorf("connector %q: output folder: %w", SinkName, err)
	}
	return nil
}

// sinkPosition is what a flush made durable: the file's size.
type sinkPosition struct {
	Size int64 `json:"size"`
}

// Open starts writing (or, with cfg.Resume, continues) the file.
func (Sink) Open(_ context.Context, cfg protocol.Config, _ memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	opts, err := sinkSpec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	path := cfg.String(optPath)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("connector %q: %w", SinkName, err)
	}
	var size int64
	switch {
	case cfg.Resume != nil:
		var from sinkPosition
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			f.Close()
			return nil, err
		}
		size = from.Size
	case cfg.Bool(optAppend):
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("connector %q: %w", SinkName, err)
		}
		size = st.Size()
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("connector %q: truncate %s to %d bytes: %w", SinkName, path, size, err)
	}
	if _, err := f.Seek(size, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("connector %q: %w", SinkName, err)
	}
	return &sinkWriter{f: f, buf: bufio.NewWriterSize(f, 256<<10), size: size}, nil
}

type sinkWriter struct {
	f    *os.File
	buf  *bufio.Writer
	size int64 // bytes written, buffered included
}

// Write appends the batch's rows.
func (w *sinkWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &countingWriter{w: w.buf}
	if err := array.RecordToJSON(rec, c); err != nil {
		return fmt.Errorf("write %s: %w", w.f.Name(), err)
	}
	w.size += c.n
	return nil
}

type countingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

var _ protocol.Flusher = (*sinkWriter)(nil)

// Flush writes what is buffered, syncs the file and returns its size.
func (w *sinkWriter) Flush(context.Context) (protocol.Position, error) {
	if err := errors.Join(w.buf.Flush(), w.f.Sync()); err != nil {
		return nil, fmt.Errorf("write %s: %w", w.f.Name(), err)
	}
	return protocol.NewPosition(sinkPosition{Size: w.size})
}

// Close flushes and closes the file.
func (w *sinkWriter) Close(context.Context) error {
	if err := errors.Join(w.buf.Flush(), w.f.Sync(), w.f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", w.f.Name(), err)
	}
	return nil
}

// Abort closes the file, leaving what was flushed.
func (w *sinkWriter) Abort(context.Context) error { return w.f.Close() }
