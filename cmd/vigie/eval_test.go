package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, name, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalCommand: vigie eval prints package evaluation's figures; the
// counting itself is tested there.
func TestEvalCommand(t *testing.T) {
	truth := writeFile(t, "gt.csv", `student_id,school_id,track,drifts,drift_start,drift_end,signals,outcome,outcome_date,noise
S1,X,lp,true,2025-11-03,2026-01-20,absences,dropout,2026-01-20,
S2,X,lp,false,,,,stays,,
`)
	alerts := writeFile(t, "alerts.csv", "student_id,first_alert,alert_history\nS1,2025-12-01,a:ABS_TREND:2025-12-01:\nS2,,\n")
	var out, errb bytes.Buffer
	if code := run([]string{"eval", "--alerts", alerts, "--truth", truth, "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if m["median_lead_days"] != 50.0 || m["recall"] != 1.0 || m["precision"] != 1.0 {
		t.Errorf("json: %s", out.String())
	}
	out.Reset()
	if code := run([]string{"eval", "--alerts", alerts}, &out, &errb); code != exitUsage {
		t.Errorf("--alerts without --truth: exit %d", code)
	}
	scores := writeFile(t, "s.csv", "risk,G3\n0.9,5\n0.1,12\n")
	out.Reset()
	if code := run([]string{"eval", "--scores", scores, "--label", "G3<10", "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("binary: exit %d: %s", code, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m["roc_auc"] != 1.0 || m["tp"] != 1.0 {
		t.Errorf("binary json (%v): %s", err, out.String())
	}
}
