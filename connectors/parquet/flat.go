package parquet

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"
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
// stored, so readers get back the types written). The Parquet writer is
// created with the first batch (or at the first flush or close), so that
// an adaptive writer can choose its encodings from that batch.
type flatWriter struct {
	schema   *arrow.Schema
	out      io.Writer
	props    *parquet.WriterProperties
	adaptive []parquet.WriterProperty // when set, props are these plus per-column choices
	pqSchema *pqschema.Schema
	kv       metadata.KeyValueMetadata
	wr       *file.Writer
	rgw      file.BufferedRowGroupWriter // the open row group, nil after a flush
	rgRows   int64                       // rows in rgw
	maxRows  int64
	ctxs     []context.Context // per column: pqarrow's write context (it holds scratch buffers)
	nullable []bool            // per column: optional in Parquet
	defs     [][]int16         // per column: definition levels, reused
	ones     []int16           // all ones: the levels of a column without nulls
	workers  int               // columns of a batch encoded at once
}

// parallelMinRows is the fewest rows of a batch whose columns are encoded
// in parallel: below it, starting goroutines costs about what it saves.
const parallelMinRows = 4096

// newFlatWriter returns a writer of schema to w with props.
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
	nullable := make([]bool, schema.NumFields())
	ctxs := make([]context.Context, schema.NumFields())
	for i, f := range schema.Fields() {
		nullable[i] = f.Nullable
		ctxs[i] = pqarrow.NewArrowWriteContext(context.Background(), &arrowProps)
	}
	return &flatWriter{
		schema:   schema,
		out:      w,
		props:    props,
		pqSchema: pqSchema,
		kv:       kv,
		maxRows:  props.MaxRowGroupLength(),
		ctxs:     ctxs,
		nullable: nullable,
		defs:     make([][]int16, schema.NumFields()),
		workers:  runtime.GOMAXPROCS(0),
	}, nil
}

// newAdaptiveFlatWriter is newFlatWriter with the properties opts, plus
// the dictionary choices that the first batch suggests (see dictionaryFor).
func newAdaptiveFlatWriter(schema *arrow.Schema, w io.Writer, opts []parquet.WriterProperty) (*flatWriter, error) {
	fw, err := newFlatWriter(schema, w, parquet.NewWriterProperties(opts...))
	if err != nil {
		return nil, err
	}
	fw.adaptive = opts
	return fw, nil
}

// start creates the Parquet writer; first is the first batch, nil if
// there is none.
func (w *flatWriter) start(first arrow.RecordBatch) error {
	if w.wr != nil {
		return nil
	}
	if w.adaptive != nil && first != nil {
		opts := slices.Clone(w.adaptive)
		for i, col := range first.Columns() {
			name := w.schema.Field(i).Name
			if deltaFor(col) {
				opts = append(opts, parquet.WithDictionaryFor(name, false), parquet.WithEncodingFor(name, parquet.Encodings.DeltaBinaryPacked))
				continue
			}
			if dict, ok := dictionaryFor(col); ok {
				opts = append(opts, parquet.WithDictionaryFor(name, dict))
				if !dict && sharedPrefixes(col) {
					opts = append(opts, parquet.WithEncodingFor(name, parquet.Encodings.DeltaByteArray))
				}
			}
		}
		w.props = parquet.NewWriterProperties(opts...)
	}
	wr, err := file.NewParquetWriterWithError(w.out, w.pqSchema.Root(), file.WithWriterProps(w.props), file.WithWriteMetadata(w.kv))
	if err != nil {
		return err
	}
	w.wr = wr
	return nil
}

// dictionarySample is the most rows of a first batch looked at to choose a
// column's encoding, and dictionaryMinRows the fewest that say anything.
const (
	dictionarySample  = 64 << 10
	dictionaryMinRows = 1024
)

// dictionaryFor says whether col, the first batch of a column, is worth
// dictionary encoding: yes when its values repeat (at most half of its
// values distinct), no when they are mostly distinct (identifiers, timestamps),
// where a dictionary costs its hashing and grows past its page limit
// before falling back to plain, leaving a large dictionary page behind.
// ok is false when there are too few rows to tell, or the type has no
// dictionary (bool): the writer's default stays, dictionary with its
// size-based fallback.
func dictionaryFor(col arrow.Array) (dict, ok bool) {
	n := min(col.Len(), dictionarySample)
	valid := n
	if col.NullN() > 0 {
		valid = 0
		for i := 0; i < n; i++ {
			if col.IsValid(i) {
				valid++
			}
		}
	}
	if valid < dictionaryMinRows {
		return false, false
	}
	distinct := 0
	switch a := col.(type) {
	case *array.String:
		seen := make(map[string]struct{}, 1024)
		for i := 0; i < n && distinct <= valid/2; i++ {
			if a.IsValid(i) {
				seen[a.Value(i)] = struct{}{}
				distinct = len(seen)
			}
		}
	case *array.Boolean:
		return false, false
	default:
		data := col.Data()
		if len(data.Buffers()) != 2 || data.Buffers()[1] == nil {
			return false, false
		}
		width := 0
		if fw, isFixed := col.DataType().(arrow.FixedWidthDataType); isFixed {
			width = fw.BitWidth() / 8
		}
		if width == 0 || width > 8 {
			return false, false
		}
		buf := data.Buffers()[1].Bytes()[data.Offset()*width:]
		seen := make(map[uint64]struct{}, 1024)
		for i := 0; i < n && distinct <= valid/2; i++ {
			if col.IsValid(i) {
				var v uint64
				for b := 0; b < width; b++ {
					v |= uint64(buf[i*width+b]) << (8 * b)
				}
				seen[v] = struct{}{}
				distinct = len(seen)
			}
		}
	}
	return distinct <= valid/2, true
}

// deltaFor says whether col, the first batch of an integer column (int32,
// int64, date32, timestamp), is worth DELTA_BINARY_PACKED encoding rather
// than a dictionary (or plain, for mostly distinct values): yes when the
// differences between neighbouring values take no more bits, block by
// block of 32 as the encoding packs them, than a dictionary's indices
// would (days or timestamps in order, identifiers, counters). The
// encoding has no hash table to fill, so it costs less CPU than a
// dictionary; values in no order (counts, codes) keep the dictionary,
// whose indices are then smaller. It needs dictionaryMinRows valid values.
func deltaFor(col arrow.Array) bool {
	var get func(i int) int64
	switch a := col.(type) {
	case *array.Int64:
		get = func(i int) int64 { return a.Value(i) }
	case *array.Int32:
		get = func(i int) int64 { return int64(a.Value(i)) }
	case *array.Date32:
		get = func(i int) int64 { return int64(a.Value(i)) }
	case *array.Timestamp:
		get = func(i int) int64 { return int64(a.Value(i)) }
	default:
		return false
	}
	n := min(col.Len(), dictionarySample)
	distinct := make(map[int64]struct{}, 64)
	var (
		prev                 int64
		havePrev             bool
		lo, hi               int64
		inBlock, blocks, sum int
	)
	endBlock := func() {
		sum += bits.Len64(uint64(hi - lo))
		blocks++
		inBlock = 0
	}
	valid := 0
	for i := 0; i < n; i++ {
		if col.IsNull(i) {
			continue
		}
		valid++
		v := get(i)
		if len(distinct) <= 1<<16 {
			distinct[v] = struct{}{}
		}
		if havePrev {
			d := v - prev
			if inBlock == 0 || d < lo {
				lo = d
			}
			if inBlock == 0 || d > hi {
				hi = d
			}
			if inBlock++; inBlock == 32 {
				endBlock()
			}
		}
		prev, havePrev = v, true
	}
	if inBlock > 0 {
		endBlock()
	}
	if valid < dictionaryMinRows || blocks == 0 {
		return false
	}
	dictBits := bits.Len(uint(len(distinct) - 1))
	return sum <= dictBits*blocks
}

// sharedPrefixes says whether col, the first batch of a text column
// written without a dictionary, is worth DELTA_BYTE_ARRAY encoding: yes
// when each value shares at least half of its bytes with the value before
// it, as identifiers written in order do (S0001234, S0001235...). Each
// value is then stored as the length of that shared prefix and the rest,
// which leaves zstd a tenth of the bytes to compress: a smaller file for
// less CPU than plain. Values without such prefixes (UUIDs, free text)
// stay plain, where the prefix lengths would only add bytes.
func sharedPrefixes(col arrow.Array) bool {
	a, ok := col.(*array.String)
	if !ok {
		return false
	}
	n := min(a.Len(), dictionarySample)
	shared, total := 0, 0
	prev, havePrev := "", false
	for i := 0; i < n; i++ {
		if a.IsNull(i) {
			continue
		}
		v := a.Value(i)
		total += len(v)
		if havePrev {
			k := 0
			for k < len(v) && k < len(prev) && v[k] == prev[k] {
				k++
			}
			shared += k
		}
		prev, havePrev = v, true
	}
	return total > 0 && 2*shared >= total
}

// write adds rec's rows to the open row group, starting a new one each
// time it holds maxRows rows.
func (w *flatWriter) write(rec arrow.RecordBatch) error {
	if err := w.start(rec); err != nil {
		return err
	}
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
		if err := w.columns(rec, off, n); err != nil {
			return err
		}
		w.rgRows += n
		off += n
	}
	return nil
}

// columns writes rows [off, off+n) of every column of rec to the row
// group, several columns at once when there are cores for it: the column
// chunks of a buffered row group are independent until it closes (each
// has its own pages, statistics, page index and pqarrow context), and the
// bytes of each are the same whichever goroutine encodes it, so the file
// is the same as written column after column (see RATIONALE.md,
// "Parquet columns encoded in parallel").
func (w *flatWriter) columns(rec arrow.RecordBatch, off, n int64) error {
	cols := rec.Columns()
	errs := make([]error, len(cols))
	if workers := min(w.workers, len(cols)); workers < 2 || n < parallelMinRows {
		for i, col := range cols {
			if errs[i] = w.column(i, col, off, n); errs[i] != nil {
				break
			}
		}
	} else {
		w.growOnes(int(n)) // read by every goroutine, grown before
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(cols) {
						return
					}
					errs[i] = w.column(i, cols[i], off, n)
				}
			}()
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
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
		def = w.levels(i, part)
	}
	return pqarrow.WriteArrowToColumn(w.ctxs[i], cw, part, def, nil, w.nullable[i])
}

// growOnes makes w.ones at least n long.
func (w *flatWriter) growOnes(n int) {
	if len(w.ones) < n {
		w.ones = make([]int16, n)
		for j := range w.ones {
			w.ones[j] = 1
		}
	}
}

// levels returns the definition levels of the rows of a, a part of the
// optional column i.
func (w *flatWriter) levels(i int, a arrow.Array) []int16 {
	n := a.Len()
	if a.NullN() == 0 {
		// All present: a prefix of a slice of ones, kept across calls
		// (the writer only reads it; columns grows it before encoding
		// columns in parallel).
		w.growOnes(n)
		return w.ones[:n]
	}
	if cap(w.defs[i]) < n {
		w.defs[i] = make([]int16, n)
	}
	def := w.defs[i][:n]
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
	if err := w.start(nil); err != nil {
		return err
	}
	w.rgw = nil
	return w.wr.FlushWithFooter()
}

// close ends the file (a no-op footer-wise if nothing was written since a
// flush).
func (w *flatWriter) close() error {
	if err := w.start(nil); err != nil {
		return err
	}
	return w.wr.Close()
}
