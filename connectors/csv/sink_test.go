package csv

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

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// allTypes has a column of every type the csv source reads.
var allTypes = arrow.NewSchema([]arrow.Field{
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
}, nil)

var allTypesBatches = []string{
	`[{"i32": 1, "i64": 10000000000, "f64": 12.5, "b": true, "s": "a, \"b\"", "d": "2025-09-01", "ts": "2025-09-01T08:30:00Z"},
	  {"i32": -2, "i64": -3, "f64": 0.1, "b": false, "s": "multi\nline", "d": "2026-06-30", "ts": "2026-06-30T17:00:00.25Z"}]`,
	`[{"i32": null, "i64": null, "f64": null, "b": null, "s": null, "d": null, "ts": null}]`,
}

// writeAll writes batches (JSON) of schema with sink and closes it.
func writeAll(t *testing.T, sink protocol.Sink, cfg protocol.Config, schema *arrow.Schema, batches []string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	if err := sink.Validate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	w, err := sink.Open(ctx, cfg, mem, schema)
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

func sinkConfig(path string, opts map[string]any) protocol.Config {
	o := map[string]any{"path": path}
	for k, v := range opts {
		o[k] = v
	}
	return protocol.Config{Connector: SinkName, Options: o}
}

func TestSinkWritesEveryType(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "nested", "all.csv")
	writeAll(t, Sink{}, sinkConfig(path, nil), allTypes, allTypesBatches)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "i32,i64,f64,b,s,d,ts\n" +
		"1,10000000000,12.5,true,\"a, \"\"b\"\"\",2025-09-01,2025-09-01 08:30:00Z\n" +
		"-2,-3,0.1,false,\"multi\nline\",2026-06-30,2026-06-30 17:00:00.25Z\n" +
		",,,,,,\n"
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the output", len(entries))
	}

	// The csv source reads back what the sink wrote.
	c, err := read(t, config(path, 0, map[string]any{"columns": map[string]any{
		"i32": "int32", "i64": "int64", "f64": "float64", "b": "bool", "s": "utf8", "d": "date32", "ts": "timestamp_us"}}))
	if err != nil {
		t.Fatal(err)
	}
	wantRows := [][]string{
		{"1", "10000000000", "12.5", "true", `a, "b"`, "2025-09-01", "2025-09-01T08:30:00Z"},
		{"-2", "-3", "0.1", "false", "multi\nline", "2026-06-30", "2026-06-30T17:00:00.25Z"},
		{"∅", "∅", "∅", "∅", "∅", "∅", "∅"},
	}
	if !reflect.DeepEqual(c.rows, wantRows) || len(c.dead) > 0 {
		t.Errorf("read back %q (dead %v), want %q", c.rows, c.dead, wantRows)
	}
}

func TestSinkOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.tsv")
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	writeAll(t, Sink{}, sinkConfig(path, map[string]any{"delimiter": `\t`, "header": false, "null": "NA"}),
		schema, []string{`[{"a": "x", "b": null}, {"a": null, "b": 2}]`})
	got, _ := os.ReadFile(path)
	if want := "x\tNA\nNA\t2\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
}

func TestSinkEmptyWritesHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.csv")
	writeAll(t, Sink{}, sinkConfig(path, nil), allTypes, nil)
	got, _ := os.ReadFile(path)
	if want := "i32,i64,f64,b,s,d,ts\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
}

func TestSinkAtomic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[{"a": 1}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()

	// Abort: the old file stays, no temporary file is left.
	w, err := Sink{}.Open(ctx, sinkConfig(path, nil), mem, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	assertFolder(t, dir, map[string]string{"out.csv": "old\n"})

	// Close: the old file is replaced only at Close.
	w, err = Sink{}.Open(ctx, sinkConfig(path, nil), mem, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old\n" {
		t.Errorf("before Close the file holds %q, want the old content", got)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertFolder(t, dir, map[string]string{"out.csv": "a\n1\n"})

	// Abort on a fresh path leaves nothing.
	fresh := filepath.Join(dir, "fresh.csv")
	w, err = Sink{}.Open(ctx, sinkConfig(fresh, nil), mem, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	assertFolder(t, dir, map[string]string{"out.csv": "a\n1\n"})
}

// assertFolder checks that dir holds exactly the files in want.
func assertFolder(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		got[e.Name()] = string(b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("folder holds %q, want %q", got, want)
	}
}

func TestSinkRejects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	nested := arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
	_, err := Sink{}.Open(ctx, sinkConfig(filepath.Join(dir, "x.csv"), nil), memory.NewGoAllocator(), nested)
	if !errors.Is(err, protocol.ErrConfig) {
		t.Errorf("nested column: err = %v, want ErrConfig", err)
	}
	if err := (Sink{}).Validate(ctx, sinkConfig(filepath.Join(dir, "x.csv"), map[string]any{"delimiter": ""})); !errors.Is(err, protocol.ErrConfig) {
		t.Errorf("empty delimiter: err = %v, want ErrConfig", err)
	}
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o644)
	if err := (Sink{}).Validate(ctx, sinkConfig(filepath.Join(blocker, "x.csv"), nil)); err == nil {
		t.Error("a folder under a file: Validate succeeded")
	}
	assertFolder(t, dir, map[string]string{"file": ""})
}

// In a continuous run the sink is closed at a stop, after its last flush,
// which puts the file in place; the next run opens it with that flush's
// position and goes on with the same file: the rows before the position
// once, no second header, and nothing of what was written after it.
func TestSinkResumeAfterClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := sinkConfig(path, nil)
	cfg.Pipeline, cfg.Stage, cfg.Checkpointed = "p", "out", true
	write := func(w protocol.Writer, js string) {
		t.Helper()
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	open := func(resume protocol.Position) protocol.Writer {
		t.Helper()
		c := cfg
		c.Resume = resume
		w, err := Sink{}.Open(ctx, c, mem, schema)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	flush := func(w protocol.Writer) protocol.Position {
		t.Helper()
		pos, err := w.(protocol.Flusher).Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}

	w := open(nil)
	write(w, `[{"a": 1}, {"a": 2}]`)
	pos := flush(w) // the stop's last checkpoint
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertFolder(t, dir, map[string]string{"out.csv": "a\n1\n2\n"})

	w = open(pos) // the next run
	write(w, `[{"a": 3}]`)
	pos = flush(w)
	write(w, `[{"a": 4}]`) // past the last checkpoint: replayed by the next run
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertFolder(t, dir, map[string]string{"out.csv": "a\n1\n2\n3\n4\n"})

	w = open(pos)
	write(w, `[{"a": 4}, {"a": 5}]`)
	if got, _ := os.ReadFile(path); string(got) != "a\n1\n2\n3\n4\n" {
		t.Errorf("before Close the file holds %q, want the last run's output", got)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertFolder(t, dir, map[string]string{"out.csv": "a\n1\n2\n3\n4\n5\n"})

	// A position beyond what the file holds is refused, not padded.
	if err := os.WriteFile(path, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := cfg
	c.Resume = pos
	if w, err := (Sink{}).Open(ctx, c, mem, schema); err == nil {
		w.Abort(ctx)
		t.Error("Open resumed from a position past the end of the file")
	}
}
