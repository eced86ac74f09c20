package pipelines_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestEvalUCI runs the UCI evaluation pipeline: every student gets a risk
// in [0,1], and at the default threshold it predicts G3 < 10 with an
// accuracy near the published 90 % (0.905 measured, see docs/indicators.md).
func TestEvalUCI(t *testing.T) {
	toml, dir := ewPipeline(t, "eval_uci.toml", "uci_risk")
	pipelinetest.Run(t, toml)
	h, rows := readAlerts(t, filepath.Join(dir, "out", "uci_risk.csv"))
	if len(rows) != 395+649 {
		t.Fatalf("%d rows, want 1044", len(rows))
	}
	right := 0
	for _, r := range rows {
		risk, err := strconv.ParseFloat(r[h["risk"]], 64)
		if err != nil || risk < 0 || risk > 1 {
			t.Fatalf("risk %q", r[h["risk"]])
		}
		g3, err := strconv.Atoi(r[h["G3"]])
		if err != nil {
			t.Fatal(err)
		}
		if (risk >= 0.5) == (g3 < 10) {
			right++
		}
		if risk >= 0.5 && r[h["risk_reason"]] == "" {
			t.Errorf("risk %v without a reason", risk)
		}
	}
	if acc := float64(right) / float64(len(rows)); acc < 0.88 {
		t.Errorf("accuracy %.3f, want about 0.9", acc)
	}
}
