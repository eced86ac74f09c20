package parquet

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Durable progress for flat schemas.
//
// pqarrow.FileWriter writes a footer only when it closes, so a file it is
// writing is unreadable until then and the engine has to keep every batch
// for replay. parquet/file's Writer, under it, can also write a footer
// without closing (FlushWithFooter): the file is then complete up to that
// point, and the row groups written after it are followed by a new footer
// describing them all (readers read the last one). pqarrow does not expose
// that writer, so for schemas of flat columns (no lists, structs or maps:
// what CSV and other tabular sources produce) flatWriter drives it itself,
// one leaf column per Arrow column. Other schemas keep pqarrow.FileWriter
// and are durable only when complete.

// flatSchema reports whether every column of schema is a leaf column.
func flatSchema(schema *arrow.Schema) bool {
	for _, f := range schema.Fields() {
		t := f.Type
		if ext, ok := t.(arrow.ExtensionType); ok {
			t = ext.StorageType()
		}
		if arrow.IsNested(t.ID()) || t.ID() == arrow.RUN_END_ENCODED {
			return false
		}
	}
	return true
}

// flatWriter writes Arrow batches of a flat schema to a Parquet file with
// the same layout and metadata as pqarrow.FileWriter (the Arrow schema is
// stored, so readers get back the types written).
type flatWriter struct {
	wr       *file.Writer
	rgw      file.BufferedRowGroupWriter // the open row group, nil after a flush
	rgRows   int64                       // rows in rgw
	maxRows  int64
	ctx      context.Context // pqarrow's write context
	nullable []bool          // per column: optional in Parquet
	def      []int16         // definition levels, reused
	ones     []int16         // all ones: the levels of a column without nulls
}

func newFlatWriter(schema *arrow.Schema, w io.Writer, props *parquet.WriterProperties) (*flatWriter, error) {
	arrowProps := pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
	pqSchema, err := pqarrow.ToParquet(schema, props, arrowProps)
	if err != nil {
		return nil, err
	}
	// As pqarrow.NewFileWriter does: the schema's metadata, then the
	// serialized Arrow schema (for a flat schema there is nothing of its
	// list renaming to do).
	kv := make(metadata.KeyValueMetadata, 0, schema.Metadata().Len()+1)
	md := schema.Metadata()
	for i, k := range md.Keys() {
		kv.Append(k, md.Values()[i])
	}
	kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(schema, props.Allocator())))
	wr, err := file.NewParquetWriterWithError(w, pqSchema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(kv))
	if err != nil {
		return nil, err
	}
	nullable := make([]bool, schema.NumFields())
	for i, f := range schema.Fields() {
		nullable[i] = f.Nullable
	}
	return &flatWriter{
		wr:       wr,
		maxRows:  props.MaxRowGroupLength(),
		ctx:      pqarrow.NewArrowWriteContext(context.Background(), &arrowProps),
		nullable: nullable,
	}, nil
}

// write adds rec's rows to the open row group, starting a new one each
// time it holds maxRows rows.
func (w *flatWriter) write(rec arrow.RecordBatch) error {
	rows := rec.NumRows()
	for off := int64(0); off < rows; {
		if w.rgw == nil || w.rgRows == w.maxRows {
			rgw, err := w.wr.AppendBufferedRowGroupChecked() // closes the previous one
			if err != nil {
				return err
			}
			w.rgw, w.rgRows = rgw, 0
		}
		n := min(w.maxRows-w.rgRows, rows-off)
		for i, col := range rec.Columns() {
			if err := w.column(i, col, off, n); err != nil {
				return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
			}
		}
		w.rgRows += n
		off += n
	}
	return nil
}

// column writes rows [off, off+n) of col to leaf column i of the row group.
func (w *flatWriter) column(i int, col arrow.Array, off, n int64) error {
	cw, err := w.rgw.Column(i)
	if err != nil {
		return err
	}
	part := col
	if off != 0 || n != int64(col.Len()) {
		part = array.NewSlice(col, off, off+n)
		defer part.Release()
	}
	// A top-level column has no repetition levels; an optional one has a
	// definition level per row: 1 present, 0 null.
	var def []int16
	if w.nullable[i] {
		def = w.levels(part)
	}
	return pqarrow.WriteArrowToColumn(w.ctx, cw, part, def, nil, w.nullable[i])
}

// levels returns the definition levels of an optional column's rows.
func (w *flatWriter) levels(a arrow.Array) []int16 {
	n := a.Len()
	if a.NullN() == 0 {
		// All present: a prefix of a slice of ones, kept across calls
		// (the writer only reads it).
		if len(w.ones) < n {
			w.ones = make([]int16, n)
			for j := range w.ones {
				w.ones[j] = 1
			}
		}
		return w.ones[:n]
	}
	if cap(w.def) < n {
		w.def = make([]int16, n)
	}
	def := w.def[:n]
	for j := range def {
		def[j] = 0
		if a.IsValid(j) {
			def[j] = 1
		}
	}
	return def
}

// flush ends the open row group and writes a footer for every row group
// so far: the bytes written up to here form a complete Parquet file.
func (w *flatWriter) flush() error {
	w.rgw = nil
	return w.wr.FlushWithFooter()
}

// close ends the file (a no-op footer-wise if nothing was written since a
// flush).
func (w *flatWriter) close() error { return w.wr.Close() }
