//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigie-edu/vigie/internal/pgtest"
)

// pgPipeline copies attendance.csv to the PostgreSQL table attendance with
// the postgres sink in mode %s.
const pgPipeline = `
[pipeline]
name = "pg_kill"
batch_rows = 2000

[[source]]
name = "attendance"
connector = "csv"
[source.options]
path = "attendance.csv"
columns = { id = "int64", student_id = "utf8", day = "date32", absent_half_days = "int32", justified = "bool" }

[[sink]]
name = "db"
input = "attendance"
connector = "postgres"
[sink.options]
table = "attendance"
mode = %q
%s
`

// pgKillRun prepares a workspace with n attendance rows and the pipeline
// in mode, and returns the workspace and a connection to the database.
func pgKillRun(t *testing.T, n int, mode, extra string) (string, *pgx.Conn) {
	t.Helper()
	srv := pgtest.Start(t, "fsync=off")
	dsn := srv.Database(t)
	t.Setenv("VIGIE_POSTGRES_DSN", dsn)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "attendance.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id,student_id,day,absent_half_days,justified")
	for i := range n {
		fmt.Fprintf(w, "%d,S%07d,2025-09-%02d,%d,%t\n", i, i%100000, 1+i/100000%28, i%3, i%5 == 0)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "pg.toml"), fmt.Appendf(nil, pgPipeline, mode, extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, pgtest.Connect(t, dsn)
}

// startRun starts `vigie run pg.toml` in dir, in its own process group.
func startRun(t *testing.T, dir string) (*exec.Cmd, <-chan error, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(vigie(t), "run", "pg.toml")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range vigieProcesses(t, dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done, &out
}

// waitRows waits until the table holds rows committed by a flush, and
// fails t if the run ends first.
func waitRows(t *testing.T, conn *pgx.Conn, done <-chan error, out *bytes.Buffer) int {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before the kill (too fast? make the input bigger)\n%s", err, out)
		default:
		}
		var n int
		// The table exists once the sink opened.
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM attendance").Scan(&n); err == nil && n > 0 {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no row committed after 120 s\n%s", out)
	return 0
}

// checkTable checks that the table holds each of the n input rows once.
func checkTable(t *testing.T, conn *pgx.Conn, n int) {
	t.Helper()
	var rows, ids, bad int
	err := conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT id),
		count(*) FILTER (WHERE student_id <> 'S' || lpad((id % 100000)::text, 7, '0') OR absent_half_days <> id % 3 OR justified <> (id % 5 = 0))
		FROM attendance`).Scan(&rows, &ids, &bad)
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi int64
	if err := conn.QueryRow(context.Background(), "SELECT min(id), max(id) FROM attendance").Scan(&lo, &hi); err != nil {
		t.Fatal(err)
	}
	if rows != n || ids != n || lo != 0 || hi != int64(n-1) || bad != 0 {
		t.Errorf("table holds %d rows, %d distinct ids from %d to %d, %d with wrong values; want each of the %d input rows once", rows, ids, lo, hi, bad, n)
	}
}

// TestPostgresSinkPluginKilled: the plugin processes die (SIGKILL) while
// the sink writes; the engine starts them again, the sink resumes from
// its last flush (its position is stored in the same transaction as its
// rows) and the engine replays what followed: in append mode the table
// ends with every row once.
func TestPostgresSinkPluginKilled(t *testing.T) {
	const n = 600_000
	dir, conn := pgKillRun(t, n, "append", "")
	cmd, done, out := startRun(t, dir)
	before := waitRows(t, conn, done, out)
	var killed []int
	for _, pid := range vigieProcesses(t, dir) {
		if pid != cmd.Process.Pid {
			syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
	}
	if len(killed) == 0 {
		t.Fatal("no plugin process to kill")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vigie run after its plugins were killed: %v\n%s", err, out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("vigie run did not end\n%s", out)
	}
	t.Logf("killed plugin processes %v with %d rows committed", killed, before)
	checkTable(t, conn, n)
}

// TestPostgresUpsertEngineKilled: the whole run dies (SIGKILL to the
// engine and its plugins) with part of the rows committed; running the
// pipeline again from the start (the engine keeps no checkpoint across
// runs yet) leaves every row once, since upserts are idempotent.
func TestPostgresUpsertEngineKilled(t *testing.T) {
	const n = 600_000
	dir, conn := pgKillRun(t, n, "upsert", `key = ["id"]`)
	cmd, done, out := startRun(t, dir)
	before := waitRows(t, conn, done, out)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	for _, pid := range vigieProcesses(t, dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	var committed int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM attendance").Scan(&committed); err != nil {
		t.Fatal(err)
	}
	if committed >= n {
		t.Fatalf("the run had committed all %d rows before the kill: make the input bigger", committed)
	}
	t.Logf("killed the run with %d rows committed (%d seen first)", committed, before)
	_, done, out = startRun(t, dir)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vigie run again: %v\n%s", err, out)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("vigie run did not end\n%s", out)
	}
	checkTable(t, conn, n)
}

// TestPostgresQuerySource runs the postgres_query source in its plugin
// process: a table of every type it reads, in chunks, to a CSV file.
func TestPostgresQuerySource(t *testing.T) {
	srv := pgtest.Start(t, "fsync=off")
	dsn := srv.Database(t)
	t.Setenv("VIGIE_POSTGRES_DSN", dsn)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), `CREATE TABLE roster AS SELECT g AS id, 'S' || g AS student_id, (g % 2 = 0) AS boarder,
		date '2010-01-01' + g AS born, timestamptz '2025-09-01 08:00:00+00' + g * interval '1 hour' AS seen,
		(g / 8.0)::numeric(6,3) AS score, g::real / 4 AS ratio FROM generate_series(1, 2500) g`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	toml := `[pipeline]
name = "roster"
batch_rows = 1000

[[source]]
name = "roster"
connector = "postgres_query"
[source.options]
table = "roster"
key = ["id"]

[[sink]]
name = "out"
input = "roster"
connector = "csv_file"
[sink.options]
path = "out/roster.csv"
`
	if err := os.WriteFile(filepath.Join(dir, "pg.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, done, out := startRun(t, dir)
	if err := <-done; err != nil {
		t.Fatalf("vigie run: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", "roster.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2501 || lines[0] != "id,student_id,boarder,born,seen,score,ratio" || lines[2500] != "2500,S2500,true,2016-11-05,2025-12-14 12:00:00Z,312.500,625" {
		t.Errorf("%d lines, header %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}
