// Package parquettest reads Parquet files back in tests, with a checked
// allocator: what a test reads must be released by the time it ends.
package parquettest

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Open opens the Parquet file at path for reading Arrow data from a
// checked allocator. When the test ends the file is closed and the
// allocator must be back to zero: release what was read before (defer).
func Open(t testing.TB, path string) *pqarrow.FileReader {
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

// Read reads the whole Parquet file at path into a table, released when
// the test ends.
func Read(t testing.TB, path string) arrow.Table {
	t.Helper()
	tbl, err := Open(t, path).ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release) // before Open's cleanup: cleanups run last first
	return tbl
}
