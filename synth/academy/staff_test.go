package academy

import (
	"bytes"
	"encoding/csv"
	"testing"
)

func TestTeacherAbsences(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 3000, 0, FormatCSV, FormatStaff)
	tree := readTree(t, dir)
	rows, err := csv.NewReader(bytes.NewReader(tree["teacher_absences.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	cal, err := csv.NewReader(bytes.NewReader(tree["calendar.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	school := map[string]bool{}
	for _, c := range cal[1:] {
		if c[2] != "0" {
			school[c[0]] = true
		}
	}
	replacedSeen := map[string]bool{}
	var hours, lost int
	for _, r := range rows[1:] {
		date, spell, replaced, unrep := r[0], r[4], r[6] == "true", r[7]
		if !school[date] {
			t.Errorf("absence on %s, not a school day", date)
		}
		if replacedSeen[spell] && !replaced {
			t.Errorf("spell %s unreplaced again on %s after a replacement began", spell, date)
		}
		replacedSeen[spell] = replacedSeen[spell] || replaced
		if (replaced && unrep != "0") || (!replaced && unrep != r[5]) {
			t.Errorf("row %v: unreplaced_hours does not follow replaced", r)
		}
		hours += 4
		if !replaced {
			lost += 4
		}
	}
	if n := len(rows) - 1; n < 500 {
		t.Fatalf("%d days of absence for %d schools' teachers over a year", n, len(school))
	}
	if share := float64(lost) / float64(hours); share < 0.5 || share > 0.95 {
		t.Errorf("%.2f of absent hours unreplaced, want most but not all", share)
	}
}
