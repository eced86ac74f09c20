package pipelines_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// TestCSVFrenchExport reads two terms of marks exported the French way
// (see csv_french_export.toml) and checks every value and dead letter.
func TestCSVFrenchExport(t *testing.T) {
	toml := sandbox(t, "csv_french_export.toml", "pipelines/testdata/csv")
	dir := filepath.Dir(toml)
	sum := pipelinetest.Run(t, toml)
	st, _ := sum.Stage("marks")
	if st.RowsOut != 4 || st.DeadLettered != 3 {
		t.Errorf("marks: %d rows out, %d dead-lettered; want 4 and 3", st.RowsOut, st.DeadLettered)
	}

	tb := csvxReadParquet(t, filepath.Join(dir, "out", "marks.parquet"))
	for col, typ := range map[string]string{"student": "utf8", "class": "utf8", "subject": "utf8",
		"mark": "float64", "date": "date32", "entered_at": "timestamp[us, tz=UTC]"} {
		if got := tb.typeOf(t, col); got != typ {
			t.Errorf("column %s is %s, want %s", col, got, typ)
		}
	}
	want := map[string][]string{
		// Windows-1252 (œ, é) and UTF-8 with a BOM both arrive as UTF-8.
		"student": {"Zoé Lœuvre", "Noël Dupont", "Anaïs Martin", "Zoé Lœuvre"},
		"subject": {"Français", "Mathématiques", "Histoire", "Français"},
		// 12,5 is 12.5; an empty mark is null.
		"mark": {"12.5", "8", "∅", "14"},
		"date": {"2025-10-15", "2025-10-16", "2025-10-17", "2026-01-12"},
		// Paris time: UTC+2 in October, UTC+1 in January.
		"entered_at": {"2025-10-15T15:45:00Z", "2025-10-16T06:05:00Z", "2025-10-17T10:00:00Z", "2026-01-12T16:45:00Z"},
	}
	for col, w := range want {
		if got := tb.cols[col]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %q, want %q", col, got, w)
		}
	}

	// Each dead letter names its file, line and column, and says what was
	// expected.
	recs := readback.CSV(t, filepath.Join(dir, "out", "dead_letter.csv"))
	var got []string
	for _, r := range recs[1:] { // stage, origin, line, column, reason, raw
		got = append(got, strings.Join([]string{filepath.Base(r[1]), r[2], r[3], r[4]}, "|"))
	}
	wantDead := []string{
		`notes_T1.csv|5|mark|expected float64, got "quinze"`,
		`notes_T2.csv.gz|3|date|expected date32, got "32/01/2026"`,
		`notes_T2.csv.gz|4||expected 6 fields, got 4`,
	}
	if !reflect.DeepEqual(got, wantDead) {
		t.Errorf("dead letters:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantDead, "\n"))
	}
}
