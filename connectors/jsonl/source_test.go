package jsonl_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

const events = `{"id": 1, "student": {"id": "S1", "name": "Ada"}, "score": 12.5, "ok": true, "day": "2025-09-01", "at": "2025-09-01T08:30:00Z"}
{"id": 2, "student": {"id": "S2"}, "score": null, "ok": false, "extra": [1, 2]}

not json at all
{"id": "three", "student": {"id": "S3"}}
[1, 2]
{"id": 4, "student": {"id": "S4", "name": "Dan"}, "score": 20, "ok": true, "day": "2026-01-05", "at": "2026-01-05T10:00:00+01:00"}
{"id": 5.0, "student": "S5"}
{"id": 6, "student": {"id": "S6"}, "day": "05/01/2026"}
{"id": 7, "student": {"id": "S7"}, "score": 1e1}
`

var eventColumns = map[string]any{
	"id": "int64", "student.id": "utf8", "student.name": "utf8", "score": "float64",
	"ok": "bool", "day": "date32", "at": "timestamp_us",
}

var eventOrder = []any{"id", "student.id", "student.name", "score", "ok", "day", "at"}

// The rows read from events: 5 of its 10 non-blank lines are bad.
var eventRows = []string{
	"1|S1|Ada|12.5|true|2025-09-01|2025-09-01T08:30:00Z",
	"2|S2|(null)|(null)|false|(null)|(null)",
	"4|S4|Dan|20|true|2026-01-05|2026-01-05T09:00:00Z",
	"7|S7|(null)|10|(null)|(null)|(null)",
}

func writeFile(t *testing.T, path, data string, gz bool) {
	t.Helper()
	b := []byte(data)
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		b = buf.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSourceConformance(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.jsonl"), events, false)
	writeFile(t, filepath.Join(dir, "b.jsonl.gz"), `{"id": 8, "student": {"id": "S8"}}`+"\n"+`{"id": 9}`, true)
	glob := filepath.Join(dir, "*.jsonl*")
	c := conformance.SourceCase{
		Options:  map[string]any{"path": glob, "columns": eventColumns, "order": eventOrder},
		WantRows: append(append([]string(nil), eventRows...), "8|S8|(null)|(null)|(null)|(null)|(null)", "9|(null)|(null)|(null)|(null)|(null)|(null)"),
		Bad: []conformance.BadCase{
			{Options: map[string]any{"path": glob, "columns": map[string]any{"id": "integer"}}, Want: `unknown type "integer"`},
			{Options: map[string]any{"path": glob}, Want: `option "columns": required option is missing`},
			{Options: map[string]any{"path": filepath.Join(dir, "missing.jsonl"), "columns": eventColumns}, Want: "missing.jsonl"},
			{Options: map[string]any{"path": glob, "columns": eventColumns, "order": []any{"id"}}, Want: "must list each declared column once"},
			{Options: map[string]any{"path": glob, "columns": eventColumns, "on_error": "ignore"}, Want: `"ignore" is not one of`},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, jsonl.Source{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSource(t, conformance.ThroughPlugin(t, jsonl.Source{}).(protocol.Source), c)
	})
}

// collect gathers rows and dead letters.
type collect struct {
	rows []string
	dead []protocol.DeadLetter
}

func (c *collect) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.rows = append(c.rows, conformance.Rows(rec)...)
	return nil
}

func (c *collect) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	c.dead = append(c.dead, rows...)
	return nil
}

func read(t *testing.T, opts map[string]any) (*collect, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := &collect{}
	err := jsonl.Source{}.Read(context.Background(), protocol.Config{Connector: jsonl.SourceName, BatchRows: 2, Options: opts}, mem, c)
	return c, err
}

func TestSourceDeadLetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	writeFile(t, path, events, false)
	got, err := read(t, map[string]any{"path": path, "columns": eventColumns, "order": eventOrder})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		path + `:4: not JSON: invalid character 'o' in literal null (expecting 'u') at byte 2`,
		path + `:5: column "id": expected int64 (an integer), got a string "three"`,
		path + `:6: expected a JSON object, got an array`,
		path + `:8: column "student.id": expected "student" to be an object, got a string "S5"`,
		path + `:9: column "day": expected date32 (a date as a string "yyyy-mm-dd"), got a string "05/01/2026"`,
	}
	var gotDead []string
	for _, d := range got.dead {
		gotDead = append(gotDead, d.String())
	}
	if strings.Join(gotDead, "\n") != strings.Join(want, "\n") {
		t.Errorf("dead letters:\n%s\nwant\n%s", strings.Join(gotDead, "\n"), strings.Join(want, "\n"))
	}
	if got.dead[1].Raw != `{"id": "three", "student": {"id": "S3"}}` {
		t.Errorf("raw = %q", got.dead[1].Raw)
	}
	if strings.Join(got.rows, "\n") != strings.Join(eventRows, "\n") {
		t.Errorf("rows:\n%s", strings.Join(got.rows, "\n"))
	}
}

func TestSourcePolicies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	writeFile(t, path, events, false)
	tests := []struct {
		name     string
		opts     map[string]any
		wantErr  string
		wantRows int
		wantDead int
	}{
		{"skip", map[string]any{"on_error": "skip"}, "", 4, 0},
		{"fail", map[string]any{"on_error": "fail"}, path + `:4: not JSON`, 0, 0},
		{"strict", map[string]any{"strict": true}, "", 3, 6},
		{"strict fail", map[string]any{"strict": true, "on_error": "fail"}, path + `:2: field "extra": field is not declared (strict = true)`, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := map[string]any{"path": path, "columns": eventColumns}
			for k, v := range tt.opts {
				opts[k] = v
			}
			got, err := read(t, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.rows) != tt.wantRows || len(got.dead) != tt.wantDead {
				t.Errorf("%d rows, %d dead letters; want %d, %d (%v)", len(got.rows), len(got.dead), tt.wantRows, tt.wantDead, got.dead)
			}
		})
	}
}

func TestSourceIntegers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.jsonl")
	writeFile(t, path, "{\"n\": 2147483647}\n{\"n\": 2147483648}\n{\"n\": 1.5}\n{\"n\": -3e2}\n{\"n\": true}\r\n\ufeff", false)
	got, err := read(t, map[string]any{"path": path, "columns": map[string]any{"n": "int32"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.rows) != "[2147483647 -300]" || len(got.dead) != 4 {
		t.Errorf("rows %v, dead %v", got.rows, got.dead)
	}
}

func TestSourceMissingFileIsNotFound(t *testing.T) {
	_, err := read(t, map[string]any{"path": filepath.Join(t.TempDir(), "none.jsonl"), "columns": eventColumns})
	if !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}
