package pipelines_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/vigie-edu/vigie/internal/readback"
)

// csvxTable is a Parquet file read back: its schema and every column's
// values as text, nulls as "∅".
type csvxTable struct {
	schema *arrow.Schema
	cols   map[string][]string
	nulls  map[string]int
}

func (tb *csvxTable) rows() int {
	for _, c := range tb.cols {
		return len(c)
	}
	return 0
}

// typeOf returns the Arrow type of column name.
func (tb *csvxTable) typeOf(t *testing.T, name string) string {
	t.Helper()
	i := tb.schema.FieldIndices(name)
	if len(i) != 1 {
		t.Fatalf("no column %q in %s", name, tb.schema)
	}
	return tb.schema.Field(i[0]).Type.String()
}

// csvxReadParquet reads a Parquet file with a checked allocator.
func csvxReadParquet(t *testing.T, path string) *csvxTable {
	t.Helper()
	tbl := readback.Parquet(t, path)
	out := &csvxTable{schema: tbl.Schema(), cols: map[string][]string{}, nulls: map[string]int{}}
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for c, col := range rec.Columns() {
			name := rec.ColumnName(c)
			for i := 0; i < col.Len(); i++ {
				v := "∅"
				if col.IsNull(i) {
					out.nulls[name]++
				} else {
					v = col.ValueStr(i)
				}
				out.cols[name] = append(out.cols[name], v)
			}
		}
	}
	return out
}
