package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/postgres"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/pgtest"
)

var gradeSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
}, nil)

var gradeBatches = []string{
	`[{"id": 1, "name": "Ada", "day": "2025-09-01"}, {"id": 2, "name": null, "day": null}]`,
	`[{"id": 3, "name": "Bob", "day": "2025-09-02"}]`,
	`[{"id": 4, "name": "Chloé", "day": "2026-01-05"}, {"id": 5, "name": "Dan", "day": "2026-01-06"}, {"id": 6, "name": "Eve", "day": null}]`,
}

func TestSinkConformance(t *testing.T) {
	for _, mode := range []string{"append", "upsert"} {
		t.Run(mode, func(t *testing.T) {
			_, conn := database(t)
			opts := map[string]any{"table": "grades", "mode": mode}
			if mode == "upsert" {
				opts["key"] = []any{"id"}
			}
			c := conformance.SinkCase{
				Options: opts,
				Schema:  gradeSchema,
				Batches: gradeBatches,
				// Reads the table and empties it for the next subtest.
				ReadBack: func(t *testing.T) []string {
					rows := query(t, conn, "SELECT id::text, name, day::text FROM grades ORDER BY id")
					mustExec(t, conn, "DELETE FROM grades") // not TRUNCATE: the abandoned writer of the crash case holds a lock on the table
					return rows
				},
				Bad: []conformance.BadCase{
					{Options: map[string]any{"table": "grades", "mode": "merge"}, Want: `"merge" is not one of`},
					{Options: map[string]any{"table": "grades", "mode": "upsert"}, Want: "upsert mode needs the key columns"},
					{Options: map[string]any{"table": "grades", "key": []any{"id"}}, Want: "key is for upsert mode"},
					{Options: map[string]any{"table": "grades", "dsn_env": "PGHOST"}, Want: "must start with VIGIE_"},
					{Options: map[string]any{"table": "grades", "dsn_env": "VIGIE_NO_SUCH_DSN"}, Want: "VIGIE_NO_SUCH_DSN holds no connection string"},
					{Options: map[string]any{"table": ""}, Want: "name the table"},
				},
			}
			t.Run("in-process", func(t *testing.T) { conformance.TestSink(t, postgres.Sink{}, c) })
			t.Run("over gRPC", func(t *testing.T) {
				conformance.TestSink(t, conformance.ThroughPlugin(t, postgres.Sink{}).(protocol.Sink), c)
			})
		})
	}
}

// batches builds records of schema from JSON arrays.
func batches(t *testing.T, mem memory.Allocator, schema *arrow.Schema, js ...string) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	for _, s := range js {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Release)
		out = append(out, rec)
	}
	return out
}

func sinkCfg(opts map[string]any) protocol.Config {
	return protocol.Config{Pipeline: "p", Stage: "out", Connector: postgres.Name, Options: opts}
}

func open(t *testing.T, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) protocol.Writer {
	t.Helper()
	w, err := postgres.Sink{}.Open(context.Background(), cfg, mem, schema)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func write(t *testing.T, w protocol.Writer, recs ...arrow.RecordBatch) {
	t.Helper()
	for _, r := range recs {
		if err := w.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func flush(t *testing.T, w protocol.Writer) protocol.Position {
	t.Helper()
	pos, err := w.(protocol.Flusher).Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func TestUpsertLatestRowWins(t *testing.T) {
	_, conn := database(t)
	mem := checkedMem(t)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "term", Type: arrow.PrimitiveTypes.Int32},
		{Name: "risk", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	recs := batches(t, mem, schema,
		`[{"student_id": "S1", "term": 1, "risk": 0.1}, {"student_id": "S2", "term": 1, "risk": 0.2}, {"student_id": "S1", "term": 1, "risk": 0.3}]`,
		`[{"student_id": "S2", "term": 1, "risk": null}, {"student_id": "S1", "term": 2, "risk": 0.9}]`,
		`[{"student_id": "S1", "term": 1, "risk": 0.5}]`,
	)
	cfg := sinkCfg(map[string]any{"table": "risk", "mode": "upsert", "key": []any{"student_id", "term"}})
	w := open(t, cfg, mem, schema)
	write(t, w, recs[0])
	flush(t, w) // S1/1 twice in one staged batch: the later one wins
	write(t, w, recs[1:]...)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := query(t, conn, "SELECT student_id, term::text, risk::text FROM risk ORDER BY 1, 2")
	want := []string{"S1|1|0.5", "S1|2|0.9", "S2|1|(null)"}
	if !slices.Equal(got, want) {
		t.Errorf("table holds %q, want %q", got, want)
	}
	// A second run over the same input leaves the same table.
	w = open(t, cfg, mem, schema)
	write(t, w, recs...)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := query(t, conn, "SELECT student_id, term::text, risk::text FROM risk ORDER BY 1, 2"); !slices.Equal(got, want) {
		t.Errorf("after a rerun the table holds %q, want %q", got, want)
	}
	pk := query(t, conn, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = 'risk'::regclass AND i.indisprimary ORDER BY 1`)
	if !slices.Equal(pk, []string{"student_id", "term"}) {
		t.Errorf("created table's primary key is %q, want student_id, term", pk)
	}
}

func TestExistingTable(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "absences", Type: arrow.PrimitiveTypes.Int32},
		{Name: "justified", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	tests := []struct {
		name    string
		table   string
		opts    map[string]any
		wantErr string // "" for success
		want    []string
	}{
		{name: "wider types accepted", table: "student_id varchar(12), absences bigint, justified boolean, note text",
			want: []string{"S1|3|true|(null)"}},
		{name: "type that does not fit", table: "student_id text, absences smallint, justified boolean",
			wantErr: `column "absences" is smallint, which cannot hold the input's int32 values (the sink would create it as integer)`},
		{name: "text where a bool goes", table: "student_id text, absences integer, justified text",
			wantErr: `column "justified" is text, which cannot hold the input's bool values`},
		{name: "missing column refused", table: "student_id text, absences integer",
			wantErr: `has no column "justified" (input type bool, created as boolean); add it or set add_columns = true`},
		{name: "missing column added", table: "student_id text, absences integer", opts: map[string]any{"add_columns": true},
			want: []string{"S1|3|true"}},
		{name: "required column the input lacks", table: "student_id text, absences integer, justified boolean, school text NOT NULL",
			wantErr: `column "school" is NOT NULL without a default`},
		{name: "upsert without a unique index", table: "student_id text, absences integer, justified boolean",
			opts: map[string]any{"mode": "upsert", "key": []any{"student_id"}}, wantErr: "no primary key or unique index on exactly (student_id)"},
		{name: "upsert on a unique index", table: "student_id text UNIQUE, absences integer, justified boolean",
			opts: map[string]any{"mode": "upsert", "key": []any{"student_id"}}, want: []string{"S1|3|true"}},
		{name: "upsert key not in the input", table: "student_id text UNIQUE, absences integer, justified boolean",
			opts: map[string]any{"mode": "upsert", "key": []any{"ine"}}, wantErr: `no column "ine" in the input`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, conn := database(t)
			mustExec(t, conn, "CREATE TABLE absences ("+tc.table+")")
			mem := checkedMem(t)
			opts := map[string]any{"table": "absences"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			w, err := postgres.Sink{}.Open(context.Background(), sinkCfg(opts), mem, schema)
			if tc.wantErr != "" {
				if err == nil {
					w.Abort(context.Background())
					t.Fatalf("table (%s) accepted, want an error with %q", tc.table, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, protocol.ErrConfig) {
					t.Fatalf("error %q (config error: %v), want one with %q", err, errors.Is(err, protocol.ErrConfig), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			write(t, w, batches(t, mem, schema, `[{"student_id": "S1", "absences": 3, "justified": true}]`)...)
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := query(t, conn, "SELECT * FROM absences"); !slices.Equal(got, tc.want) {
				t.Errorf("table holds %q, want %q", got, tc.want)
			}
		})
	}
}

// TestResumeAfterUnrecordedFlush: the engine recorded the position of one
// flush; the sink then flushed again (rows committed) but the process died
// before the engine learnt it. The engine resumes from the position it has
// and replays every batch since: the sink skips the rows already committed.
func TestResumeAfterUnrecordedFlush(t *testing.T) {
	for _, mode := range []string{"append", "upsert"} {
		t.Run(mode, func(t *testing.T) {
			_, conn := database(t)
			mem := checkedMem(t)
			recs := batches(t, mem, gradeSchema, gradeBatches...)
			opts := map[string]any{"table": "grades", "mode": mode}
			if mode == "upsert" {
				opts["key"] = []any{"id"}
			}
			cfg := sinkCfg(opts)
			w := open(t, cfg, mem, gradeSchema)
			write(t, w, recs[0])
			recorded := flush(t, w)
			write(t, w, recs[1])
			flush(t, w) // committed, never recorded by the engine
			write(t, w, recs[2])
			// The process dies: w is abandoned, its open transaction lost.
			if err := w.Abort(context.Background()); err != nil {
				t.Fatal(err)
			}
			cfg.Resume = recorded
			w = open(t, cfg, mem, gradeSchema)
			// The replay cut in other batches: the committed row ends
			// inside the first one.
			write(t, w, batches(t, mem, gradeSchema, strings.TrimSuffix(gradeBatches[1], "]")+", "+strings.TrimPrefix(gradeBatches[2], "["))...)
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := query(t, conn, "SELECT id::text FROM grades ORDER BY id")
			if want := []string{"1", "2", "3", "4", "5", "6"}; !slices.Equal(got, want) {
				t.Errorf("ids %q, want %q: a row lost or repeated", got, want)
			}
			pos := query(t, conn, "SELECT flushes::text, rows::text FROM vigie_positions WHERE pipeline = 'p' AND stage = 'out'")
			if want := []string{"3|6"}; !slices.Equal(pos, want) {
				t.Errorf("stored position %q, want %q", pos, want)
			}
		})
	}
}

func TestResumeInconsistentPosition(t *testing.T) {
	_, conn := database(t)
	mem := checkedMem(t)
	cfg := sinkCfg(map[string]any{"table": "grades"})
	w := open(t, cfg, mem, gradeSchema)
	write(t, w, batches(t, mem, gradeSchema, gradeBatches[0])...)
	pos := flush(t, w)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "DELETE FROM vigie_positions")
	cfg.Resume = pos
	_, err := postgres.Sink{}.Open(context.Background(), cfg, mem, gradeSchema)
	if err == nil || !strings.Contains(err.Error(), "holds no position for pipeline") {
		t.Fatalf("resume without a stored position: %v", err)
	}
}

func TestServerStoppedMidRun(t *testing.T) {
	s := pgtestStart(t)
	mem := checkedMem(t)
	recs := batches(t, mem, gradeSchema, gradeBatches...)
	w := open(t, sinkCfg(map[string]any{"table": "grades"}), mem, gradeSchema)
	write(t, w, recs[0])
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	err := w.Write(context.Background(), recs[1])
	if err == nil {
		_, err = w.(protocol.Flusher).Flush(context.Background())
	}
	w.Abort(context.Background())
	if err == nil {
		t.Fatal("writing to a stopped server succeeded")
	}
	if !errors.Is(err, protocol.ErrTemporary) || !strings.Contains(err.Error(), "grades") {
		t.Errorf("error %q: want a temporary error naming the table", err)
	}
	t.Logf("error: %v", err)
	_, err = postgres.Sink{}.Open(context.Background(), sinkCfg(map[string]any{"table": "grades"}), mem, gradeSchema)
	if err == nil || !strings.Contains(err.Error(), "connect to PostgreSQL at 127.0.0.1:") || !errors.Is(err, protocol.ErrTemporary) {
		t.Errorf("open with the server down: %v; want a temporary error saying where it connected", err)
	}
	t.Logf("error: %v", err)
}

// TestTLS connects through the connection string's TLS settings to a
// server that refuses plain TCP connections, and from a dsn_file.
func TestTLS(t *testing.T) {
	s := pgtest.StartTLS(t, "fsync=off")
	verified := s.Database(t)
	var plain []string // the same without TLS settings
	for _, kv := range strings.Fields(verified) {
		if !strings.HasPrefix(kv, "ssl") {
			plain = append(plain, kv)
		}
	}
	dir := t.TempDir()
	tests := []struct {
		name, dsn, wantErr string
	}{
		{"verify-full with the CA", verified, ""},
		{"TLS off", strings.Join(plain, " ") + " sslmode=disable", "no pg_hba.conf entry"},
		{"another CA", strings.Join(plain, " ") + " sslmode=verify-full sslrootcert=" + otherCA(t, dir), "certificate signed by unknown authority"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "dsn"+strconv.Itoa(i))
			if err := os.WriteFile(path, []byte(tc.dsn+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			mem := checkedMem(t)
			w, err := postgres.Sink{}.Open(context.Background(), sinkCfg(map[string]any{"table": "grades", "dsn_file": path}), mem, gradeSchema)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "password") {
					t.Errorf("the error shows the connection string: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			write(t, w, batches(t, mem, gradeSchema, gradeBatches[0])...)
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// otherCA writes a self-signed CA that did not sign the server's
// certificate.
func otherCA(t *testing.T, dir string) string {
	t.Helper()
	other := pgtest.StartTLS(t)
	path := filepath.Join(dir, "other-ca.pem")
	b, err := os.ReadFile(other.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServerStoppedEngineError runs a pipeline into a server that stops
// once the sink has opened: the engine retries the sink (the errors are
// temporary), then fails the run with an error that says what happened.
func TestServerStoppedEngineError(t *testing.T) {
	s := pgtestStart(t)
	conn := pgtest.Connect(t, os.Getenv("VIGIE_POSTGRES_DSN"))
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("id,name\n")
	for i := range 1_000_000 {
		fmt.Fprintf(&csv, "%d,S%07d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	toml := filepath.Join(dir, "p.toml")
	if err := os.WriteFile(toml, []byte(`[pipeline]
name = "stop"
batch_rows = 1000

[[source]]
name = "in"
connector = "csv"
[source.options]
path = "in.csv"
columns = { id = "int64", name = "utf8" }

[[sink]]
name = "db"
input = "in"
connector = "postgres"
[sink.options]
table = "names"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := pipelinetest.RunErr(t, toml)
		done <- err
	}()
	for {
		var open bool
		if err := conn.QueryRow(context.Background(), "SELECT to_regclass('names') IS NOT NULL").Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before the server stopped", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the run did not end after the server stopped")
	}
	if err == nil {
		t.Fatal("the run succeeded with its server stopped")
	}
	for _, want := range []string{`stage "db"`, "PostgreSQL server unreachable or connection lost", "connect to PostgreSQL at 127.0.0.1:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("error: %v", err)
}
