package parquet

import (
	"bytes"
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
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestEncodingChoices: a column whose first batch is mostly distinct
// values is written without a dictionary (DELTA_BYTE_ARRAY for
// identifiers in order, plain for others), one whose values repeat with a
// dictionary; every column chunk has statistics and a page index, and the
// values read back are those written.
func TestEncodingChoices(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "class_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "half_days", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "token", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
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
			b.Field(4).(*array.StringBuilder).Append(token(n))
			b.Field(5).(*array.Date32Builder).Append(arrow.Date32(20000 + n/1000))
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
	wantDict := map[string]bool{"student_id": false, "class_id": true, "seq": false, "half_days": true, "token": false, "day": false}
	wantDelta := map[string]parquet.Encoding{"student_id": parquet.Encodings.DeltaByteArray,
		"seq": parquet.Encodings.DeltaBinaryPacked, "day": parquet.Encodings.DeltaBinaryPacked}
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
			for _, enc := range []parquet.Encoding{parquet.Encodings.DeltaByteArray, parquet.Encodings.DeltaBinaryPacked} {
				if has, want := slices.Contains(cc.Encodings(), enc), wantDelta[name] == enc; has != want {
					t.Errorf("row group %d, column %s: %s %v, want %v (encodings %v)", g, name, enc, has, want, cc.Encodings())
				}
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
	got := readStrings(t, path, "student_id")
	if len(got) != 15000 || got[0] != "S0000000" || got[14999] != "S0014999" {
		t.Fatalf("student_id read back: %d values, first %q, last %q", len(got), got[0], got[len(got)-1])
	}
	for n, v := range got {
		if want := fmt.Sprintf("S%07d", n); v != want {
			t.Fatalf("student_id row %d: %q, want %q", n, v, want)
		}
	}
}

// token returns a pseudo-random 16-letter text for n: distinct values
// that share no prefix with their neighbours.
func token(n int) string {
	x := uint64(n)*0x9E3779B97F4A7C15 + 1
	b := make([]byte, 16)
	for i := range b {
		x ^= x >> 29
		x *= 0xBF58476D1CE4E5B9
		b[i] = 'a' + byte(x>>59)
	}
	return string(b)
}

// readStrings reads the text column name of the Parquet file at path.
// Not with a checked allocator: arrow-go's DELTA_BYTE_ARRAY decoder
// (v18.8.0) does not free 64 bytes per page (a reader's leak, not the
// file's).
func readStrings(t *testing.T, path, name string) []string {
	t.Helper()
	mem := memory.NewGoAllocator()
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 4096}, mem)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q in %s", name, tbl.Schema())
	}
	var out []string
	for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
		s := chunk.(*array.String)
		for i := 0; i < s.Len(); i++ {
			out = append(out, s.Value(i))
		}
	}
	return out
}

// TestDeltaFor: DELTA_BINARY_PACKED for integers whose neighbours differ
// by few bits, a dictionary (or plain) for others.
func TestDeltaFor(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ints := func(n int, f func(i int) (int64, bool)) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		for i := range n {
			if v, ok := f(i); ok {
				b.Append(v)
			} else {
				b.AppendNull()
			}
		}
		return b.NewArray()
	}
	days := func(n int) arrow.Array {
		b := array.NewDate32Builder(mem)
		defer b.Release()
		for i := range n {
			b.Append(arrow.Date32(20000 + i/5000))
		}
		return b.NewArray()
	}
	rng := uint64(1)
	random := func(mod uint64) func(int) (int64, bool) {
		return func(int) (int64, bool) {
			rng = rng*6364136223846793005 + 1442695040888963407
			return int64((rng >> 33) % mod), true
		}
	}
	strs := array.NewStringBuilder(mem)
	defer strs.Release()
	for i := range 4096 {
		strs.Append(fmt.Sprint(i))
	}
	cases := []struct {
		name string
		col  arrow.Array
		want bool
	}{
		{"counter", ints(4096, func(i int) (int64, bool) { return int64(1000 + i), true }), true},
		{"counter with nulls", ints(4096, func(i int) (int64, bool) { return int64(i), i%7 != 0 }), true},
		{"days in order", days(20000), true},
		{"constant", ints(4096, func(int) (int64, bool) { return 7, true }), true},
		{"counts 0-2 in no order", ints(4096, random(3)), false},
		{"codes 1-2 in no order", ints(4096, random(2)), false},
		{"random large", ints(4096, random(1<<40)), false},
		{"too few rows", ints(100, func(i int) (int64, bool) { return int64(i), true }), false},
		{"text", strs.NewArray(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer c.col.Release()
			if got := deltaFor(c.col); got != c.want {
				t.Errorf("deltaFor = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSharedPrefixes: DELTA_BYTE_ARRAY for text whose neighbours share
// most of their bytes, not for other text or other types.
func TestSharedPrefixes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	strs := func(n int, f func(i int) string) arrow.Array {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for i := range n {
			if s := f(i); s == "<null>" {
				b.AppendNull()
			} else {
				b.Append(s)
			}
		}
		return b.NewArray()
	}
	ints := array.NewInt64Builder(mem)
	defer ints.Release()
	for i := range 4096 {
		ints.Append(int64(i))
	}
	cases := []struct {
		name string
		col  arrow.Array
		want bool
	}{
		{"identifiers in order", strs(4096, func(i int) string { return fmt.Sprintf("S%07d", i) }), true},
		{"identifiers with nulls", strs(4096, func(i int) string {
			if i%3 == 0 {
				return "<null>"
			}
			return fmt.Sprintf("S%07d", i)
		}), true},
		{"random tokens", strs(4096, token), false},
		{"numbers in order", strs(4096, func(i int) string { return fmt.Sprint(100000 + i) }), true},
		{"short tokens", strs(4096, func(i int) string { return token(i)[:4] }), false},
		{"all null", strs(4096, func(int) string { return "<null>" }), false},
		{"int64", ints.NewArray(), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer c.col.Release()
			if got := sharedPrefixes(c.col); got != c.want {
				t.Errorf("sharedPrefixes = %v, want %v", got, c.want)
			}
		})
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

// TestParallelColumnsSameFile: a file whose columns were encoded several
// at a time is the one written column after column, to the byte, with
// nulls, every encoding the sink chooses and row groups that end inside
// batches.
func TestParallelColumnsSameFile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "class_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "absent", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "rate", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "token", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	var recs []arrow.RecordBatch
	for batch := range 3 {
		for i := range 20000 {
			n := batch*20000 + i
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("S%07d", n))
			if n%11 == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("6e%d", n%12))
			}
			b.Field(2).(*array.Date32Builder).Append(arrow.Date32(20000 + n/7000))
			if n%13 == 0 {
				b.Field(3).AppendNull()
			} else {
				b.Field(3).(*array.Int64Builder).Append(int64(n % 3))
			}
			b.Field(4).(*array.Float64Builder).Append(float64(n%3) / 2)
			b.Field(5).(*array.BooleanBuilder).Append(n%5 == 0)
			b.Field(6).(*array.StringBuilder).Append(token(n))
		}
		recs = append(recs, b.NewRecordBatch())
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	opts, err := func() ([]parquet.WriterProperty, error) {
		_, opts, err := options(config("x.parquet", map[string]any{"row_group_rows": 25000}), mem)
		return opts, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	files := map[int]*bytes.Buffer{}
	for _, workers := range []int{1, 3} {
		var buf bytes.Buffer
		w, err := newAdaptiveFlatWriter(sc, &buf, opts)
		if err != nil {
			t.Fatal(err)
		}
		w.workers = workers
		for _, r := range recs {
			if err := w.write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
		files[workers] = &buf
	}
	if !bytes.Equal(files[1].Bytes(), files[3].Bytes()) {
		t.Fatalf("the files differ: %d bytes column after column, %d in parallel", files[1].Len(), files[3].Len())
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(files[3].Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	if rdr.NumRows() != 60000 || rdr.NumRowGroups() != 3 {
		t.Errorf("%d rows in %d row groups, want 60000 in 3", rdr.NumRows(), rdr.NumRowGroups())
	}
}
