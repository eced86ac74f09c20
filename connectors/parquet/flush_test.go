package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/readback"
)

// readRows reads a Parquet file's rows as text, and its row groups' sizes.
func readRows(t *testing.T, path string) ([][]string, []int64) {
	t.Helper()
	fr := readback.OpenParquet(t, path)
	md := fr.ParquetReader().MetaData()
	var groups []int64
	for i := range md.NumRowGroups() {
		groups = append(groups, md.RowGroup(i).NumRows())
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	return tableRows(tbl), groups
}

// flushPos flushes w and decodes the position it returns.
func flushPos(t *testing.T, w protocol.Writer) (protocol.Position, position) {
	t.Helper()
	raw, err := w.(protocol.Flusher).Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var p position
	if err := protocol.DecodePosition(raw, &p); err != nil {
		t.Fatalf("flush of a flat schema returned %s: %v", raw, err)
	}
	return raw, p
}

// A flush leaves a temporary file that is a complete Parquet file of the
// rows written so far; the file then goes on and ends with every row.
func TestFlushLeavesACompleteFile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	path := filepath.Join(t.TempDir(), "t.parquet")
	w := open(t, config(path, map[string]any{"row_group_rows": 2}), mem)
	write(t, mem, w, batches[:2]) // 3 rows
	_, p := flushPos(t, w)
	if p.Rows != 3 {
		t.Errorf("position rows = %d, want 3", p.Rows)
	}
	if fi, err := os.Stat(p.Temp); err != nil || fi.Size() != p.Size {
		t.Fatalf("temporary file: %v, size %v, position says %d", err, fi, p.Size)
	}
	rows, groups := readRows(t, p.Temp)
	if !reflect.DeepEqual(rows, wantRows[:3]) {
		t.Errorf("rows at the flush = %q\nwant %q", rows, wantRows[:3])
	}
	// The flush ends the row group of the third row.
	if !reflect.DeepEqual(groups, []int64{2, 1}) {
		t.Errorf("row groups at the flush = %v, want [2 1]", groups)
	}
	// A second flush with nothing new written changes nothing.
	if _, p2 := flushPos(t, w); p2 != p {
		t.Errorf("flush with nothing written: %+v, then %+v", p, p2)
	}
	write(t, mem, w, batches[2:])
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, groups = readRows(t, path)
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("rows = %q\nwant %q", rows, wantRows)
	}
	if !reflect.DeepEqual(groups, []int64{2, 1, 1}) {
		t.Errorf("row groups = %v, want [2 1 1]", groups)
	}
	assertNames(t, filepath.Dir(path), "t.parquet")
}

// Crashes after flushes, one after the other: each writer starts from a
// flush, rows written after it are dropped (the engine replays them), and
// no temporary file is left once the output is committed. The engine
// resumes from the last position it got: the second writer's (last), or
// the first's when the second died before its flush reached the engine.
func TestResumeAfterCrashes(t *testing.T) {
	for _, from := range []string{"last", "first"} {
		t.Run("from the "+from+" flush", func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx := context.Background()
			dir := t.TempDir()
			path := filepath.Join(dir, "t.parquet")
			cfg := config(path, map[string]any{"row_group_rows": 2})
			cfg.Pipeline, cfg.Stage = "p", "out" // the owner of the temporary files

			w1 := open(t, cfg, mem)
			write(t, mem, w1, batches[:1]) // rows 0, 1
			raw1, p1 := flushPos(t, w1)
			write(t, mem, w1, batches[1:2]) // row 2: lost in the crash
			// w1's process dies: no Close, no Abort.

			cfg.Resume = raw1
			w2, err := Sink{}.Open(ctx, cfg, mem, schema)
			if err != nil {
				t.Fatal(err)
			}
			write(t, mem, w2, batches[1:2]) // replayed by the engine
			raw2, p2 := flushPos(t, w2)
			if p2.Temp == p1.Temp || p2.Rows != 3 {
				t.Errorf("position after the first recovery: %+v (first: %+v)", p2, p1)
			}
			write(t, mem, w2, batches[2:]) // row 3: lost in the second crash

			resume, replay, garbage := raw2, batches[2:], p1.Temp
			if from == "first" {
				resume, replay, garbage = raw1, batches[1:], p2.Temp
			}
			cfg.Resume = resume
			w3, err := Sink{}.Open(ctx, cfg, mem, schema)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(garbage); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after resuming from %s: %v", garbage, resume, err)
			}
			write(t, mem, w3, replay)
			if err := w3.Close(ctx); err != nil {
				t.Fatal(err)
			}
			rows, _ := readRows(t, path)
			if !reflect.DeepEqual(rows, wantRows) {
				t.Errorf("rows = %q\nwant %q", rows, wantRows)
			}
			assertNames(t, dir, "t.parquet")
			for _, w := range []protocol.Writer{w1, w2} {
				w.Abort(ctx) // frees what the "dead" writers held (an in-process test only)
			}
		})
	}
}

// Resume positions name files of this output only.
func TestResumeRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.parquet")
	other := filepath.Join(dir, "precious.parquet")
	if err := os.WriteFile(other, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A temporary file of this output, but another stage's.
	theirs := filepath.Join(dir, ".t.parquet.tmp-p.other-1")
	if err := os.WriteFile(theirs, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pos := range []string{
		`{"temp":"` + other + `","size":4,"rows":0}`,
		`{"temp":"` + theirs + `","size":4,"rows":0}`,
		`"not an object"`,
	} {
		cfg := config(path, nil)
		cfg.Pipeline, cfg.Stage = "p", "out"
		cfg.Resume = protocol.Position(pos)
		if _, err := (Sink{}).Open(context.Background(), cfg, memory.NewGoAllocator(), schema); err == nil {
			t.Errorf("resume from %s: no error", pos)
		}
	}
	for _, f := range []string{other, theirs} {
		if b, err := os.ReadFile(f); err != nil || string(b) != "PAR1" {
			t.Errorf("%s was touched: %q, %v", f, b, err)
		}
	}
}

// Nested columns go through pqarrow's writer: no position, the engine
// replays everything after a crash.
func TestNestedSchemaIsDurableWhenComplete(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	nested := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "marks", Type: arrow.ListOf(arrow.PrimitiveTypes.Float64), Nullable: true},
	}, nil)
	path := filepath.Join(t.TempDir(), "n.parquet")
	w, err := Sink{}.Open(context.Background(), config(path, nil), mem, nested)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := array.RecordFromJSON(mem, nested, strings.NewReader(`[{"id": 1, "marks": [12.5, 14]}, {"id": 2, "marks": null}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if pos, err := w.(protocol.Flusher).Flush(context.Background()); pos != nil || err != nil {
		t.Errorf("Flush = %s, %v; want no position", pos, err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows, _ := readRows(t, path); !reflect.DeepEqual(rows, [][]string{{"1", "[12.5,14]"}, {"2", "∅"}}) {
		t.Errorf("rows = %q", rows)
	}
}

// The flat writer writes what pqarrow's FileWriter writes, for the types
// the flat path takes: required and optional columns, dictionaries, nulls
// everywhere or nowhere, batches cut across row groups, and every flat
// type a source may give.
func TestFlatWriterMatchesPqarrow(t *testing.T) {
	cases := []struct {
		name   string
		fields []arrow.Field
		jsons  []string
		groups []int64
	}{{
		name: "school rows",
		fields: []arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int64},
			{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "class", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
			{Name: "mark", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			{Name: "absent", Type: arrow.FixedWidthTypes.Boolean},
			{Name: "none", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		},
		jsons: []string{
			`[{"id": 1, "name": "Ada", "class": "6A", "mark": 12.5, "absent": false, "none": null},
			  {"id": 2, "name": null, "class": "6B", "mark": null, "absent": true, "none": null},
			  {"id": 3, "name": "Bob", "class": null, "mark": 9, "absent": false, "none": null}]`,
			`[{"id": 4, "name": "Chloé", "class": "6A", "mark": 15, "absent": true, "none": null}]`,
			`[{"id": 5, "name": "", "class": "6B", "mark": 0, "absent": false, "none": null},
			  {"id": 6, "name": "Eve", "class": "6A", "mark": -1, "absent": true, "none": null},
			  {"id": 7, "name": "Fay", "class": null, "mark": 20, "absent": false, "none": null},
			  {"id": 8, "name": null, "class": "6C", "mark": null, "absent": true, "none": null},
			  {"id": 9, "name": "Gus", "class": "6C", "mark": 11, "absent": false, "none": null}]`,
		},
		groups: []int64{4, 4, 1},
	}, {
		name: "every flat type",
		fields: []arrow.Field{
			{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
			{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
			{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
			{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
			{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
			{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
			{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
			{Name: "fsb", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}, Nullable: true},
			{Name: "dec", Type: &arrow.Decimal128Type{Precision: 9, Scale: 2}, Nullable: true},
			{Name: "d64", Type: arrow.FixedWidthTypes.Date64, Nullable: true},
			{Name: "t32", Type: arrow.FixedWidthTypes.Time32ms, Nullable: true},
			{Name: "t64", Type: arrow.FixedWidthTypes.Time64us, Nullable: true},
			{Name: "tsz", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Europe/Paris"}, Nullable: true},
			{Name: "tsn", Type: arrow.FixedWidthTypes.Timestamp_ns},
		},
		jsons: []string{
			`[{"i8": -8, "u16": 65535, "u32": 4000000000, "u64": 18000000000000000000, "f32": 1.5, "ls": "long",
			   "bin": "AAEC", "fsb": "YWJj", "dec": "1234.56", "d64": "2025-09-01", "t32": "08:30:00.250",
			   "t64": "17:00:00.000001", "tsz": "2025-09-01T08:30:00Z", "tsn": "2025-09-01T08:30:00.123456789Z"},
			  {"i8": null, "u16": null, "u32": null, "u64": null, "f32": null, "ls": null, "bin": null, "fsb": null,
			   "dec": null, "d64": null, "t32": null, "t64": null, "tsz": null, "tsn": "1970-01-01T00:00:00Z"}]`,
			`[{"i8": 127, "u16": 0, "u32": 0, "u64": 0, "f32": -0.25, "ls": "", "bin": "", "fsb": "eHl6",
			   "dec": "-0.01", "d64": "1999-12-31", "t32": "00:00:00", "t64": "23:59:59.999999",
			   "tsz": "2026-06-30T22:00:00Z", "tsn": "2026-06-30T22:00:00Z"}]`,
		},
		groups: []int64{3},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			sc := arrow.NewSchema(c.fields, nil)
			if !flatSchema(sc) {
				t.Fatal("not a flat schema")
			}
			var recs []arrow.RecordBatch
			for _, js := range c.jsons {
				rec, _, err := array.RecordFromJSON(mem, sc, strings.NewReader(js))
				if err != nil {
					t.Fatal(err)
				}
				defer rec.Release()
				recs = append(recs, rec)
			}
			props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(4))
			files := map[string]*bytes.Buffer{"flat": {}, "pqarrow": {}}
			fw, err := newFlatWriter(sc, files["flat"], props)
			if err != nil {
				t.Fatal(err)
			}
			pw, err := pqarrow.NewFileWriter(sc, files["pqarrow"], props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if err := errors.Join(fw.write(rec), pw.WriteBuffered(rec)); err != nil {
					t.Fatal(err)
				}
			}
			if err := errors.Join(fw.close(), pw.Close()); err != nil {
				t.Fatal(err)
			}
			got := map[string][][]string{}
			groups := map[string][]int64{}
			dir := t.TempDir()
			for name, buf := range files {
				p := filepath.Join(dir, name+".parquet")
				if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				got[name], groups[name] = readRows(t, p)
			}
			rows := 0
			for _, r := range recs {
				rows += int(r.NumRows())
			}
			if !reflect.DeepEqual(got["flat"], got["pqarrow"]) || len(got["flat"]) != rows {
				t.Errorf("rows:\n flat    %q\n pqarrow %q", got["flat"], got["pqarrow"])
			}
			if !reflect.DeepEqual(groups["flat"], c.groups) || !reflect.DeepEqual(groups["flat"], groups["pqarrow"]) {
				t.Errorf("row groups: flat %v, pqarrow %v, want %v", groups["flat"], groups["pqarrow"], c.groups)
			}
			// Same writer underneath, same calls: the files are the same
			// to the byte.
			if !bytes.Equal(files["flat"].Bytes(), files["pqarrow"].Bytes()) {
				t.Errorf("the files differ: %d bytes (flat), %d (pqarrow)", files["flat"].Len(), files["pqarrow"].Len())
			}
		})
	}
}

// BenchmarkSinkWrite writes 1M rows (the shape of an attendance export:
// a student id, a date, two counts and a score, all nullable as the csv
// source makes them) in batches of 64K rows through the flat writer and
// through pqarrow's FileWriter, to memory.
func BenchmarkSinkWrite(b *testing.B) {
	const rows, batchRows = 1 << 20, 64 << 10
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "half_days", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "absent_half_days", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	mem := memory.NewGoAllocator()
	var recs []arrow.RecordBatch
	for off := 0; off < rows; off += batchRows {
		bld := array.NewRecordBuilder(mem, sc)
		for i := off; i < off+batchRows; i++ {
			bld.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("S%06d", i%5000))
			bld.Field(1).(*array.Date32Builder).Append(arrow.Date32(20000 + i%120))
			bld.Field(2).(*array.Int64Builder).Append(2)
			bld.Field(3).(*array.Int64Builder).Append(int64(i % 3))
			if i%50 == 0 {
				bld.Field(4).AppendNull()
			} else {
				bld.Field(4).(*array.Float64Builder).Append(float64(i%200) / 10)
			}
		}
		recs = append(recs, bld.NewRecordBatch())
		bld.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	props := parquet.NewWriterProperties(parquet.WithCompression(codecs["zstd"]), parquet.WithMaxRowGroupLength(DefaultRowGroupRows))
	// Each writer as a write and a close function.
	writers := map[string]func() (func(arrow.RecordBatch) error, func() error, error){
		"flat": func() (func(arrow.RecordBatch) error, func() error, error) {
			w, err := newFlatWriter(sc, io.Discard, props)
			if err != nil {
				return nil, nil, err
			}
			return w.write, w.close, nil
		},
		"pqarrow": func() (func(arrow.RecordBatch) error, func() error, error) {
			w, err := pqarrow.NewFileWriter(sc, io.Discard, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
			if err != nil {
				return nil, nil, err
			}
			return w.WriteBuffered, w.Close, nil
		},
	}
	for _, impl := range []string{"flat", "pqarrow"} {
		b.Run(impl, func(b *testing.B) {
			b.SetBytes(int64(rows))
			for b.Loop() {
				write, finish, err := writers[impl]()
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range recs {
					if err := write(r); err != nil {
						b.Fatal(err)
					}
				}
				if err := finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
