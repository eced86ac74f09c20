package pipelines_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// TestXAPIFiles reads the bundle's xAPI JSON Lines and the specification's
// examples (xapi.toml) and checks the flattened rows and the dead letter.
func TestXAPIFiles(t *testing.T) {
	toml := sandbox(t, "xapi.toml", "pipelines/testdata/xapi", "data/bundle/xapi")
	dir := filepath.Dir(toml)
	sum := pipelinetest.Run(t, toml)
	ent, _ := sum.Stage("ent_activity")
	spec, _ := sum.Stage("spec_examples")
	bundle, err := os.ReadFile(filepath.Join(dir, "..", "data", "bundle", "xapi", "statements.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := int64(bytes.Count(bundle, []byte("\n"))); ent.RowsOut != lines || ent.DeadLettered != 0 {
		t.Errorf("ent_activity: %d rows, %d dead letters; want every line of the bundle, 0", ent.RowsOut, ent.DeadLettered)
	}
	if spec.RowsOut != 2 || spec.DeadLettered != 1 {
		t.Errorf("spec_examples: %d rows, %d dead letters; want 2 and 1", spec.RowsOut, spec.DeadLettered)
	}

	names, rows := readParquet(t, filepath.Join(dir, "out", "xapi_ent_activity.parquet"))
	if len(names) != 20 || names[8] != "timestamp:timestamp[us, tz=UTC]" || names[16] != "result_duration_us:int64" {
		t.Errorf("schema: %v", names)
	}
	first := strings.Split(rows[0], "|")
	want := []string{"7d5acc92-ae89-4839-8973-615707827b9f", "S0001", "https://ent.vigie.example", "(null)",
		"http://adlnet.gov/expapi/verbs/experienced", "a consulté", "https://ent.vigie.example/activites/histoire_geo/6e/ressource-43",
		"Activity", "2025-09-04T18:31:55Z"}
	if strings.Join(first[:9], "|") != strings.Join(want, "|") || first[18] != "912ca567-7a52-4300-aa2a-896da9afd448" || first[19] != "ENT Vigie" {
		t.Errorf("first statement: %s", rows[0])
	}
	scored := 0
	for _, r := range rows {
		if f := strings.Split(r, "|"); f[10] != "(null)" {
			scored++
		}
	}
	if scored == 0 {
		t.Error("no statement of the bundle has a scaled score")
	}

	recs := readback.CSV(t, filepath.Join(dir, "out", "xapi_spec_examples.csv"))
	if len(recs) != 3 || recs[0][20] != "statement" {
		t.Fatalf("spec examples: %d records, header %v", len(recs), recs[0])
	}
	long := recs[2]
	for col, want := range map[int]string{0: "6690e6c9-3ef0-4ed3-8b37-7f3964730bee", 1: "mailto:teampb@example.com", 3: "Team PB",
		5: "attended", 14: "true", 15: "true", 16: "3600000000", 17: "PT1H0M0S", 18: "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
		19: "Example virtual meeting software"} {
		if long[col] != want {
			t.Errorf("long example, column %s = %q, want %q", recs[0][col], long[col], want)
		}
	}
	dead := pjxDeadLetters(t, filepath.Join(dir, "out", "xapi_dead_letter.csv"), dir)
	wantDead := `testdata/xapi/spec_examples.json:3: id: statement 3 of the array: expected a UUID, got "b0e5c1d2-0000-4000-8000-00000000000x"`
	if pjxJoin(dead) != wantDead {
		t.Errorf("dead letters:\n%s\nwant\n%s", pjxJoin(dead), wantDead)
	}
}
