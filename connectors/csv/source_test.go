package csv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// collector is an Emitter that keeps what it receives as text.
type collector struct {
	batches []int      // rows per batch
	rows    [][]string // every row, nulls as "∅"
	dead    []protocol.DeadLetter
	events  []string // "batch" and "dead" in arrival order
	failAt  int      // Emit fails on this batch (1-based), if > 0
}

var errStop = errors.New("stop")

func (c *collector) Emit(ctx context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.events = append(c.events, "batch")
	c.batches = append(c.batches, int(rec.NumRows()))
	for i := 0; i < int(rec.NumRows()); i++ {
		row := make([]string, rec.NumCols())
		for j, col := range rec.Columns() {
			if col.IsNull(i) {
				row[j] = "∅"
			} else {
				row[j] = col.ValueStr(i)
			}
		}
		c.rows = append(c.rows, row)
	}
	if len(c.batches) == c.failAt {
		return errStop
	}
	return nil
}

func (c *collector) DeadLetter(ctx context.Context, rows []protocol.DeadLetter) error {
	c.events = append(c.events, "dead")
	c.dead = append(c.dead, rows...)
	return nil
}

// writeFile writes content to a file in a test folder and returns its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func config(path string, batchRows int, opts map[string]any) protocol.Config {
	o := map[string]any{"path": path}
	for k, v := range opts {
		o[k] = v
	}
	return protocol.Config{Connector: SourceName, BatchRows: batchRows, Options: o}
}

// read runs Read with a checked allocator.
func read(t *testing.T, cfg protocol.Config) (*collector, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := &collector{}
	err := Source{}.Read(context.Background(), cfg, mem, c)
	return c, err
}

func schemaString(t *testing.T, cfg protocol.Config) string {
	t.Helper()
	s, err := Source{}.Schema(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		if !f.Nullable {
			t.Errorf("column %s is not nullable", f.Name)
		}
		parts[i] = f.Name + ":" + f.Type.String()
	}
	return strings.Join(parts, " ")
}

func TestSchemaInference(t *testing.T) {
	tests := []struct {
		name, csv, want string
		opts            map[string]any
	}{
		{"int", "a\n1\n-2\n+3\n", "a:int64", nil},
		{"float", "a\n1\n2.5\n-3e2\n", "a:float64", nil},
		{"bool", "a\ntrue\nFALSE\nTrue\n", "a:bool", nil},
		{"date", "a\n2025-09-01\n2026-06-30\n", "a:date32", nil},
		{"utf8", "a\nS0001\n2\n", "a:utf8", nil},
		{"bad date is text", "a\n2025-13-01\n", "a:utf8", nil},
		{"leading zero is text", "a\n0750\n12\n", "a:utf8", nil},
		{"zero and fraction are numbers", "a,b\n0,0.5\n1,0\n", "a:int64 b:float64", nil},
		{"nan is text", "a\n1\nnan\n", "a:utf8", nil},
		{"nulls skipped", "a,b\nNA,\n1,x\nNULL,\n", "a:int64 b:utf8", nil},
		{"only nulls", "a\n\nNA\n", "a:utf8", nil},
		{"bool and int mix", "a\ntrue\n1\n", "a:utf8", nil},
		{"header order kept", "z,y,x\n1,a,2.5\n", "z:int64 y:utf8 x:float64", nil},
		{"infer_rows limits the sample", "a\n1\n2\nx\n", "a:int64", map[string]any{"infer_rows": 2}},
		{"no header", "1,a\n2,b\n", "column_1:int64 column_2:utf8", map[string]any{"header": false}},
		{"tab", "a\tb\n1\tx\n", "a:int64 b:utf8", map[string]any{"delimiter": "\t"}},
		{"escaped tab", "a\tb\n1\tx\n", "a:int64 b:utf8", map[string]any{"delimiter": `\t`}},
		{"semicolon and BOM", "\ufeffa;b\n1;2\n", "a:int64 b:int64", map[string]any{"delimiter": ";"}},
		{"custom nulls", "a\n-\n1\n", "a:int64", map[string]any{"null_values": []any{"-"}}},
		{"wrong field count ignored", "a,b\n1,2\n3\n", "a:int64 b:int64", nil},
		{"declared win", "a,b,c\n1,2,2025-01-01\n", "a:int32 b:utf8 c:date32",
			map[string]any{"columns": map[string]any{"a": "int32", "b": "utf8"}}},
		{"declared timestamp", "t\n2025-09-01T08:00:00Z\n", "t:timestamp[us, tz=UTC]",
			map[string]any{"columns": map[string]any{"t": "timestamp_us"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := schemaString(t, config(writeFile(t, tt.csv), 0, tt.opts))
			if got != tt.want {
				t.Errorf("schema = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSchemaErrors(t *testing.T) {
	tests := []struct {
		name, csv string
		opts      map[string]any
		kind      error
		msg       string
	}{
		{"unknown declared column", "student_id,mark\n", map[string]any{"columns": map[string]any{"studnet_id": "utf8"}},
			protocol.ErrConfig, `declared column "studnet_id" is not in the file (did you mean "student_id"?)`},
		{"unknown type", "a\n", map[string]any{"columns": map[string]any{"a": "int"}},
			protocol.ErrConfig, `unknown type "int"`},
		{"bad delimiter", "a\n", map[string]any{"delimiter": ";;"}, protocol.ErrConfig, `not a usable delimiter`},
		{"bad on_error", "a\n", map[string]any{"on_error": "ignore"}, protocol.ErrConfig, `"ignore" is not one of`},
		{"duplicate header", "a,b,a\n", nil, protocol.ErrConfig, `column "a" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Source{}.Schema(context.Background(), config(writeFile(t, tt.csv), 0, tt.opts))
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want %v containing %q", err, tt.kind, tt.msg)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.csv")
	_, err := Source{}.Schema(context.Background(), config(path, 0, nil))
	if !errors.Is(err, protocol.ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Errorf("Schema error = %v, want ErrNotFound naming %s", err, path)
	}
	if _, err := read(t, config(path, 0, nil)); !errors.Is(err, protocol.ErrNotFound) {
		t.Errorf("Read error = %v, want ErrNotFound", err)
	}
}

func TestReadValues(t *testing.T) {
	content := "id,n,x,ok,d,t,s\n" +
		"1,10,1.5,true,2025-09-01,2025-09-01 08:30:00,a\n" +
		"2,,NA,NULL,,,\n" +
		"3,-7,0,false,2026-06-30,2026-06-30T17:00:00.5Z,\"quoted, with comma\"\n"
	cfg := config(writeFile(t, content), 0, map[string]any{"columns": map[string]any{"n": "int32", "t": "timestamp_us"}})
	if got, want := schemaString(t, cfg), "id:int64 n:int32 x:float64 ok:bool d:date32 t:timestamp[us, tz=UTC] s:utf8"; got != want {
		t.Fatalf("schema = %s, want %s", got, want)
	}
	c, err := read(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"1", "10", "1.5", "true", "2025-09-01", "2025-09-01T08:30:00Z", "a"},
		{"2", "∅", "∅", "∅", "∅", "∅", "∅"},
		{"3", "-7", "0", "false", "2026-06-30", "2026-06-30T17:00:00.5Z", "quoted, with comma"},
	}
	if !reflect.DeepEqual(c.rows, want) {
		t.Errorf("rows = %q\nwant %q", c.rows, want)
	}
	if len(c.dead) != 0 {
		t.Errorf("dead letters: %v", c.dead)
	}
}

func TestBatchRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("n\n")
	for i := range 10 {
		b.WriteString(strings.Repeat("1", i+1) + "\n")
	}
	path := writeFile(t, b.String())
	for _, tt := range []struct {
		batchRows int
		want      []int
	}{{3, []int{3, 3, 3, 1}}, {5, []int{5, 5}}, {100, []int{10}}, {0, []int{10}}} {
		c, err := read(t, config(path, tt.batchRows, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.batches, tt.want) {
			t.Errorf("batch_rows %d: batches %v, want %v", tt.batchRows, c.batches, tt.want)
		}
	}
}

// dirty has a quoted field spanning lines 3-4 before its bad rows.
const dirty = `id,name,absent
1,Ana,2
2,"Line one
line two",3
3,"Bea, B",abc
4,Cid
5,Dan,4
6,"Eve",5,extra
7,Fay,1
`

func TestDeadLetters(t *testing.T) {
	path := writeFile(t, dirty)
	c, err := read(t, config(path, 2, map[string]any{"columns": map[string]any{"absent": "int32"}}))
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.DeadLetter{
		{Origin: path, Line: 5, Column: "absent", Reason: `expected int32, got "abc"`, Raw: `3,"Bea, B",abc`},
		{Origin: path, Line: 6, Reason: "expected 3 fields, got 2", Raw: "4,Cid"},
		{Origin: path, Line: 8, Reason: "expected 3 fields, got 4", Raw: `6,"Eve",5,extra`},
	}
	if !reflect.DeepEqual(c.dead, want) {
		t.Errorf("dead letters:\n%+v\nwant\n%+v", c.dead, want)
	}
	wantRows := [][]string{{"1", "Ana", "2"}, {"2", "Line one\nline two", "3"}, {"5", "Dan", "4"}, {"7", "Fay", "1"}}
	if !reflect.DeepEqual(c.rows, wantRows) {
		t.Errorf("rows = %q, want %q", c.rows, wantRows)
	}
	// Dead letters travel in groups, ahead of the batch that follows them.
	if want := []string{"batch", "dead", "batch"}; !reflect.DeepEqual(c.events, want) {
		t.Errorf("events = %v, want %v", c.events, want)
	}
}

func TestDeadLetterMalformedQuote(t *testing.T) {
	path := writeFile(t, "a,b\n1,x\n2,a\"b\n3,y\n")
	c, err := read(t, config(path, 0, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.dead) != 1 || c.dead[0].Line != 3 || !strings.Contains(c.dead[0].Reason, "quote") {
		t.Errorf("dead letters = %+v, want one for line 3 about a quote", c.dead)
	}
	if len(c.rows) != 2 {
		t.Errorf("rows = %q, want 2", c.rows)
	}
}

func TestOnErrorSkip(t *testing.T) {
	c, err := read(t, config(writeFile(t, dirty), 0, map[string]any{"on_error": "skip", "columns": map[string]any{"absent": "int32"}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.dead) != 0 || len(c.rows) != 4 {
		t.Errorf("got %d rows and %d dead letters, want 4 and 0", len(c.rows), len(c.dead))
	}
}

func TestOnErrorFail(t *testing.T) {
	path := writeFile(t, dirty)
	_, err := read(t, config(path, 0, map[string]any{"on_error": "fail", "columns": map[string]any{"absent": "int64"}}))
	want := path + `:5:12: column "absent": expected int64, got "abc"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
}

func TestEmitErrorStopsRead(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := &collector{failAt: 1}
	err := Source{}.Read(context.Background(), config(writeFile(t, "n\n1\n2\n3\n"), 1, nil), mem, c)
	if !errors.Is(err, errStop) || len(c.batches) != 1 {
		t.Errorf("err = %v after %d batches, want errStop after 1", err, len(c.batches))
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	err := Source{}.Read(ctx, config(writeFile(t, "n\n1\n"), 0, nil), mem, &collector{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestReadKeepsThePreparedSchema: Read is given the schema Schema returned
// at Prepare and keeps it, even when the file's sample would now infer
// other types; rows that do not fit are dead letters. A file whose
// columns changed is a configuration error.
func TestReadKeepsThePreparedSchema(t *testing.T) {
	path := writeFile(t, "id;score\n1;5\n2;12,5\n")
	cfg := config(path, 10, map[string]any{"delimiter": ";"})
	schema, err := Source{}.Schema(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := schema.Field(1).Type; got != arrow.PrimitiveTypes.Float64 {
		t.Fatalf("score is %s, want float64", got)
	}
	// Now the sample says score is text; the decimal mark is still
	// detected from it (12,5).
	if err := os.WriteFile(path, []byte("id;score\n1;abc\n2;12,5\n3;7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Schema = schema
	c, err := read(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.rows); got != "[[2 12.5] [3 7]]" {
		t.Errorf("rows %s, want [[2 12.5] [3 7]]", got)
	}
	if len(c.dead) != 1 || c.dead[0].Column != "score" {
		t.Errorf("dead letters %+v, want the row of abc", c.dead)
	}

	if err := os.WriteFile(path, []byte("id;name\n1;abc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := read(t, cfg); !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), "prepared with") {
		t.Errorf("changed columns: %v", err)
	}
}
