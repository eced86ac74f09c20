package parquet_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/parquet"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

var gradesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "mark", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

// writeParquet writes batches (JSON arrays of rows) with the parquet sink,
// in row groups of rowGroup rows.
func writeParquet(t *testing.T, path string, schema *arrow.Schema, rowGroup int64, batches ...string) {
	t.Helper()
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := protocol.Config{Connector: parquet.SinkName, Options: map[string]any{"path": path, "row_group_rows": rowGroup}}
	if err := (parquet.Sink{}).Validate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	w, err := parquet.Sink{}.Open(ctx, cfg, mem, schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range batches {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(ctx, rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSourceConformance(t *testing.T) {
	dir := t.TempDir()
	// Two files matched by one glob, row groups of 3 rows (batches of 2 in
	// the case: a row group ends in the middle of what would be a batch).
	writeParquet(t, filepath.Join(dir, "a.parquet"), gradesSchema, 3,
		`[{"id": 1, "name": "Ada", "day": "2025-09-01", "mark": 12.5}, {"id": 2, "name": null, "day": null, "mark": null}]`,
		`[{"id": 3, "name": "Bob", "day": "2025-09-02", "mark": 8}, {"id": 4, "name": "Chloé", "day": "2026-01-05", "mark": 20}]`,
		`[{"id": 5, "name": "Dan", "day": "2026-01-06", "mark": 0}]`)
	writeParquet(t, filepath.Join(dir, "b.parquet"), gradesSchema, 3,
		`[{"id": 6, "name": "Eve", "day": null, "mark": 14}, {"id": 7, "name": "Fay", "day": "2026-06-30", "mark": 15.25}]`)
	if err := os.WriteFile(filepath.Join(dir, "broken.parquet"), []byte("PAR1 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	glob := filepath.Join(dir, "[ab].parquet")
	cases := map[string]conformance.SourceCase{
		"every column": {
			Options:   map[string]any{"path": glob},
			BatchRows: 2,
			WantRows: []string{"1|Ada|2025-09-01|12.5", "2|(null)|(null)|(null)", "3|Bob|2025-09-02|8",
				"4|Chloé|2026-01-05|20", "5|Dan|2026-01-06|0", "6|Eve|(null)|14", "7|Fay|2026-06-30|15.25"},
		},
		"projection": {
			Options:  map[string]any{"path": glob, "columns": []any{"mark", "id"}},
			WantRows: []string{"12.5|1", "(null)|2", "8|3", "20|4", "0|5", "14|6", "15.25|7"},
			Bad: []conformance.BadCase{
				{Options: map[string]any{"path": glob, "columns": []any{"nmae"}}, Want: `column "nmae" is not in the file (did you mean "name"?)`},
				{Options: map[string]any{"path": filepath.Join(dir, "missing.parquet")}, Want: "missing.parquet"},
				{Options: map[string]any{"path": filepath.Join(dir, "broken.parquet")}, Want: "broken.parquet: not a readable Parquet file"},
				{Options: map[string]any{"path": glob, "columns": "id"}, Want: "expected a list of strings"},
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, parquet.Source{}, c) })
			t.Run("over gRPC", func(t *testing.T) {
				conformance.TestSource(t, conformance.ThroughPlugin(t, parquet.Source{}).(protocol.Source), c)
			})
		})
	}
}

// batchSizes records the row counts of the batches a source emits.
type batchSizes struct {
	sizes []int64
	pos   []string
}

func (b *batchSizes) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	b.sizes = append(b.sizes, rec.NumRows())
	b.pos = append(b.pos, string(pos))
	return nil
}

func (b *batchSizes) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func TestSourceStreamsByRowGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.parquet")
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 25 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"id": ` + string(rune('0'+i%10)) + `, "name": "x", "day": null, "mark": 1}`)
	}
	sb.WriteString("]")
	writeParquet(t, path, gradesSchema, 10, sb.String())
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got := &batchSizes{}
	cfg := protocol.Config{Connector: parquet.SourceName, BatchRows: 4, Options: map[string]any{"path": path}}
	if err := (parquet.Source{}).Read(context.Background(), cfg, mem, got); err != nil {
		t.Fatal(err)
	}
	// Row groups of 10, 10, 5 rows read in batches of at most 4, never
	// across a row group.
	want := []int64{4, 4, 2, 4, 4, 2, 4, 1}
	if len(got.sizes) != len(want) {
		t.Fatalf("batch sizes %v, want %v", got.sizes, want)
	}
	for i := range want {
		if got.sizes[i] != want[i] {
			t.Fatalf("batch sizes %v, want %v", got.sizes, want)
		}
	}
	if !strings.Contains(got.pos[3], `"row_group":1,"row":4`) {
		t.Errorf("position after batch 3 = %s, want row group 1, row 4", got.pos[3])
	}
}

func TestSourceGlobSchemaMismatch(t *testing.T) {
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "a.parquet"), gradesSchema, 10, `[{"id": 1, "name": "Ada", "day": null, "mark": 1}]`)
	other := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil)
	writeParquet(t, filepath.Join(dir, "b.parquet"), other, 10, `[{"id": "x"}]`)
	cfg := protocol.Config{Connector: parquet.SourceName, Options: map[string]any{"path": filepath.Join(dir, "*.parquet")}}
	err := (parquet.Source{}).Read(context.Background(), cfg, memory.NewGoAllocator(), &batchSizes{})
	if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), "b.parquet: schema") {
		t.Fatalf("err = %v, want a configuration error naming b.parquet's schema", err)
	}
}

func TestSourceResumeFromOtherGlob(t *testing.T) {
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "a.parquet"), gradesSchema, 10, `[{"id": 1, "name": "Ada", "day": null, "mark": 1}]`)
	cfg := protocol.Config{Connector: parquet.SourceName, Options: map[string]any{"path": filepath.Join(dir, "a.parquet")},
		Resume: protocol.Position(`{"file":0,"path":"elsewhere.parquet","row_group":0,"row":1}`)}
	err := (parquet.Source{}).Read(context.Background(), cfg, memory.NewGoAllocator(), &batchSizes{})
	if !errors.Is(err, protocol.ErrConfig) {
		t.Fatalf("err = %v, want a configuration error", err)
	}
}
