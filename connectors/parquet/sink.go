// Package parquet holds the built-in Parquet sink, registered as "parquet".
package parquet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/vigie-edu/vigie/connectors/builtin/atomicfile"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// SinkName is the registry name of the Parquet sink.
const SinkName = "parquet"

// DefaultRowGroupRows is the default row group size. A row group is held in
// memory, encoded, until it is complete, so this bounds the sink's memory;
// 128 Ki rows is large enough for efficient scans of school-sized tables.
const DefaultRowGroupRows = 128 * 1024

// zstdLevel is the zstd level of column chunks.
const zstdLevel = 1

// Option names.
const (
	optPath         = "path"
	optCompression  = "compression"
	optRowGroupRows = "row_group_rows"
)

// codecs maps the `compression` option to Parquet codecs.
var codecs = map[string]compress.Compression{
	"zstd":   compress.Codecs.Zstd,
	"snappy": compress.Codecs.Snappy,
	"gzip":   compress.Codecs.Gzip,
	"none":   compress.Codecs.Uncompressed,
}

// Sink is the Parquet sink. It is stateless and safe for concurrent use.
type Sink struct{}

var _ protocol.Sink = Sink{}

var spec = protocol.Spec{
	Name:              SinkName,
	Kind:              protocol.KindSink,
	Version:           "1.3.0",
	AppendsAcrossRuns: true, // in a continuous run: a folder of parts
	Doc: `Connector "parquet" (sink): writes batches to one Parquet file, with the
Arrow schema (and its metadata) stored in the file so that Arrow readers get
back exactly the types written. Rows are gathered into row groups of
row_group_rows rows whatever the batch size. Encodings are chosen per
column from the first batch: integers and dates whose neighbouring values
differ by few bits (days, timestamps, counters in order) are written
DELTA_BINARY_PACKED; other columns whose values repeat, with a dictionary
(which falls back to plain if it outgrows 1 MiB in a row group); mostly
distinct text whose neighbours share most of their bytes (identifiers in
order) DELTA_BYTE_ARRAY, other mostly distinct values plain; every
column chunk has statistics and a page index, so readers skip row groups
and pages by value. The file is written under a
temporary name in the same folder and renamed into place on success, so a
failed run leaves the previous file (or none), never half a file. Each
flush of the engine ends the current row group and writes a footer after
it, so the file written so far is complete and synced: after a crash of
the plugin the file is started again from there (its rows are copied into
a new temporary file) and the engine replays only the batches written
since; temporary files of killed plugins are removed by the stage's next
writer or on success. Columns that are lists, structs or maps are the
exception: such a file is durable only when complete, and the engine keeps
every batch until it is. In a continuous run (an unbounded source and
checkpoints) path is a folder and each checkpoint that saw rows adds one
complete file to it, part-<n>.parquet (n from 1, 8 digits), renamed into
place from a temporary name starting with a dot only once that checkpoint
committed (at the next checkpoint, or when the run stops), so that a reader
never sees a part a crash takes back; a restart removes the parts its
checkpoint does not cover, and the next run goes on numbering after the last run's parts
(without a checkpoint to resume from, the folder starts over). Read the
output as one table from the folder (DuckDB: read_parquet('path/*.parquet')).
See also the "csv_file" sink and the "csv" source.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "Parquet file to write (replaced if it exists)"},
		{Name: optCompression, Type: protocol.TypeString, Default: "zstd",
			Enum: []string{"zstd", "snappy", "gzip", "none"}, Doc: "compression codec of the column chunks"},
		{Name: optRowGroupRows, Type: protocol.TypeInt, Default: int64(DefaultRowGroupRows),
			Doc: "rows per row group; a row group is buffered in memory until complete or the engine flushes (every 32 MiB or 64 batches), which ends it early"},
	},
}

// Spec describes the connector and its options.
func (Sink) Spec() protocol.Spec { return spec }

// options checks cfg's options and returns the writer properties they ask
// for, allocating from mem: the codec, the row group size, statistics
// (the default) and page indexes, so that readers skip pages by value.
func options(cfg protocol.Config, mem memory.Allocator) (string, []parquet.WriterProperty, error) {
	opts, err := spec.Check(cfg.Options)
	if err != nil {
		return "", nil, err
	}
	cfg.Options = opts
	rows := cfg.Int(optRowGroupRows)
	if rows < 1 {
		return "", nil, fmt.Errorf("connector %q: option %q: expected at least 1, got %d: %w",
			SinkName, optRowGroupRows, rows, protocol.ErrConfig)
	}
	codec := codecs[cfg.String(optCompression)]
	props := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(rows),
		parquet.WithCreatedBy("vigie"),
		parquet.WithAllocator(mem),
		parquet.WithStats(true),
		parquet.WithPageIndexEnabled(true),
	}
	if codec == compress.Codecs.Zstd {
		// zstd's fastest level: on the attendance benchmark both faster
		// and smaller than the codec's default (see RATIONALE.md).
		props = append(props, parquet.WithCompressionLevel(zstdLevel))
	}
	return cfg.String(optPath), props, nil
}

// Validate checks the options and creates the output folder (in a
// checkpointed run, path itself: the folder of the parts).
func (Sink) Validate(ctx context.Context, cfg protocol.Config) error {
	path, _, err := options(cfg, nil) // the properties are not used
	if err != nil {
		return err
	}
	if cfg.Checkpointed {
		return preparePartsDir(path)
	}
	return atomicfile.PrepareDir(path)
}

// Open starts writing a Parquet file of the given schema, or, with
// cfg.Resume set to a position Flush returned, a new one that starts with
// the rows that flush made durable.
func (Sink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	path, opts, err := options(cfg, mem)
	if err != nil {
		return nil, err
	}
	owner := atomicfile.Owner(cfg.Pipeline, cfg.Stage)
	if cfg.Checkpointed {
		return openParts(cfg, path, owner, schema, opts)
	}
	var from position
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return nil, err
		}
	}
	// What earlier writers of this stage left, other than the file resumed
	// from, is garbage: their processes died before committing.
	atomicfile.Sweep(path, owner, from.Temp)
	w, err := newWriter(path, owner, schema, opts)
	if err != nil {
		return nil, err
	}
	if from.Temp != "" {
		if err := w.recover(ctx, mem, path, owner, from, schema); err != nil {
			w.Abort(ctx)
			return nil, err
		}
	}
	return w, nil
}

// newWriter starts writing path under a temporary name (see atomicfile).
func newWriter(path, owner string, schema *arrow.Schema, opts []parquet.WriterProperty) (*writer, error) {
	file, err := atomicfile.Create(path, owner)
	if err != nil {
		return nil, err
	}
	w := &writer{file: file, buf: bufio.NewWriterSize(file, 1<<20)}
	if flatSchema(schema) {
		w.enc, err = newAdaptiveFlatWriter(schema, w.buf, opts)
	} else {
		var fw *pqarrow.FileWriter
		fw, err = pqarrow.NewFileWriter(schema, w.buf, parquet.NewWriterProperties(opts...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		w.enc = pqarrowWriter{fw}
	}
	if err != nil {
		file.Abort()
		return nil, fmt.Errorf("connector %q: schema cannot be written to Parquet: %w: %w", SinkName, err, protocol.ErrConfig)
	}
	return w, nil
}

// position is what a flush made durable: the first size bytes of the
// temporary file temp form a Parquet file of rows rows.
type position struct {
	Temp string `json:"temp"`
	Size int64  `json:"size"`
	Rows int64  `json:"rows"`
}

// writer writes one Parquet file.
type writer struct {
	file *atomicfile.File
	buf  *bufio.Writer
	enc  encoder
	rows int64
}

// encoder turns batches into the Parquet bytes of the file: a flatWriter
// (flat schemas, durable at each Flush) or pqarrow's FileWriter (nested
// ones, durable when complete).
type encoder interface {
	write(rec arrow.RecordBatch) error
	// close writes what is left and the footer.
	close() error
}

// pqarrowWriter is pqarrow's FileWriter as an encoder.
type pqarrowWriter struct{ fw *pqarrow.FileWriter }

func (p pqarrowWriter) write(rec arrow.RecordBatch) error { return p.fw.WriteBuffered(rec) }
func (p pqarrowWriter) close() error                      { return p.fw.Close() }

// recover copies into w the rows that the flush at pos made durable. The
// Parquet format cannot be appended to in place (its footer describes the
// row groups before it), so the rows are read back and written again. The
// file read stays until the output is committed or a later writer resumes
// from a flush of this one (both sweep it): until the engine has such a
// position it may resume from pos again.
func (w *writer) recover(ctx context.Context, mem memory.Allocator, path, owner string, pos position, schema *arrow.Schema) error {
	old, err := atomicfile.Resume(path, owner, pos.Temp, pos.Size)
	if err != nil {
		return protocol.WithKind(err, protocol.ErrConfig)
	}
	defer old.Close()
	rdr, err := file.NewParquetReader(old.File)
	if err != nil {
		return fmt.Errorf("resume %s from %s: %w", path, pos.Temp, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, mem)
	if err != nil {
		return fmt.Errorf("resume %s from %s: %w", path, pos.Temp, err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("resume %s from %s: %w", path, pos.Temp, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		if !sameColumns(rec.Schema(), schema) {
			return fmt.Errorf("resume %s from %s: its schema %s is not the one to write, %s: %w",
				path, pos.Temp, rec.Schema(), schema, protocol.ErrConfig)
		}
		if err := w.Write(ctx, rec); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("resume %s from %s: %w", path, pos.Temp, err)
	}
	if w.rows != pos.Rows {
		return fmt.Errorf("resume %s from %s: %d rows there, the flush made %d durable", path, pos.Temp, w.rows, pos.Rows)
	}
	return nil
}

// sameColumns reports whether a and b have the same column names, types
// and nullability (metadata aside: the Parquet reader adds its own).
func sameColumns(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i, f := range a.Fields() {
		g := b.Field(i)
		if f.Name != g.Name || !arrow.TypeEqual(f.Type, g.Type) || f.Nullable != g.Nullable {
			return false
		}
	}
	return true
}

// Write adds the batch's rows to the current row group.
func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.enc.write(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	w.rows += rec.NumRows()
	return nil
}

var _ protocol.Flusher = (*writer)(nil)

// Flush ends the current row group, writes a footer after it and syncs the
// temporary file: what is written so far is a complete Parquet file. The
// file goes on with the next row groups and ends with a footer describing
// all of them. For a schema with nested columns it returns no position:
// such a file is durable only when complete.
func (w *writer) Flush(ctx context.Context) (protocol.Position, error) {
	flat, ok := w.enc.(*flatWriter)
	if !ok {
		return nil, nil
	}
	if err := errors.Join(flat.flush(), w.buf.Flush()); err != nil {
		return nil, fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	size, err := w.file.Checkpoint()
	if err != nil {
		return nil, err
	}
	return protocol.NewPosition(position{Temp: w.file.Name(), Size: size, Rows: w.rows})
}

// Close writes the last row group and the footer and renames the file into
// place (which sweeps the files of this stage's dead writers).
func (w *writer) Close(ctx context.Context) error {
	if err := errors.Join(w.enc.close(), w.buf.Flush()); err != nil {
		w.file.Abort()
		return fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	return w.file.Commit()
}

// seal writes the last row group and the footer and makes the temporary
// file durable without renaming it into place: the parts of a
// checkpointed run are published later (parts.go). It returns the file's
// path.
func (w *writer) seal() (string, error) {
	if err := errors.Join(w.enc.close(), w.buf.Flush()); err != nil {
		w.file.Abort()
		return "", fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	tmp := w.file.Name()
	err := w.file.Sync()
	err = errors.Join(err, w.file.Close())
	if err == nil {
		err = os.Chmod(tmp, atomicfile.Mode)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("complete %s: %w", w.file.Path(), err)
	}
	return tmp, nil
}

// Abort removes the temporary file. The one it was recovered from stays:
// the engine may resume from it again.
func (w *writer) Abort(ctx context.Context) error {
	w.enc.close() // frees buffered pages; its output goes nowhere that stays
	return w.file.Abort()
}
