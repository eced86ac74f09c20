package csv

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/builtin/atomicfile"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// SinkName is the registry name of the CSV sink.
const SinkName = "csv_file"

const optNull = "null"

// Sink is the CSV sink, registered as "csv_file". It is stateless and safe
// for concurrent use.
type Sink struct{}

var _ protocol.Sink = Sink{}

var sinkSpec = protocol.Spec{
	Name:    SinkName,
	Kind:    protocol.KindSink,
	Version: "1.1.0",
	// In a continuous run the next run goes on with the file a stop put
	// in place, from the last checkpoint's position.
	AppendsAcrossRuns: true,
	Doc: `Connector "csv_file" (sink): writes batches to one CSV file. The file is
written under a temporary name in the same folder and renamed into place on
success, so a failed run leaves the previous file (or none), never half a
file. Values are written as: bool true/false, date32 yyyy-mm-dd, timestamps
"yyyy-mm-dd hh:mm:ss[.fraction]" with Z for UTC, floats in the shortest exact
form, nulls as the "null" option (by default "", the same as an empty
string). Only flat (non-nested) columns are supported. The source of the same
format is "csv"; see also the "parquet" sink. Flushes sync the temporary
file, and a restarted plugin truncates it to the last flush and goes on, so
a crash loses nothing acknowledged and duplicates nothing. Temporary files
of killed plugins are removed by the stage's next writer or on success. In
a continuous run (an unbounded source and checkpoints) the file is put in
place when the run stops, and a run resumed from its last checkpoint, after
a stop or a crash, goes on with that output: it copies the checkpointed
length of the file (or of the killed run's temporary file) into a new
temporary file and appends to it, so the file of the last run holds every
row once.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "CSV file to write (replaced if it exists)"},
		delimiterOption,
		{Name: optHeader, Type: protocol.TypeBool, Default: true, Doc: "write a header line with the column names"},
		{Name: optNull, Type: protocol.TypeString, Default: "", Doc: "text written for a null value"},
	},
}

// Spec describes the connector and its options.
func (Sink) Spec() protocol.Spec { return sinkSpec }

// Validate checks the options and creates the output folder.
func (Sink) Validate(ctx context.Context, cfg protocol.Config) error {
	cfg, err := checked(sinkSpec, cfg)
	if err != nil {
		return err
	}
	if _, err := delimiter(cfg); err != nil {
		return err
	}
	return atomicfile.PrepareDir(cfg.String(optPath))
}

// Open starts writing a CSV file of the given schema.
func (Sink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	cfg, err := checked(sinkSpec, cfg)
	if err != nil {
		return nil, err
	}
	comma, err := delimiter(cfg)
	if err != nil {
		return nil, err
	}
	for _, f := range schema.Fields() {
		if !writable(f.Type) {
			return nil, fmt.Errorf("connector %q: column %q: type %s cannot be written to CSV: %w",
				SinkName, f.Name, f.Type, protocol.ErrConfig)
		}
	}
	var from sinkPosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return nil, err
		}
	}
	// What earlier writers of this stage left, other than the file resumed
	// from, is garbage: their processes died before committing.
	path, owner := cfg.String(optPath), atomicfile.Owner(cfg.Pipeline, cfg.Stage)
	atomicfile.Sweep(path, owner, from.Temp)
	var file *atomicfile.File
	if from.Temp != "" {
		// Reopen: in a continuous run the file may have been put in place
		// since (a stop closes the sink after its last checkpoint).
		file, err = atomicfile.Reopen(path, owner, from.Temp, from.Size)
	} else {
		file, err = atomicfile.Create(path, owner)
	}
	if err != nil {
		return nil, err
	}
	w := &sinkWriter{file: file, buf: bufio.NewWriterSize(file, 256<<10)}
	if cfg.Bool(optHeader) && from.Temp == "" {
		hw := csv.NewWriter(w.buf)
		hw.Comma = comma
		names := make([]string, schema.NumFields())
		for i, f := range schema.Fields() {
			names[i] = f.Name
		}
		hw.Write(names)
		hw.Flush()
		if err := hw.Error(); err != nil {
			file.Abort()
			return nil, fmt.Errorf("write header to %s: %w", file.Path(), err)
		}
	}
	w.csv = arrowcsv.NewWriter(w.buf, schema,
		arrowcsv.WithComma(comma),
		arrowcsv.WithHeader(false),
		arrowcsv.WithNullWriter(cfg.String(optNull)))
	return w, nil
}

// writable reports whether arrow/csv's writer can write a column of type t;
// it panics on the others.
func writable(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.DECIMAL128, arrow.DECIMAL256, arrow.NULL:
		return true
	}
	return false
}

// sinkWriter writes one CSV file.
type sinkWriter struct {
	file *atomicfile.File
	buf  *bufio.Writer
	csv  *arrowcsv.Writer
}

// Write appends the batch's rows.
func (w *sinkWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.csv.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	return nil
}

// sinkPosition is what a flush made durable: the temporary file and its
// size.
type sinkPosition struct {
	Temp string `json:"temp"`
	Size int64  `json:"size"`
}

var _ protocol.Flusher = (*sinkWriter)(nil)

// Flush writes what is buffered, syncs the temporary file and returns its
// name and size: Open with that position truncates the file there and goes
// on writing.
func (w *sinkWriter) Flush(ctx context.Context) (protocol.Position, error) {
	if err := errors.Join(w.csv.Flush(), w.buf.Flush()); err != nil {
		return nil, fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	size, err := w.file.Checkpoint()
	if err != nil {
		return nil, err
	}
	return protocol.NewPosition(sinkPosition{Temp: w.file.Name(), Size: size})
}

// Close flushes the file and renames it into place.
func (w *sinkWriter) Close(ctx context.Context) error {
	if err := errors.Join(w.csv.Flush(), w.buf.Flush()); err != nil {
		w.file.Abort()
		return fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	return w.file.Commit()
}

// Abort removes the temporary file.
func (w *sinkWriter) Abort(ctx context.Context) error { return w.file.Abort() }
