package academy

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"testing"
)

func TestEvaluationsLeaveOtherFilesUnchanged(t *testing.T) {
	without := slices.DeleteFunc(slices.Clone(AllFormats), func(f string) bool { return f == FormatEvaluations })
	a, b := t.TempDir(), t.TempDir()
	gen(t, a, 400, 2, without...)
	gen(t, b, 400, 2)
	ta, tb := readTree(t, a), readTree(t, b)
	if _, ok := tb["evaluations.csv"]; !ok || len(tb) != len(ta)+1 {
		t.Fatalf("%d files without evaluations, %d with", len(ta), len(tb))
	}
	for name, body := range ta {
		if !bytes.Equal(body, tb[name]) {
			t.Errorf("%s differs when evaluations are generated too", name)
		}
	}
}

func TestEvaluations(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 4000, 0, FormatCSV, FormatEvaluations)
	tree := readTree(t, dir)
	rows, err := csv.NewReader(bytes.NewReader(tree["evaluations.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	students, err := csv.NewReader(bytes.NewReader(tree["students.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	level := map[string]string{}
	eligible := 0
	for _, s := range students[1:] {
		level[s[0]] = s[3]
		if s[3] == "6e" || s[3] == "4e" {
			eligible++
		}
	}
	groups := map[string]int{}
	classDay := map[string]string{} // class and domain -> day entered
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		id, class, lvl, dom, group, at := r[0], r[3], r[4], r[5], r[7], r[8]
		if level[id] != lvl || (lvl != "6e" && lvl != "4e") {
			t.Fatalf("row %v: student is in %s", r, level[id])
		}
		if seen[id+dom] {
			t.Fatalf("two rows for %s in %s", id, dom)
		}
		seen[id+dom] = true
		if r[2] != r[1][:3] {
			t.Errorf("row %v: departement is not the school's", r)
		}
		var score float64
		if _, err := fmtSscan(r[6], &score); err != nil || evaluationGroup(score) != group {
			t.Errorf("row %v: group %s for score %s", r, group, r[6])
		}
		groups[group]++
		day := at[:10]
		if d, ok := classDay[class+dom]; ok && d != day {
			t.Errorf("class %s entered %s on %s and %s: a class enters a domain in one sitting", class, dom, d, day)
		}
		classDay[class+dom] = day
		if day < "2025-09-15" || day > "2025-10-10" {
			t.Errorf("row %v entered outside the evaluation weeks", r)
		}
	}
	n := len(rows) - 1
	if n < eligible*2*90/100 || n > eligible*2 {
		t.Errorf("%d rows for %d students of 6e and 4e in two domains", n, eligible)
	}
	for g, lo := range map[string]float64{GroupBesoin: 0.03, GroupFragile: 0.12, GroupSatisfaisant: 0.55} {
		if share := float64(groups[g]) / float64(n); share < lo {
			t.Errorf("group %s: %.3f of results, want at least %.2f", g, share, lo)
		}
	}
	t.Logf("%d results, groups %v, %d class sittings", n, groups, len(classDay))
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }
