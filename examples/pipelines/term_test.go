package pipelines_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// ewPipeline writes a copy of the pipeline file name in a temp dir, with
// the named rules of examples/rules built there and every other "../"
// path made absolute, and returns its path and folder.
func ewPipeline(t *testing.T, name string, rules ...string) (toml, dir string) {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, r := range rules {
		wasm := hosttest.BuildGoRule(t, filepath.Join("..", "rules", r))
		old := `"../rules/` + r + `/` + r + `.wasm"`
		if !strings.Contains(s, old) {
			t.Fatalf("%s has no module %s", name, old)
		}
		s = strings.ReplaceAll(s, old, `"`+filepath.ToSlash(wasm)+`"`)
	}
	s = strings.ReplaceAll(s, `"../`, `"`+filepath.ToSlash(examples)+`/`)
	dir = t.TempDir()
	toml = filepath.Join(dir, name)
	if err := os.WriteFile(toml, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return toml, dir
}

func readAlerts(t *testing.T, path string) (map[string]int, [][]string) {
	t.Helper()
	rows := readback.CSV(t, path)
	h := readback.Columns(rows[0])
	return h, rows[1:]
}

// TestTerm runs the default early-warning pipeline over the example
// academy: every student gets a row, alerts come out with reasons, and a
// second run on the same data gives the same alert ids.
func TestTerm(t *testing.T) {
	toml, dir := ewPipeline(t, "term.toml", "early_warning")
	pipelinetest.Run(t, toml)
	h, rows := readAlerts(t, filepath.Join(dir, "out", "term_alerts.csv"))
	if len(rows) != 600 {
		t.Fatalf("%d rows, want one per student of examples/data (600)", len(rows))
	}
	for _, c := range []string{"student_id", "risk", "alert_level", "reason_codes", "reason", "open_alerts", "first_alert", "alert_history", "class_id"} {
		if _, ok := h[c]; !ok {
			t.Fatalf("no column %q", c)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "term_alerts.parquet")); err != nil {
		t.Fatal(err)
	}
	alerted, withReason := 0, 0
	for _, r := range rows {
		if r[h["first_alert"]] == "" {
			if r[h["alert_history"]] != "" {
				t.Errorf("%s: alert history %q but no first alert", r[h["student_id"]], r[h["alert_history"]])
			}
			continue
		}
		alerted++
		if r[h["alert_level"]] == "alert" && (r[h["reason"]] == "" || r[h["reason_codes"]] == "") {
			t.Errorf("%s: level alert without a reason: %q", r[h["student_id"]], r)
		}
		if r[h["reason"]] != "" {
			withReason++
		}
		for _, a := range strings.Split(r[h["open_alerts"]], ";") {
			if a != "" && len(strings.Split(a, ":")) != 3 {
				t.Errorf("%s: open alert %q is not id:CODE:date", r[h["student_id"]], a)
			}
		}
	}
	if alerted == 0 || withReason == 0 || alerted > len(rows)/2 {
		t.Fatalf("%d students alerted (%d with a reason today) of %d: want some, not most", alerted, withReason, len(rows))
	}

	// A rerun on the same data: the same alert ids.
	pipelinetest.Run(t, toml)
	h2, rows2 := readAlerts(t, filepath.Join(dir, "out", "term_alerts.csv"))
	if len(rows2) != len(rows) {
		t.Fatalf("rerun: %d rows, want %d", len(rows2), len(rows))
	}
	for i := range rows {
		a, b := rows[i][h["alert_history"]], rows2[i][h2["alert_history"]]
		if a != b {
			t.Errorf("rerun: %s: alert history %q, then %q", rows[i][h["student_id"]], a, b)
		}
	}
}

// TestRootPipelineIsTerm checks that the repository's default pipeline
// (../../pipeline.toml, what `vigie run` runs with no FILE) is the job
// TestTerm runs: term.toml with its paths relative to the repository root,
// its name and its outputs renamed, the same stages, options and params.
func TestRootPipelineIsTerm(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "..", "pipeline.toml"))
	if err != nil {
		t.Fatal(err)
	}
	term, err := os.ReadFile("term.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.NewReplacer(
		`name = "early_warning"`+"\n"+`dead_letter = "out/dead_letter.csv"`,
		`name = "term"`+"\n"+`dead_letter = "out/term.dead_letter.csv"`,
		`"examples/`, `"../`,
		`"out/alerts.`, `"out/term_alerts.`,
	).Replace(string(root))
	if a, b := tomlBody(got), tomlBody(string(term)); a != b {
		t.Errorf("pipeline.toml is not term.toml with root paths:\n--- pipeline.toml (paths made relative to examples/pipelines)\n%s\n--- term.toml\n%s", a, b)
	}
}

// tomlBody is a pipeline file without its comments and blank lines.
func tomlBody(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
