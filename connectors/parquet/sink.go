// Package parquet holds the built-in Parquet sink, registered as "parquet".
package parquet

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
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
	Name:    SinkName,
	Kind:    protocol.KindSink,
	Version: "1.0.0",
	Doc: `Connector "parquet" (sink): writes batches to one Parquet file, with the
Arrow schema (and its metadata) stored in the file so that Arrow readers get
back exactly the types written. Rows are gathered into row groups of
row_group_rows rows whatever the batch size. The file is written under a
temporary name in the same folder and renamed into place on success, so a
failed run leaves the previous file (or none), never half a file. The
file is durable only when complete (a Parquet footer describes every row
group): if the plugin crashes the engine starts the file over and replays
every batch, which it keeps until the file is closed. See also the
"csv_file" sink and the "csv" source.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "Parquet file to write (replaced if it exists)"},
		{Name: optCompression, Type: protocol.TypeString, Default: "zstd",
			Enum: []string{"zstd", "snappy", "gzip", "none"}, Doc: "compression codec of the column chunks"},
		{Name: optRowGroupRows, Type: protocol.TypeInt, Default: int64(DefaultRowGroupRows),
			Doc: "rows per row group; a row group is buffered in memory until complete"},
	},
}

// Spec describes the connector and its options.
func (Sink) Spec() protocol.Spec { return spec }

// options checks cfg's options and returns the writer properties they ask for.
func options(cfg protocol.Config) (string, *parquet.WriterProperties, error) {
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
	props := parquet.NewWriterProperties(
		parquet.WithCompression(codecs[cfg.String(optCompression)]),
		parquet.WithMaxRowGroupLength(rows),
		parquet.WithCreatedBy("vigie"),
	)
	return cfg.String(optPath), props, nil
}

// Validate checks the options and creates the output folder.
func (Sink) Validate(ctx context.Context, cfg protocol.Config) error {
	path, _, err := options(cfg)
	if err != nil {
		return err
	}
	return atomicfile.PrepareDir(path)
}

// Open starts writing a Parquet file of the given schema.
func (Sink) Open(ctx context.Context, cfg protocol.Config, schema *arrow.Schema) (protocol.Writer, error) {
	path, props, err := options(cfg)
	if err != nil {
		return nil, err
	}
	file, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(file, 1<<20)
	fw, err := pqarrow.NewFileWriter(schema, buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		file.Abort()
		return nil, fmt.Errorf("connector %q: schema cannot be written to Parquet: %v: %w", SinkName, err, protocol.ErrConfig)
	}
	return &writer{file: file, buf: buf, pq: fw}, nil
}

// writer writes one Parquet file.
type writer struct {
	file *atomicfile.File
	buf  *bufio.Writer
	pq   *pqarrow.FileWriter
}

// Write adds the batch's rows to the current row group.
func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.pq.WriteBuffered(rec); err != nil {
		return fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	return nil
}

// Close writes the last row group and the footer and renames the file into
// place.
func (w *writer) Close(ctx context.Context) error {
	if err := errors.Join(w.pq.Close(), w.buf.Flush()); err != nil {
		w.file.Abort()
		return fmt.Errorf("write %s: %w", w.file.Path(), err)
	}
	return w.file.Commit()
}

// Abort removes the temporary file.
func (w *writer) Abort(ctx context.Context) error {
	w.pq.Close() // frees buffered pages; its output goes nowhere that stays
	return w.file.Abort()
}
