package parquet_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/parquet"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/readback"
)

func TestSinkConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "grades.parquet")
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	}, nil)
	c := conformance.SinkCase{
		Options: map[string]any{"path": path, "row_group_rows": int64(2)},
		Schema:  schema,
		Batches: []string{
			`[{"id": 1, "name": "Ada", "day": "2025-09-01"}, {"id": 2, "name": null, "day": null}]`,
			`[{"id": 3, "name": "Bob", "day": "2025-09-02"}]`,
			`[{"id": 4, "name": "Chloé", "day": "2026-01-05"}, {"id": 5, "name": "Dan", "day": "2026-01-06"}, {"id": 6, "name": "Eve", "day": null}]`,
		},
		ReadBack: func(t *testing.T) []string {
			rr, err := readback.OpenParquet(t, path).GetRecordReader(context.Background(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rr.Release()
			var out []string
			for rr.Next() {
				out = append(out, conformance.Rows(rr.RecordBatch())...)
			}
			return out
		},
		Bad: []conformance.BadCase{
			{Options: map[string]any{"path": path, "compression": "lz4"}, Want: `"lz4" is not one of`},
			{Options: map[string]any{"path": path, "row_group_rows": int64(0)}, Want: "expected at least 1"},
			{Options: map[string]any{"path": ""}, Want: "expected a path"},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSink(t, parquet.Sink{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSink(t, conformance.ThroughPlugin(t, parquet.Sink{}).(protocol.Sink), c)
	})
}
