package academy

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strconv"
	"testing"
)

func readTable(t *testing.T, b []byte) (map[string]int, [][]string) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]int{}
	for i, c := range rows[0] {
		h[c] = i
	}
	return h, rows[1:]
}

func TestPrimaryLeavesOtherFilesUnchanged(t *testing.T) {
	without := slices.DeleteFunc(slices.Clone(AllFormats), func(f string) bool { return f == FormatPrimary })
	a, b := t.TempDir(), t.TempDir()
	gen(t, a, 400, 2, without...)
	gen(t, b, 400, 2)
	ta, tb := readTree(t, a), readTree(t, b)
	if len(tb) != len(ta)+5 {
		t.Fatalf("%d files without primary, %d with", len(ta), len(tb))
	}
	for name, body := range ta {
		if !bytes.Equal(body, tb[name]) {
			t.Errorf("%s differs when primary schools are generated too", name)
		}
	}
}

// TestPrimary checks the écoles, enrolments and evaluations against each
// other and the ground truth: every école's movements add up to the
// truth's final enrolment, a pupil's results are entered while they are
// enrolled, a class enters a domain in one sitting, and écoles sit in
// circonscriptions of their département.
func TestPrimary(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 6000, 0, FormatPrimary)
	tree := readTree(t, dir)
	if _, ok := tree["calendar.csv"]; !ok {
		t.Errorf("no calendar.csv for the school weeks of the primary pipelines")
	}
	sh, schools := readTable(t, tree["primary_schools.csv"])
	th, truth := readTable(t, tree["primary_truth.csv"])
	eh, enrol := readTable(t, tree["enrolments.csv"])
	vh, evals := readTable(t, tree["primary_evaluations.csv"])
	ph, proj := readTable(t, tree["enrolment_projection.csv"])
	if len(schools) != primarySchoolCount(6000) || len(truth) != len(schools) || len(proj) != len(schools) {
		t.Fatalf("%d écoles, %d truth rows, %d projections", len(schools), len(truth), len(proj))
	}
	circs := map[string]int{}
	for _, s := range schools {
		if c := s[sh["circonscription"]]; c[:3] != s[sh["departement"]] || s[sh["school_id"]][1:3] != s[sh["departement"]][1:] {
			t.Errorf("école %v: circonscription or id outside its département", s)
		}
		circs[s[sh["circonscription"]]]++
	}
	if len(circs) < 8 {
		t.Errorf("%d circonscriptions, want several per département", len(circs))
	}
	// Enrolment: per école, the deltas add up to the truth.
	type movement struct{ rentree, arr, dep int }
	mv := map[string]*movement{}
	enrolled := map[string][2]string{} // pupil -> first day, day of departure ("" if stays)
	lastDate := ""
	for _, r := range enrol {
		if r[eh["date"]] < lastDate {
			t.Fatalf("enrolments out of date order at %v", r)
		}
		lastDate = r[eh["date"]]
		m := mv[r[eh["school_id"]]]
		if m == nil {
			m = &movement{}
			mv[r[eh["school_id"]]] = m
		}
		id := r[eh["student_id"]]
		e := enrolled[id]
		switch r[eh["movement"]] {
		case "rentree":
			m.rentree++
			e[0] = r[eh["date"]]
		case "arrival":
			m.arr++
			e[0] = r[eh["date"]]
		case "departure":
			m.dep++
			e[1] = r[eh["date"]]
		}
		enrolled[id] = e
	}
	shifted := 0
	for _, r := range truth {
		m := mv[r[th["school_id"]]]
		want := []string{strconv.Itoa(m.rentree), strconv.Itoa(m.arr), strconv.Itoa(m.dep), strconv.Itoa(m.rentree + m.arr - m.dep)}
		got := []string{r[th["rentree"]], r[th["arrivals"]], r[th["departures"]], r[th["final"]]}
		if !slices.Equal(got, want) {
			t.Errorf("école %s: truth %v, movements give %v", r[th["school_id"]], got, want)
		}
		proj, _ := strconv.Atoi(r[th["projected"]])
		gap := float64(m.rentree-proj) / float64(proj)
		if r[th["projection_missed"]] != "" {
			shifted++
			if gap < 0.1 && gap > -0.1 {
				t.Errorf("école %s: projection missed %q but the rentrée is within 10 %% (%.2f)", r[th["school_id"]], r[th["projection_missed"]], gap)
			}
		} else if gap > 0.15 || gap < -0.15 {
			t.Errorf("école %s: rentrée %d against %d projected with no event", r[th["school_id"]], m.rentree, proj)
		}
	}
	for i, r := range proj {
		if r[ph["school_id"]] != truth[i][th["school_id"]] || r[ph["projected"]] != truth[i][th["projected"]] {
			t.Errorf("projection %v, truth %v", r, truth[i])
		}
	}
	if shifted == 0 {
		t.Errorf("no école's projection missed an event")
	}
	// Evaluations.
	classDay := map[string]string{}
	groups := map[string]int{}
	for _, r := range evals {
		id, at := r[vh["student_id"]], r[vh["entered_at"]]
		e, ok := enrolled[id]
		if !ok || at[:10] < e[0] || (e[1] != "" && at[:10] >= e[1]) {
			t.Errorf("result %v for a pupil enrolled on [%s, %s)", r, e[0], e[1])
		}
		if lv := r[vh["level"]]; lv != "CP" && lv != "CE1" {
			t.Errorf("level %s", lv)
		}
		k := r[vh["class_id"]] + r[vh["domain"]]
		if d, ok := classDay[k]; ok && d != at[:10] {
			t.Errorf("class %s entered on %s and %s", k, d, at[:10])
		}
		classDay[k] = at[:10]
		score, err := strconv.ParseFloat(r[vh["score"]], 64)
		if err != nil || evaluationGroup(score) != r[vh["group"]] {
			t.Errorf("row %v: group of %s", r, r[vh["score"]])
		}
		groups[r[vh["group"]]]++
	}
	if len(evals) < len(enrolled) || groups[GroupBesoin] == 0 || groups[GroupFragile] == 0 {
		t.Errorf("%d results for %d pupils, groups %v", len(evals), len(enrolled), groups)
	}
	t.Logf("%d écoles in %d circonscriptions, %d pupils, %d results %v, %d projections missed", len(schools), len(circs), len(enrolled), len(evals), groups, shifted)
}
