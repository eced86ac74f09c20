package pipelines_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// pronoteCSV reads a CSV output of pronote.toml.
func pronoteCSV(t *testing.T, name string) [][]string {
	t.Helper()
	return readback.CSV(t, filepath.Join("out", "pronote", name))
}

// TestPronote runs pronote.toml and checks its rows, values and dead
// letters.
func TestPronote(t *testing.T) {
	os.RemoveAll(filepath.Join("out", "pronote"))
	t.Cleanup(func() { os.RemoveAll(filepath.Join("out", "pronote")) })
	sum := pipelinetest.Run(t, "pronote.toml")
	for name, want := range map[string][2]int64{
		"academy_notes": {720, 0}, "academy_absences": {567, 0}, "school_notes": {12, 4}, "school_absences": {5, 3},
	} {
		st, ok := sum.Stage(name)
		if !ok || st.RowsOut != want[0] || st.DeadLettered != want[1] {
			t.Errorf("%s: %d rows, %d dead letters; want %d and %d", name, st.RowsOut, st.DeadLettered, want[0], want[1])
		}
	}

	notes := pronoteCSV(t, "academy_notes.csv")
	if got := strings.Join(notes[0], ","); got != "student_id,last_name,first_name,class,subject,period,date,mark,mark_status,raw_mark,scale,coefficient,comment" {
		t.Errorf("header: %s", got)
	}
	status := map[string]int{}
	for _, r := range notes[1:] {
		status[r[8]]++
		if r[8] != "ok" && r[7] != "" {
			t.Errorf("a %s mark has a value: %v", r[8], r)
		}
	}
	// As examples/data/bundle/oneroster/results.csv: 670 graded, 44 Abs, 4 N.Not, 2 Disp.
	if want := map[string]int{"ok": 670, "absent": 44, "not_graded": 4, "exempt": 2}; !maps.Equal(status, want) {
		t.Errorf("mark statuses %v, want %v", status, want)
	}
	for _, want := range [][]string{
		{"S0001", "Michel", "Mathéo", "6eA", "MATHÉMATIQUES", "Trimestre 1", "2025-11-23", "16.5", "ok", "16.5", "20", "1", ""},
		{"S0003", "Da Silva", "Mohamed", "6eA", "PHYSIQUE-CHIMIE", "Trimestre 2", "2026-03-08", "8.3", "ok", "16.6", "40", "1", ""},
		{"S0005", "Fournier", "Louise", "6eA", "ANGLAIS LV1", "Trimestre 1", "2025-11-23", "13.1", "ok", "6.55", "10", "1", ""},
		{"S0002", "François", "Louise", "6eA", "ANGLAIS LV1", "Trimestre 3", "2026-06-26", "", "absent", "", "20", "1", ""},
	} {
		if !slices.ContainsFunc(notes, func(r []string) bool { return slices.Equal(r, want) }) {
			t.Errorf("no row %q in academy_notes.csv", want)
		}
	}

	school := pronoteCSV(t, "school_notes.csv")
	if got := strings.Join(school[1], "|"); got != "S9|Œuvray|Chloé|2ndeA|MATHÉMATIQUES|T1|2025-10-01|16.5|ok|8.25|10|1|Bon travail, « soigné »" {
		t.Errorf("first school mark (UTF-8 file, other headers, /10): %s", got)
	}
	abs := pronoteCSV(t, "school_absences.csv")
	if got := strings.Join(abs[3], "|"); got != "S2|Lefèvre|Noé|3eB|2025-10-08|AM|false|Non justifié|2025-10-07 22:00:00Z" {
		t.Errorf("a whole-day absence, AM half (justified from the reason, Paris midnight in UTC): %s", got)
	}

	dl := pronoteCSV(t, "dead_letter.csv")
	var got []string
	for _, r := range dl[1:] {
		wd, _ := os.Getwd()
		origin, _ := filepath.Rel(wd, r[1])
		got = append(got, strings.Join([]string{r[0], filepath.ToSlash(origin), r[2], r[3], r[4]}, "|"))
	}
	want := []string{
		`school_absences|testdata/pronote/absences_variants.csv|5|half|expected a half-day (Matin, Après-midi or Journée), got "Soirée" (column 6, "Demi-journée")`,
		`school_absences|testdata/pronote/absences_variants.csv|6|justified|expected Oui or Non, got "Peut-être" (column 7, "Justifiée")`,
		`school_absences|testdata/pronote/absences_variants.csv|7|student_id|empty student id, expected the student's identifier (column 1, "Identifiant")`,
		`school_notes|testdata/pronote/notes_variants.csv|10|date|expected a date dd/mm/yyyy, got "31/02/2025" (column 7, "Date")`,
		`school_notes|testdata/pronote/notes_variants.csv|11|mark|mark 24 is above its scale /20 (column 8, "Note")`,
		`school_notes|testdata/pronote/notes_variants.csv|12|mark|expected a number with a decimal comma ("12,5"), a mark on its scale ("15/40"), or Abs, Disp, N.Not, Inap, NR, got "douze" (column 8, "Note")`,
		`school_notes|testdata/pronote/notes_variants.csv|13||expected 10 fields as in the header, got 6`,
	}
	// Stages run concurrently: order by stage, each stage's in file order.
	slices.SortStableFunc(got, func(a, b string) int {
		return strings.Compare(strings.SplitN(a, "|", 2)[0], strings.SplitN(b, "|", 2)[0])
	})
	if !slices.Equal(got, want) {
		t.Errorf("dead letters:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
