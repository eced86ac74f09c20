package parquet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestEncodingChoices: a column whose first batch is mostly distinct
// values (an identifier) is written plain, one whose values repeat with a
// dictionary; every column chunk has statistics and a page index.
func TestEncodingChoices(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "class_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "half_days", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	path := filepath.Join(t.TempDir(), "out.parquet")
	ctx := context.Background()
	w, err := Sink{}.Open(ctx, config(path, nil), mem, sc)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	for batch := range 3 {
		for i := range 5000 {
			n := batch*5000 + i
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("S%07d", n))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("6e%d", n%12))
			b.Field(2).(*array.Int64Builder).Append(int64(n))
			b.Field(3).(*array.Int64Builder).Append(int64(1 + n%2))
		}
		rec := b.NewRecordBatch()
		err := w.Write(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	wantDict := map[string]bool{"student_id": false, "class_id": true, "seq": false, "half_days": true}
	pages := rdr.GetPageIndexReader()
	for g := 0; g < rdr.NumRowGroups(); g++ {
		rg := rdr.MetaData().RowGroup(g)
		for c := 0; c < rg.NumColumns(); c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			name := cc.PathInSchema().String()
			dict := cc.HasDictionaryPage() || slices.Contains(cc.Encodings(), parquet.Encodings.RLEDict)
			if dict != wantDict[name] {
				t.Errorf("row group %d, column %s: dictionary %v, want %v (encodings %v)", g, name, dict, wantDict[name], cc.Encodings())
			}
			if set, err := cc.StatsSet(); err != nil || !set {
				t.Errorf("row group %d, column %s: no statistics (%v)", g, name, err)
			}
			if cc.GetColumnIndexLocation() == nil || cc.GetOffsetIndexLocation() == nil {
				t.Errorf("row group %d, column %s: no page index", g, name)
			}
		}
	}
	if pages == nil {
		t.Error("no page index reader")
	}
}

// TestDictionaryFor: the choice on first batches of each kind.
func TestDictionaryFor(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	build := func(n int, f func(i int, b array.Builder), typ arrow.DataType) arrow.Array {
		b := array.NewBuilder(mem, typ)
		defer b.Release()
		for i := range n {
			f(i, b)
		}
		return b.NewArray()
	}
	cases := []struct {
		name     string
		col      arrow.Array
		dict, ok bool
	}{
		{"distinct strings", build(4096, func(i int, b array.Builder) { b.(*array.StringBuilder).Append(fmt.Sprint("id", i)) }, arrow.BinaryTypes.String), false, true},
		{"repeated strings", build(4096, func(i int, b array.Builder) { b.(*array.StringBuilder).Append(fmt.Sprint("c", i%100)) }, arrow.BinaryTypes.String), true, true},
		{"distinct float64", build(4096, func(i int, b array.Builder) { b.(*array.Float64Builder).Append(float64(i) / 3) }, arrow.PrimitiveTypes.Float64), false, true},
		{"repeated date32", build(4096, func(i int, b array.Builder) { b.(*array.Date32Builder).Append(arrow.Date32(i % 30)) }, arrow.FixedWidthTypes.Date32), true, true},
		{"half null, distinct", build(4096, func(i int, b array.Builder) {
			if i%2 == 0 {
				b.(*array.Int64Builder).Append(int64(i))
			} else {
				b.AppendNull()
			}
		}, arrow.PrimitiveTypes.Int64), false, true},
		{"mostly null", build(4096, func(i int, b array.Builder) {
			if i%10 == 0 {
				b.(*array.Int64Builder).Append(int64(i % 3))
			} else {
				b.AppendNull()
			}
		}, arrow.PrimitiveTypes.Int64), false, false},
		{"too few rows", build(100, func(i int, b array.Builder) { b.(*array.Int64Builder).Append(int64(i)) }, arrow.PrimitiveTypes.Int64), false, false},
		{"bool", build(4096, func(i int, b array.Builder) { b.(*array.BooleanBuilder).Append(i%2 == 0) }, arrow.FixedWidthTypes.Boolean), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer c.col.Release()
			dict, ok := dictionaryFor(c.col)
			if dict != c.dict || ok != c.ok {
				t.Errorf("dictionaryFor = %v, %v; want %v, %v", dict, ok, c.dict, c.ok)
			}
		})
	}
}
