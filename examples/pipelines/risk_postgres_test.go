package pipelines_test

import (
	"context"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/pgtest"
)

// TestRiskPostgres runs the early-warning pack into a real PostgreSQL: one
// row per student in student_risk, with the alert columns, and a second
// run updates the rows in place (still one per student, same values).
func TestRiskPostgres(t *testing.T) {
	dsn := pgtest.Start(t, "fsync=off").Database(t)
	t.Setenv("VIGIE_POSTGRES_DSN", dsn)
	conn := pgtest.Connect(t, dsn)
	toml, _ := ewPipeline(t, "risk_postgres.toml", "early_warning")
	ctx := context.Background()
	snapshot := func() (rows, students, alerts int, digest string) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT student_id), count(*) FILTER (WHERE alert_level = 'alert'),
			md5(string_agg(student_id || risk::text || alert_level || coalesce(reason, '') || class_id, ',' ORDER BY student_id))
			FROM student_risk`).Scan(&rows, &students, &alerts, &digest)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	pipelinetest.Run(t, toml)
	rows, students, alerts, first := snapshot()
	if rows != 600 || students != 600 {
		t.Fatalf("student_risk holds %d rows for %d students, want one per student of examples/data (600)", rows, students)
	}
	if alerts == 0 {
		t.Error("no student at alert level")
	}
	var pk string
	if err := conn.QueryRow(ctx, `SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = 'student_risk'::regclass AND i.indisprimary`).Scan(&pk); err != nil || pk != "student_id" {
		t.Errorf("primary key %q (%v), want student_id", pk, err)
	}
	pipelinetest.Run(t, toml)
	if rows, students, _, again := snapshot(); rows != 600 || students != 600 || again != first {
		t.Errorf("after a second run: %d rows for %d students, digest %s (was %s)", rows, students, again, first)
	}
}
