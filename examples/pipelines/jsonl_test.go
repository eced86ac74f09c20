package pipelines_test

import (
	"path/filepath"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestJSONL reads JSON Lines (plain and gzip) with a declared schema
// (jsonl.toml) and checks the Parquet written and every dead letter.
func TestJSONL(t *testing.T) {
	toml := sandbox(t, "jsonl.toml", "pipelines/testdata/jsonl")
	dir := filepath.Dir(toml)
	sum := pipelinetest.Run(t, toml)
	st, _ := sum.Stage("activity")
	if st.RowsOut != 6 || st.DeadLettered != 4 {
		t.Errorf("activity: %d rows, %d dead letters; want 6 and 4", st.RowsOut, st.DeadLettered)
	}
	names, rows := readParquet(t, filepath.Join(dir, "out", "jsonl_activity.parquet"))
	wantNames := "event_id:int64\nstudent.id:utf8\nstudent.class:utf8\nkind:utf8\nat:timestamp[us, tz=UTC]\nduration_s:float64\nok:bool\nday:date32"
	if pjxJoin(names) != wantNames {
		t.Errorf("schema:\n%s\nwant\n%s", pjxJoin(names), wantNames)
	}
	want := []string{
		"1|S0001|6A|login|2025-09-04T06:01:00Z|0|true|2025-09-04",
		"2|S0002|6A|homework|2025-09-04T18:30:12Z|1260.5|true|2025-09-04",
		"4|S0001|6A|quiz|2025-09-05T10:05:00Z|300|(null)|2025-09-05",
		"7|S0005|6B|login|2025-09-06T07:55:00Z|(null)|true|2025-09-06",
		"8|S0002|6A|homework|2025-09-08T19:02:00Z|900|true|2025-09-08",
		"10|S0003|6A|login|2025-09-09T08:00:00Z|(null)|true|2025-09-09",
	}
	if pjxJoin(rows) != pjxJoin(want) {
		t.Errorf("rows:\n%s\nwant\n%s", pjxJoin(rows), pjxJoin(want))
	}
	wantDead := []string{
		`testdata/jsonl/activity.jsonl:3: duration_s: expected float64 (a JSON number), got a string "twenty"`,
		`testdata/jsonl/activity.jsonl:6: at: expected timestamp_us (an ISO 8601 timestamp string like 2025-09-01T08:30:00Z), got a string "05/09/2025 11:00"`,
		`testdata/jsonl/activity.jsonl:7: not JSON: unexpected end of JSON input at byte 75`,
		`testdata/jsonl/activity_week2.jsonl.gz:2: student.id: expected "student" to be an object, got a string "S0003"`,
	}
	if got := pjxDeadLetters(t, filepath.Join(dir, "out", "jsonl_dead_letter.csv"), dir); pjxJoin(got) != pjxJoin(wantDead) {
		t.Errorf("dead letters:\n%s\nwant\n%s", pjxJoin(got), pjxJoin(wantDead))
	}
}
