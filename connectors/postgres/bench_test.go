package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/postgres"
	"github.com/vigie-edu/vigie/internal/pgtest"
)

// attendanceSchema is the attendance shape of the figures: one row per
// student and day.
var attendanceSchema = arrow.NewSchema([]arrow.Field{
	{Name: "student_id", Type: arrow.BinaryTypes.String},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32},
	{Name: "half_days", Type: arrow.PrimitiveTypes.Int16},
	{Name: "absent_half_days", Type: arrow.PrimitiveTypes.Int16},
	{Name: "justified", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

// attendanceRow returns row i: student ids S0000000... cycling over a
// million students, one school day per cycle from 2025-09-01.
func attendanceRow(i int) (string, int32, int16, int16, bool) {
	day := int32(time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC).Unix()/86400) + int32(i/1_000_000)
	absent := int16((i * 7) % 3)
	return fmt.Sprintf("S%07d", i%1_000_000), day, 2, absent, absent > 0 && i%5 == 0
}

// BenchmarkCopyAttendance writes VIGIE_BENCH_ROWS rows (default 10M) of
// the attendance shape with the postgres sink (append mode, binary COPY)
// and the same rows as CSV with psql's \copy, into two empty tables of one
// server, and reports both rates and their ratio. Only the sink's Write and
// Close calls are timed (the batches are built between them), and psql's
// whole run (it reads the CSV file). It also times `vigie run` of a
// pipeline reading the same CSV file into a third table (csv source and
// postgres sink in their plugin processes, the whole process timed), for
// the rate of the pipeline end to end. Run it alone, once:
//
//	go test ./connectors/postgres -run '^$' -bench CopyAttendance -benchtime 1x -timeout 60m
func BenchmarkCopyAttendance(b *testing.B) {
	rows := 10_000_000
	if s := os.Getenv("VIGIE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	srv := pgtest.Start(b)
	dsn := srv.Database(b)
	b.Setenv("VIGIE_POSTGRES_DSN", dsn)
	conn := pgtest.Connect(b, dsn)
	ctx := context.Background()
	csvPath := filepath.Join(b.TempDir(), "attendance.csv")
	writeCSV(b, csvPath, rows)
	vigieBin := filepath.Join(b.TempDir(), "vigie")
	if out, err := exec.Command("go", "build", "-o", vigieBin, "github.com/vigie-edu/vigie/cmd/vigie").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	const batchRows = 65536
	mem := memory.NewGoAllocator()
	for n := range b.N {
		sinkTable, psqlTable := fmt.Sprintf("att_sink_%d", n), fmt.Sprintf("att_psql_%d", n)
		if _, err := conn.Exec(ctx, "CREATE TABLE "+psqlTable+" (student_id text, day date, half_days smallint, absent_half_days smallint, justified boolean)"); err != nil {
			b.Fatal(err)
		}
		w, err := postgres.Sink{}.Open(ctx, sinkCfg(map[string]any{"table": sinkTable}), mem, attendanceSchema)
		if err != nil {
			b.Fatal(err)
		}
		bld := array.NewRecordBuilder(mem, attendanceSchema)
		var sinkTime time.Duration
		for at := 0; at < rows; at += batchRows {
			for i := at; i < min(at+batchRows, rows); i++ {
				s, d, h, a, j := attendanceRow(i)
				bld.Field(0).(*array.StringBuilder).Append(s)
				bld.Field(1).(*array.Date32Builder).Append(arrow.Date32(d))
				bld.Field(2).(*array.Int16Builder).Append(h)
				bld.Field(3).(*array.Int16Builder).Append(a)
				bld.Field(4).(*array.BooleanBuilder).Append(j)
			}
			rec := bld.NewRecordBatch()
			start := time.Now()
			err := w.Write(ctx, rec)
			sinkTime += time.Since(start)
			rec.Release()
			if err != nil {
				b.Fatal(err)
			}
		}
		bld.Release()
		start := time.Now()
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		sinkTime += time.Since(start)

		start = time.Now()
		psql := exec.Command(filepath.Join(srv.Bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn,
			"-c", fmt.Sprintf(`\copy %s FROM '%s' WITH (FORMAT csv, HEADER true)`, psqlTable, csvPath))
		if out, err := psql.CombinedOutput(); err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		psqlTime := time.Since(start)

		// The whole pipeline: vigie run reads the same CSV (csv source,
		// its own plugin process) into the postgres sink (another).
		pipeTable := fmt.Sprintf("att_vigie_%d", n)
		toml := filepath.Join(filepath.Dir(csvPath), pipeTable+".toml")
		if err := os.WriteFile(toml, fmt.Appendf(nil, vigiePipeline, csvPath, pipeTable), 0o644); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		run := exec.Command(vigieBin, "run", toml)
		run.Env = append(os.Environ(), "VIGIE_POSTGRES_DSN="+dsn)
		if out, err := run.CombinedOutput(); err != nil {
			b.Fatalf("vigie run: %v\n%s", err, out)
		}
		vigieTime := time.Since(start)

		for _, tbl := range []string{sinkTable, psqlTable, pipeTable} {
			var got int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tbl).Scan(&got); err != nil || got != rows {
				b.Fatalf("%s holds %d rows (%v), want %d", tbl, got, err, rows)
			}
		}
		var differ int
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) d", sinkTable, psqlTable)).Scan(&differ); err != nil || differ != 0 {
			b.Fatalf("%d rows of the sink's table are not in psql's (%v)", differ, err)
		}
		sinkRate, psqlRate := float64(rows)/sinkTime.Seconds(), float64(rows)/psqlTime.Seconds()
		b.ReportMetric(sinkRate, "sink_rows/s")
		b.ReportMetric(psqlRate, "psql_rows/s")
		b.ReportMetric(sinkRate/psqlRate, "ratio")
		vigieRate := float64(rows) / vigieTime.Seconds()
		b.ReportMetric(vigieRate, "vigie_run_rows/s")
		b.ReportMetric(vigieRate/psqlRate, "vigie_run_ratio")
		b.Logf("%d rows: sink %v (%.0f rows/s), psql \\copy %v (%.0f rows/s), ratio %.2f; vigie run csv -> postgres %v (%.0f rows/s), ratio %.2f",
			rows, sinkTime.Round(time.Millisecond), sinkRate, psqlTime.Round(time.Millisecond), psqlRate, sinkRate/psqlRate,
			vigieTime.Round(time.Millisecond), vigieRate, vigieRate/psqlRate)
	}
}

// vigiePipeline copies the CSV file %s to table %s; the csv source has no
// int16, so the counts are integer columns there.
const vigiePipeline = `[pipeline]
name = "copy_bench"

[[source]]
name = "attendance"
connector = "csv"
[source.options]
path = %q
columns = { student_id = "utf8", day = "date32", half_days = "int32", absent_half_days = "int32", justified = "bool" }

[[sink]]
name = "db"
input = "attendance"
connector = "postgres"
[sink.options]
table = %q
`

func writeCSV(b *testing.B, path string, rows int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "student_id,day,half_days,absent_half_days,justified")
	for i := range rows {
		s, d, h, a, j := attendanceRow(i)
		fmt.Fprintf(w, "%s,%s,%d,%d,%t\n", s, arrow.Date32(d).FormattedString(), h, a, j)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
