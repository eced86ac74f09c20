package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/vigie-edu/vigie/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// database gives t a fresh database on the shared test server, with its
// connection string in VIGIE_POSTGRES_DSN (the connectors' default), and a
// connection to it.
func database(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.Shared(t).Database(t)
	t.Setenv("VIGIE_POSTGRES_DSN", dsn)
	return dsn, pgtest.Connect(t, dsn)
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// query renders every row of sql as its columns' text joined by "|",
// nulls as "(null)" (as conformance.Row renders Arrow rows).
func query(t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				s[i] = "(null)"
			} else {
				s[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(s, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pgtestStart starts a server of t's own (one the test may stop) and puts
// a fresh database's connection string in VIGIE_POSTGRES_DSN.
func pgtestStart(t *testing.T) *pgtest.Server {
	t.Helper()
	s := pgtest.Start(t, "fsync=off")
	t.Setenv("VIGIE_POSTGRES_DSN", s.Database(t))
	return s
}

// checkedMem returns a checked allocator that must be empty when t ends,
// after the cleanups registered later (batches released by t.Cleanup).
func checkedMem(t *testing.T) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}
