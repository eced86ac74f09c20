// Package readback reads back, in tests, the files a pipeline wrote:
// Parquet with a checked allocator (what a test reads must be released by
// the time it ends) and CSV.
package readback

import (
	"context"
	"encoding/csv"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// OpenParquet opens the Parquet file at path for reading Arrow data from
// a checked allocator. When the test ends the file is closed and the
// allocator must be back to zero: release what was read before (defer).
// The one exception is arrow-go's own: its DELTA_BINARY_PACKED decoder
// (v18.8.0, also used for the lengths of DELTA_BYTE_ARRAY, which the
// Parquet sink writes) never frees a 64-byte buffer it allocates per
// column chunk reader (two for text); those are the only bytes left
// allowed (see RATIONALE.md, "Delta encodings in the Parquet sink").
func OpenParquet(t testing.TB, path string) *pqarrow.FileReader {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	md := pf.MetaData()
	for g := 0; g < md.NumRowGroups(); g++ {
		for c := 0; c < md.NumColumns(); c++ {
			if cc, err := md.RowGroup(g).ColumnChunk(c); err == nil {
				allowed += deltaDecoders(cc.Encodings()) * deltaDecoderLeak
			}
		}
	}
	t.Cleanup(func() {
		pf.Close()
		if n := mem.CurrentAlloc(); n > allowed || n%deltaDecoderLeak != 0 {
			mem.AssertSize(t, 0) // fails, listing where the bytes were allocated
		}
	})
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, mem)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// deltaDecoderLeak is what arrow-go's delta decoder keeps per reader.
const deltaDecoderLeak = 64

// deltaDecoders returns how many DELTA_BINARY_PACKED decoders reading a
// column chunk with these encodings may create: one for integers, two for
// text (DELTA_BYTE_ARRAY's prefix and suffix lengths).
func deltaDecoders(encs []parquet.Encoding) int {
	n := 0
	for _, e := range encs {
		switch e {
		case parquet.Encodings.DeltaBinaryPacked:
			n++
		case parquet.Encodings.DeltaByteArray, parquet.Encodings.DeltaLengthByteArray:
			n += 2
		}
	}
	return n
}

// Parquet reads the whole Parquet file at path into a table, released
// when the test ends.
func Parquet(t testing.TB, path string) arrow.Table {
	t.Helper()
	tbl, err := OpenParquet(t, path).ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release) // before OpenParquet's cleanup: cleanups run last first
	return tbl
}

// CSV returns the records of the CSV file at path, header first.
func CSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// Columns maps the names of a header record to their indexes.
func Columns(header []string) map[string]int {
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[h] = i
	}
	return col
}
