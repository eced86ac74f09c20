package jsonl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

var sinkSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
}, nil)

// readJSONL reads path back with the jsonl source.
func readJSONL(t *testing.T, path string) []string {
	t.Helper()
	checked, err := jsonl.Source{}.Spec().Check(map[string]any{"path": path, "columns": map[string]any{"id": "int64", "name": "utf8", "day": "date32"}, "order": []any{"id", "name", "day"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{}
	if err := (jsonl.Source{}).Read(context.Background(), protocol.Config{Options: checked}, memory.NewGoAllocator(), c); err != nil {
		t.Fatal(err)
	}
	if len(c.dead) > 0 {
		t.Fatalf("dead letters reading back: %v", c.dead)
	}
	return c.rows
}

func TestSinkConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "changes.jsonl")
	c := conformance.SinkCase{
		Options: map[string]any{"path": path},
		Schema:  sinkSchema,
		Batches: []string{
			`[{"id": 1, "name": "Ada", "day": "2025-09-01"}, {"id": 2, "name": null, "day": null}]`,
			`[{"id": 3, "name": "Bob \"B\"", "day": "2025-09-02"}]`,
			`[{"id": 4, "name": "Chloé", "day": "2026-01-05"}, {"id": 5, "name": "Dan", "day": "2026-01-06"}, {"id": 6, "name": "Eve", "day": null}]`,
		},
		ReadBack: func(t *testing.T) []string { return readJSONL(t, path) },
		Bad: []conformance.BadCase{
			{Options: map[string]any{"path": ""}, Want: "expected a path"},
			{Options: map[string]any{"path": path, "append": "yes"}, Want: "expected true or false"},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSink(t, jsonl.Sink{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSink(t, conformance.ThroughPlugin(t, jsonl.Sink{}).(protocol.Sink), c)
	})
}

// TestSinkAppend: append = true keeps the file's rows and adds the run's;
// without it a run replaces the file.
func TestSinkAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "changes.jsonl")
	run := func(appendRows bool, js string) {
		t.Helper()
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		opts, err := jsonl.Sink{}.Spec().Check(map[string]any{"path": path, "append": appendRows})
		if err != nil {
			t.Fatal(err)
		}
		w, err := jsonl.Sink{}.Open(context.Background(), protocol.Config{Options: opts}, mem, sinkSchema)
		if err != nil {
			t.Fatal(err)
		}
		rec, _, err := array.RecordFromJSON(mem, sinkSchema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		if err := w.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	run(false, `[{"id": 1, "name": "Ada", "day": null}]`)
	run(true, `[{"id": 2, "name": "Bob", "day": null}]`)
	if got := strings.Join(readJSONL(t, path), " "); got != "1|Ada|(null) 2|Bob|(null)" {
		t.Errorf("after an appending run: %s", got)
	}
	run(false, `[{"id": 3, "name": "Cy", "day": null}]`)
	if got := strings.Join(readJSONL(t, path), " "); got != "3|Cy|(null)" {
		t.Errorf("after a replacing run: %s", got)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
