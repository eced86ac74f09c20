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
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// OpenParquet opens the Parquet file at path for reading Arrow data from
// a checked allocator. When the test ends the file is closed and the
// allocator must be back to zero: release what was read before (defer).
func OpenParquet(t testing.TB, path string) *pqarrow.FileReader {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pf.Close()
		mem.AssertSize(t, 0)
	})
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, mem)
	if err != nil {
		t.Fatal(err)
	}
	return fr
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
