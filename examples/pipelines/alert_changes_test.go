package pipelines_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// changeRows reads out/alert_changes.csv: its header and rows (none when
// the run announced nothing).
func changeRows(t *testing.T, path string) (map[string]int, [][]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	rows := readback.CSV(t, path)
	return readback.Columns(rows[0]), rows[1:]
}

// TestAlertChanges runs alert_changes.toml over the example academy: the
// first run announces, as opened, exactly the open alerts of the term
// job's output (student, id and code); the second, on the same data,
// announces nothing; a third with raise_at out of reach clears them all.
func TestAlertChanges(t *testing.T) {
	term, termDir := ewPipeline(t, "term.toml", "early_warning")
	pipelinetest.Run(t, term)
	th, trows := readAlerts(t, filepath.Join(termDir, "out", "term_alerts.csv"))
	var want []string
	for _, r := range trows {
		for a := range strings.SplitSeq(r[th["open_alerts"]], ";") {
			if a == "" {
				continue
			}
			p := strings.Split(a, ":")
			want = append(want, r[th["student_id"]]+" "+p[0]+" "+p[1])
		}
	}
	if len(want) == 0 {
		t.Fatal("the term job has no open alert: nothing to compare")
	}

	toml, dir := ewPipeline(t, "alert_changes.toml", "early_warning")
	out := filepath.Join(dir, "out", "alert_changes.csv")
	pipelinetest.Run(t, toml)
	h, rows := changeRows(t, out)
	for _, c := range []string{"alert_id", "change", "student_id", "code", "reason_codes", "reason", "risk", "alert_level", "rule_name", "rule_version", "rule_sha256", "class_id"} {
		if _, ok := h[c]; !ok {
			t.Fatalf("no column %q in %v", c, h)
		}
	}
	var got []string
	for _, r := range rows {
		if r[h["change"]] != "opened" {
			t.Errorf("first run: change %q, want only opened: %q", r[h["change"]], r)
		}
		if r[h["rule_name"]] != "early_warning" || len(r[h["rule_sha256"]]) != 64 {
			t.Errorf("no rule provenance: %q", r)
		}
		got = append(got, r[h["student_id"]]+" "+r[h["alert_id"]]+" "+r[h["code"]])
	}
	t.Logf("first run: %d alerts opened (the term job lists %d open alerts)", len(got), len(want))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("first run: %d opened, want the %d open alerts of the term job\n got %q\nwant %q", len(got), len(want), got, want)
	}

	pipelinetest.Run(t, toml)
	if _, rows := changeRows(t, out); len(rows) != 0 {
		t.Errorf("identical rerun: %d changes, want none: %q", len(rows), rows)
	}

	// A run where no risk reaches raise_at any more: every announced alert
	// is cleared, with its id.
	b, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	high := strings.Replace(string(b), "raise_at = 0.65", "raise_at = 0.99", 1)
	if high == string(b) {
		t.Fatal("alert_changes.toml has no raise_at = 0.65")
	}
	if err := os.WriteFile(toml, []byte(high), 0o644); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, toml)
	h, rows = changeRows(t, out)
	var cleared []string
	for _, r := range rows {
		if r[h["change"]] != "cleared" {
			t.Errorf("raise_at 0.99: change %q, want only cleared: %q", r[h["change"]], r)
		}
		cleared = append(cleared, r[h["student_id"]]+" "+r[h["alert_id"]]+" "+r[h["code"]])
	}
	slices.Sort(cleared)
	if !slices.Equal(cleared, want) {
		t.Errorf("raise_at 0.99: cleared %q, want every alert opened before %q", cleared, want)
	}
}
