package parquet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/readback"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
}, func() *arrow.Metadata {
	m := arrow.NewMetadata([]string{"vigie.rule"}, []string{"absence@1"})
	return &m
}())

var batches = []string{
	`[{"i32": 1, "i64": 10000000000, "f64": 12.5, "b": true, "s": "a", "d": "2025-09-01", "ts": "2025-09-01T08:30:00Z"},
	  {"i32": -2, "i64": -3, "f64": 0.1, "b": false, "s": "é", "d": "2026-06-30", "ts": "2026-06-30T17:00:00.25Z"}]`,
	`[{"i32": null, "i64": null, "f64": null, "b": null, "s": null, "d": null, "ts": null}]`,
	`[{"i32": 4, "i64": 5, "f64": -1, "b": true, "s": "", "d": "2000-01-01", "ts": "2000-01-01T00:00:00Z"}]`,
}

var wantRows = [][]string{
	{"1", "10000000000", "12.5", "true", "a", "2025-09-01", "2025-09-01T08:30:00Z"},
	{"-2", "-3", "0.1", "false", "é", "2026-06-30", "2026-06-30T17:00:00.25Z"},
	{"∅", "∅", "∅", "∅", "∅", "∅", "∅"},
	{"4", "5", "-1", "true", "", "2000-01-01", "2000-01-01T00:00:00Z"},
}

func config(path string, opts map[string]any) protocol.Config {
	o := map[string]any{"path": path}
	for k, v := range opts {
		o[k] = v
	}
	return protocol.Config{Connector: SinkName, Options: o}
}

// open opens a sink writer after Validate.
func open(t *testing.T, cfg protocol.Config, mem memory.Allocator) protocol.Writer {
	t.Helper()
	ctx := context.Background()
	if err := (Sink{}).Validate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	w, err := Sink{}.Open(ctx, cfg, mem, schema)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// write writes the JSON batches to w.
func write(t *testing.T, mem memory.Allocator, w protocol.Writer, batches []string) {
	t.Helper()
	for _, js := range batches {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, codec := range []string{"zstd", "snappy", "gzip", "none"} {
		t.Run(codec, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			path := filepath.Join(t.TempDir(), "out", "t.parquet")
			w := open(t, config(path, map[string]any{"compression": codec, "row_group_rows": 2}), mem)
			write(t, mem, w, batches)
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}

			fr := readback.OpenParquet(t, path)
			pf := fr.ParquetReader()
			// Batches of 2, 1 and 1 rows gather into groups of 2.
			if n := pf.NumRowGroups(); n != 2 {
				t.Errorf("row groups = %d, want 2", n)
			}
			wantCodec := map[string]compress.Compression{"zstd": compress.Codecs.Zstd, "snappy": compress.Codecs.Snappy,
				"gzip": compress.Codecs.Gzip, "none": compress.Codecs.Uncompressed}[codec]
			cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != wantCodec {
				t.Errorf("compression = %v, want %v", cc.Compression(), wantCodec)
			}
			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Release()
			if !sameColumns(tbl.Schema(), schema) {
				t.Errorf("schema read back:\n%s\nwant\n%s", tbl.Schema(), schema)
			}
			// ReadTable drops schema metadata (arrow-go keeps SchemaMeta
			// unset); the stored schema has it.
			stored, err := fr.Schema()
			if err != nil {
				t.Fatal(err)
			}
			if !stored.Metadata().Equal(schema.Metadata()) {
				t.Errorf("stored schema metadata = %v, want %v", stored.Metadata(), schema.Metadata())
			}
			if got := tableRows(tbl); !reflect.DeepEqual(got, wantRows) {
				t.Errorf("rows = %q\nwant %q", got, wantRows)
			}
		})
	}
}

// tableRows returns tbl's rows as text, nulls as "∅".
func tableRows(tbl arrow.Table) [][]string {
	rows := make([][]string, tbl.NumRows())
	for i := range rows {
		rows[i] = make([]string, tbl.NumCols())
	}
	for j := 0; j < int(tbl.NumCols()); j++ {
		i := 0
		for _, chunk := range tbl.Column(j).Data().Chunks() {
			for k := 0; k < chunk.Len(); k++ {
				if chunk.IsNull(k) {
					rows[i][j] = "∅"
				} else {
					rows[i][j] = chunk.ValueStr(k)
				}
				i++
			}
		}
	}
	return rows
}

func TestAtomic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "t.parquet")

	w := open(t, config(path, nil), mem)
	write(t, mem, w, batches)
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	assertNames(t, dir)

	w = open(t, config(path, nil), mem)
	write(t, mem, w, batches)
	assertNames(t, dir, "") // only the temporary file, not the output
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output exists before Close: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertNames(t, dir, "t.parquet")
}

// assertNames checks the names in dir; "" stands for a hidden temporary file.
func assertNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".t.parquet.tmp-") {
			name = ""
		}
		got = append(got, name)
	}
	if want == nil {
		want = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("folder holds %q, want %q", got, want)
	}
}

func TestOptionErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, opts := range []map[string]any{
		{"compression": "lz4"},
		{"row_group_rows": 0},
		{"row_groups": 10},
	} {
		err := Sink{}.Validate(ctx, config(filepath.Join(dir, "t.parquet"), opts))
		if !errors.Is(err, protocol.ErrConfig) {
			t.Errorf("%v: err = %v, want ErrConfig", opts, err)
		}
	}
}
