package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/postgres"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

func TestSourceConformance(t *testing.T) {
	_, conn := database(t)
	mustExec(t, conn, `CREATE TABLE roster (class text, student_id text, born date, PRIMARY KEY (class, student_id))`)
	mustExec(t, conn, `INSERT INTO roster VALUES ('3B', 'S3', '2011-02-03'), ('3A', 'S2', NULL), ('3A', 'S1', '2010-12-31'),
		('4A', 'S9', '2010-01-01'), ('3B', 'S4', '2011-05-06'), ('3B', 'S0', '2011-01-01'), ('4A', 'S7', NULL)`)
	want := []string{"3A|S1|2010-12-31", "3A|S2|(null)", "3B|S0|2011-01-01", "3B|S3|2011-02-03", "3B|S4|2011-05-06", "4A|S7|(null)", "4A|S9|2010-01-01"}
	bad := []conformance.BadCase{
		{Options: map[string]any{"key": []any{"id"}}, Want: "give either table or query"},
		{Options: map[string]any{"table": "roster", "query": "SELECT 1", "key": []any{"id"}}, Want: "give either table or query"},
		{Options: map[string]any{"table": "roster", "key": []any{"ine"}}, Want: `no column "ine" in the result`},
		{Options: map[string]any{"query": "SELECT 1 AS id, point(1, 2) AS p", "key": []any{"id"}}, Want: `column "p" is point, which the source does not read`},
		{Options: map[string]any{"table": "roster", "key": []any{"class"}, "dsn_env": "HOME"}, Want: "must start with VIGIE_"},
	}
	cases := map[string]conformance.SourceCase{
		"table, composite key": {Options: map[string]any{"table": "roster", "key": []any{"class", "student_id"}}, WantRows: want, Bad: bad},
		"query": {Options: map[string]any{"query": "SELECT class, student_id, born FROM roster WHERE class <> '9Z'", "key": []any{"class", "student_id"}},
			WantRows: want, BatchRows: 2},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, postgres.Source{}, c) })
			t.Run("over gRPC", func(t *testing.T) {
				conformance.TestSource(t, conformance.ThroughPlugin(t, postgres.Source{}).(protocol.Source), c)
			})
		})
	}
}

// collect reads src into rendered rows, with the batches' sizes and the
// most memory the allocator held at any emit.
type collect struct {
	mem   *memory.CheckedAllocator
	rows  []string
	sizes []int
	peak  int
	pos   []protocol.Position
}

func (c *collect) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	c.rows = append(c.rows, conformance.Rows(rec)...)
	c.sizes = append(c.sizes, int(rec.NumRows()))
	c.peak = max(c.peak, c.mem.CurrentAlloc())
	c.pos = append(c.pos, pos)
	return nil
}

func (c *collect) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func read(t *testing.T, opts map[string]any, batchRows int) (*collect, *arrow.Schema, error) {
	t.Helper()
	mem := checkedMem(t)
	cfg := protocol.Config{Connector: postgres.SourceName, Stage: "in", BatchRows: batchRows, Options: opts}
	schema, err := postgres.Source{}.Schema(context.Background(), cfg)
	if err != nil {
		return nil, nil, err
	}
	c := &collect{mem: mem}
	return c, schema, postgres.Source{}.Read(context.Background(), cfg, mem, c)
}

// TestTypesBothWays writes every Arrow type the sink knows into a table it
// creates, checks the column types it chose, and reads the table back with
// the source.
func TestTypesBothWays(t *testing.T) {
	_, conn := database(t)
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int32},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 9, Scale: 2}, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
		{Name: "tstz", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	recs := batches(t, mem, schema,
		`[{"id": 1, "i8": -8, "i16": 1600, "i64": 9007199254740993, "u32": 4000000000, "f32": 1.5, "f64": -0.25, "dec": "1234567.89",
		   "s": "Chloé 🙂", "b": true, "d": "1999-12-31", "ts": "2025-09-01T08:30:00.123", "tstz": "2026-01-05T23:59:59.000001Z"},
		  {"id": 2}]`)
	w := open(t, sinkCfg(map[string]any{"table": "typed"}), mem, schema)
	write(t, w, recs...)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	types := query(t, conn, `SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'typed'::regclass AND attnum > 0 ORDER BY attnum`)
	wantTypes := []string{"id integer", "i8 smallint", "i16 smallint", "i64 bigint", "u32 bigint", "f32 real", "f64 double precision",
		"dec numeric(9,2)", "s text", "b boolean", "d date", "ts timestamp without time zone", "tstz timestamp with time zone"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("created columns:\n got %q\nwant %q", types, wantTypes)
	}
	// What the server holds, rendered by the server.
	mustExec(t, conn, "SET TimeZone = 'UTC'")
	text := query(t, conn, "SELECT i64::text, u32::text, dec::text, s, d::text, ts::text, tstz::text FROM typed WHERE id = 1")
	if want := []string{"9007199254740993|4000000000|1234567.89|Chloé 🙂|1999-12-31|2025-09-01 08:30:00.123|2026-01-05 23:59:59.000001+00"}; !slices.Equal(text, want) {
		t.Errorf("server holds:\n got %q\nwant %q", text, want)
	}
	got, back, err := read(t, map[string]any{"table": "typed", "key": []any{"id"}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantBack := []string{"id: int32", "i8: int16", "i16: int16", "i64: int64", "u32: int64", "f32: float32", "f64: float64",
		"dec: decimal(9, 2)", "s: utf8", "b: bool", "d: date32", "ts: timestamp[us]", "tstz: timestamp[us, tz=UTC]"}
	var gotBack []string
	for _, f := range back.Fields() {
		gotBack = append(gotBack, f.Name+": "+f.Type.String())
	}
	if !slices.Equal(gotBack, wantBack) {
		t.Errorf("source schema:\n got %q\nwant %q", gotBack, wantBack)
	}
	wantRows := []string{
		"1|-8|1600|9007199254740993|4000000000|1.5|-0.25|1234567.89|Chloé 🙂|true|1999-12-31|2025-09-01T08:30:00.123|2026-01-05T23:59:59.000001Z",
		"2|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)",
	}
	if !slices.Equal(got.rows, wantRows) {
		t.Errorf("read back:\n got %q\nwant %q", got.rows, wantRows)
	}
	// numeric = "float", and numeric without a precision, read as float64.
	mustExec(t, conn, "CREATE TABLE n (id int PRIMARY KEY, a numeric(9,2), b numeric)")
	mustExec(t, conn, "INSERT INTO n VALUES (1, 12.5, 0.125)")
	for _, mode := range []string{"decimal", "float"} {
		got, back, err := read(t, map[string]any{"table": "n", "key": []any{"id"}, "numeric": mode}, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"decimal": "decimal(9, 2) float64 1|12.5|0.125", "float": "float64 float64 1|12.5|0.125"}[mode]
		if s := back.Field(1).Type.String() + " " + back.Field(2).Type.String() + " " + strings.Join(got.rows, ","); s != want {
			t.Errorf("numeric = %q: got %q, want %q", mode, s, want)
		}
	}
}

// TestSourceBoundedMemory reads a table of many chunks: each query returns
// one chunk, and the memory held at any emit stays that of about one
// batch, however many rows the table has.
func TestSourceBoundedMemory(t *testing.T) {
	_, conn := database(t)
	mustExec(t, conn, `CREATE TABLE attendance AS SELECT g AS id, 'S' || lpad((g % 1000)::text, 7, '0') AS student_id,
		date '2025-09-01' + (g % 200) AS day, (g % 3)::smallint AS absent FROM generate_series(1, 60000) g`)
	mustExec(t, conn, "ALTER TABLE attendance ADD PRIMARY KEY (id)")
	got, _, err := read(t, map[string]any{"table": "attendance", "key": []any{"id"}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.rows) != 60000 || len(got.sizes) != 60 {
		t.Fatalf("%d rows in %d batches, want 60000 in 60", len(got.rows), len(got.sizes))
	}
	for i, r := range got.rows {
		if want := strings.SplitN(r, "|", 2)[0]; want != strconv.Itoa(i+1) {
			t.Fatalf("row %d is %q: rows out of key order or missing", i, r)
		}
	}
	// One batch of 1000 rows of these columns is about 40 KiB; 60 of them
	// held at once would be 2.4 MiB.
	if got.peak > 256<<10 {
		t.Errorf("the source held %d bytes at once while emitting 60 chunks of 1000 rows: memory grows with the table", got.peak)
	}
	t.Logf("peak Arrow memory at an emit: %d bytes", got.peak)
	// Resuming from the 30th chunk's position reads the 30 chunks after it.
	cfg := protocol.Config{Connector: postgres.SourceName, BatchRows: 1000, Resume: got.pos[29],
		Options: map[string]any{"table": "attendance", "key": []any{"id"}}}
	rest := &collect{mem: checkedMem(t)}
	if err := (postgres.Source{}).Read(context.Background(), cfg, rest.mem, rest); err != nil {
		t.Fatal(err)
	}
	if len(rest.rows) != 30000 || !strings.HasPrefix(rest.rows[0], "30001|") {
		t.Errorf("resumed from %s: %d rows starting %q, want 30000 from id 30001", got.pos[29], len(rest.rows), rest.rows[0])
	}
}

func TestSourceBadKeys(t *testing.T) {
	_, conn := database(t)
	mustExec(t, conn, "CREATE TABLE k (id int, v text)")
	tests := []struct {
		name, rows, want string
		chunk            int
	}{
		{"duplicate within a chunk", "(1, 'a'), (2, 'b'), (2, 'c'), (3, 'd')", "key [2] appears twice", 10},
		{"duplicate across a chunk's end", "(1, 'a'), (2, 'b'), (2, 'c'), (3, 'd')", "key [2] appears twice", 2},
		{"null key", "(1, 'a'), (NULL, 'b')", `key column "id" is null`, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, conn, "TRUNCATE k")
			mustExec(t, conn, "INSERT INTO k VALUES "+tc.rows)
			_, _, err := read(t, map[string]any{"table": "k", "key": []any{"id"}}, tc.chunk)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// TestPipelineTableToTable runs a pipeline through the engine: the
// postgres_query source reads a table in chunks, the postgres sink upserts
// it into another, twice.
func TestPipelineTableToTable(t *testing.T) {
	_, conn := database(t)
	mustExec(t, conn, `CREATE TABLE students AS SELECT 'S' || lpad(g::text, 7, '0') AS student_id, 'C' || (g % 30) AS class_id,
		(g % 7 = 0) AS boarder, date '2010-01-01' + g % 1000 AS born FROM generate_series(1, 5000) g`)
	mustExec(t, conn, "ALTER TABLE students ADD PRIMARY KEY (student_id)")
	path := filepath.Join(t.TempDir(), "copy.toml")
	toml := `[pipeline]
name = "copy"
batch_rows = 700

[[source]]
name = "students"
connector = "postgres_query"
[source.options]
table = "students"
key = ["student_id"]

[[sink]]
name = "db"
input = "students"
connector = "postgres"
[sink.options]
table = "roster"
mode = "upsert"
key = ["student_id"]
`
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		sum := pipelinetest.Run(t, path)
		st, _ := sum.Stage("students")
		if got := sum.SourceRows(); got != 5000 || st.Batches != 8 {
			t.Errorf("%d rows read in %d batches, want 5000 in 8 chunks of at most 700", got, st.Batches)
		}
	}
	diff := query(t, conn, "SELECT count(*)::text FROM (SELECT * FROM students EXCEPT SELECT * FROM roster UNION ALL SELECT * FROM roster EXCEPT SELECT * FROM students) d")
	n := query(t, conn, "SELECT count(*)::text FROM roster")
	if !slices.Equal(diff, []string{"0"}) || !slices.Equal(n, []string{"5000"}) {
		t.Errorf("roster holds %s rows, %s differing from students; want the same 5000", n, diff)
	}
}

func TestChunkRows(t *testing.T) {
	_, conn := database(t)
	mustExec(t, conn, "CREATE TABLE k AS SELECT g AS id FROM generate_series(1, 100) g")
	tests := []struct {
		chunk, batch int
		want         []int
	}{
		{chunk: 30, batch: 50, want: []int{30, 30, 30, 10}},
		{chunk: 80, batch: 50, want: []int{50, 50}}, // a batch holds at most batch_rows
		{chunk: 0, batch: 40, want: []int{40, 40, 20}},
		{chunk: 0, batch: 100, want: []int{100}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("chunk %d batch %d", tc.chunk, tc.batch), func(t *testing.T) {
			got, _, err := read(t, map[string]any{"table": "k", "key": []any{"id"}, "chunk_rows": int64(tc.chunk)}, tc.batch)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.sizes, tc.want) {
				t.Errorf("batches of %v rows, want %v", got.sizes, tc.want)
			}
		})
	}
}
