package pipelines_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/synth/academy"
)

// TestTermXAPI runs term_xapi.toml on the xAPI statements of the example
// academy (generated again: examples/data holds only its CSV tables) and
// checks that it gives the alerts term.toml gives from activity.csv.
func TestTermXAPI(t *testing.T) {
	gen := t.TempDir()
	_, err := academy.Generate(context.Background(), academy.Options{Dir: gen, Students: 600, Schools: 3, Seed: 2025,
		Year: 2025, Zone: "C", Formats: []string{academy.FormatXAPI}, Profile: academy.DefaultProfile()})
	if err != nil {
		t.Fatal(err)
	}
	toml, dir := ewPipeline(t, "term_xapi.toml", "early_warning", "xapi_day")
	src, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	// The tables from examples/data, the statements from the generator.
	examples, _ := filepath.Abs("..")
	s := strings.ReplaceAll(string(src), filepath.ToSlash(examples)+"/../academy/xapi/", filepath.ToSlash(gen)+"/xapi/")
	s = strings.ReplaceAll(s, filepath.ToSlash(examples)+"/../academy/", filepath.ToSlash(examples)+"/data/")
	if err := os.WriteFile(toml, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, toml)
	h, rows := readAlerts(t, filepath.Join(dir, "out", "term_xapi_alerts.csv"))

	toml2, dir2 := ewPipeline(t, "term.toml", "early_warning")
	pipelinetest.Run(t, toml2)
	h2, rows2 := readAlerts(t, filepath.Join(dir2, "out", "term_alerts.csv"))
	if len(rows) != 600 || len(rows2) != 600 {
		t.Fatalf("%d and %d rows, want 600", len(rows), len(rows2))
	}
	alerts := 0
	for i := range rows {
		for _, c := range []string{"student_id", "alert_history", "risk", "reason"} {
			if rows[i][h[c]] != rows2[i][h2[c]] {
				t.Errorf("%s: %s %q from xAPI, %q from activity.csv", rows[i][h["student_id"]], c, rows[i][h[c]], rows2[i][h2[c]])
			}
		}
		if rows[i][h["alert_history"]] != "" {
			alerts++
		}
	}
	if alerts == 0 {
		t.Error("no alerts")
	}
}
