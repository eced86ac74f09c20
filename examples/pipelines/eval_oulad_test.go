package pipelines_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestEvalOULAD runs the OULAD evaluation pipeline on the repository's
// subset: one row per registration, with its final result, and Withdrawn
// or Fail registrations score higher on average than the others.
func TestEvalOULAD(t *testing.T) {
	toml, dir := ewPipeline(t, "eval_oulad.toml", "oulad_due", "oulad_early")
	pipelinetest.Run(t, toml)
	h, rows := readAlerts(t, filepath.Join(dir, "out", "oulad_risk.csv"))
	if len(rows) != 3000 {
		t.Fatalf("%d rows, want one per registration of the subset (3000)", len(rows))
	}
	var sum [2]float64
	var n [2]int
	for _, r := range rows {
		risk, err := strconv.ParseFloat(r[h["risk"]], 64)
		if err != nil || risk < 0 || risk > 1 {
			t.Fatalf("risk %q", r[h["risk"]])
		}
		k := 0
		switch r[h["final_result"]] {
		case "Withdrawn", "Fail":
			k = 1
		case "Pass", "Distinction":
		default:
			t.Fatalf("final_result %q", r[h["final_result"]])
		}
		sum[k] += risk
		n[k]++
	}
	if lo, hi := sum[0]/float64(n[0]), sum[1]/float64(n[1]); hi < lo+0.1 {
		t.Errorf("mean risk %.3f for Withdrawn/Fail, %.3f for Pass/Distinction: want clearly higher", hi, lo)
	}
}
