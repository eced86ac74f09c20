package pipelines_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/synth/academy"
)

// change is one line of out/live_alert_changes.jsonl.
type change struct {
	AlertID   string  `json:"alert_id"`
	Change    string  `json:"change"`
	Student   string  `json:"student_id"`
	Code      string  `json:"code"`
	Risk      float64 `json:"risk"`
	EventTime string  `json:"event_time"`
	Seq       int64   `json:"arrival_seq"`
	ClassID   string  `json:"class_id"`
	RuleName  string  `json:"rule_name"`
}

func readChanges(t *testing.T, path string) []change {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []change
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c change
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLive runs live.toml at speed "max" over a small generated academy:
// alert changes come in event-time order, each alert opens before it is
// updated or cleared, and the alerts left open at the end are exactly the
// open alerts of the batch job (term_xapi.toml, with as_of = "latest")
// over the same academy, same ids. A rerun resumes after the last
// checkpoint (nothing new); a rerun from the start, with the state kept,
// writes the same changes again.
func TestLive(t *testing.T) {
	gen := t.TempDir()
	if _, err := academy.Generate(context.Background(), academy.Options{Dir: gen, Students: 300, Seed: 2025, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatCSV, academy.FormatXAPI}, Profile: academy.DefaultProfile()}); err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Abs("..")
	toAcademy := func(t *testing.T, toml string) {
		t.Helper()
		b, err := os.ReadFile(toml)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), filepath.ToSlash(examples)+"/../academy", filepath.ToSlash(gen))
		s = strings.Replace(s, `speed = "24h"`, `speed = "max"`, 1)
		if err := os.WriteFile(toml, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	toml, dir := ewPipeline(t, "live.toml", "early_warning")
	toAcademy(t, toml)
	pipelinetest.Run(t, toml)
	out := filepath.Join(dir, "out", "live_alert_changes.jsonl")
	changes := readChanges(t, out)
	kinds := map[string]int{}
	state := map[string]string{} // alert id -> last change
	open := map[string]bool{}
	reopened := 0
	for i, c := range changes {
		kinds[c.Change]++
		if c.AlertID == "" || c.Student == "" || c.ClassID == "" || c.EventTime == "" || c.RuleName != "early_warning" {
			t.Fatalf("change %d lacks a column: %+v", i, c)
		}
		if i > 0 && (c.EventTime < changes[i-1].EventTime || c.Seq < changes[i-1].Seq) {
			t.Errorf("change %d at %s (arrival %d) after one at %s (arrival %d)", i, c.EventTime, c.Seq, changes[i-1].EventTime, changes[i-1].Seq)
		}
		switch last := state[c.AlertID]; {
		case last == "" && c.Change != "opened":
			t.Errorf("alert %s: first change %q", c.AlertID, c.Change)
		case last == "cleared" && c.Change == "opened":
			// Each event rescores the student's whole timeline: evidence
			// that arrives later (a correction, a month's absences read
			// against the student's usual) can reopen an alert with the
			// same opening day, hence the same id. Announced again,
			// counted, never silent.
			reopened++
			t.Logf("alert %s (%s) opened again after it cleared, at %s", c.AlertID, c.Code, c.EventTime)
		case last == "cleared":
			t.Errorf("alert %s: %q after cleared", c.AlertID, c.Change)
		case last != "" && c.Change == "opened":
			t.Errorf("alert %s opened twice", c.AlertID)
		}
		state[c.AlertID] = c.Change
		open[c.Student+" "+c.AlertID+" "+c.Code] = c.Change != "cleared"
	}
	t.Logf("%d changes: %v, %d reopened", len(changes), kinds, reopened)
	if kinds["opened"] == 0 || kinds["cleared"] == 0 {
		t.Fatalf("changes %v: want alerts opened and cleared over the year", kinds)
	}
	var streamOpen []string
	for k, o := range open {
		if o {
			streamOpen = append(streamOpen, k)
		}
	}
	slices.Sort(streamOpen)

	// The batch job over the same academy, as of each student's last day.
	batch, batchDir := ewPipeline(t, "term_xapi.toml", "early_warning", "xapi_day")
	toAcademy(t, batch)
	b, _ := os.ReadFile(batch)
	s := strings.Replace(string(b), "[rule.params]\nraise_at = 0.65", "[rule.params]\nas_of = \"latest\"\nraise_at = 0.65", 1)
	if s == string(b) {
		t.Fatal("term_xapi.toml: no [rule.params] raise_at = 0.65 to add as_of to")
	}
	if err := os.WriteFile(batch, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, batch)
	h, rows := readAlerts(t, filepath.Join(batchDir, "out", "term_xapi_alerts.csv"))
	var batchOpen []string
	for _, r := range rows {
		for a := range strings.SplitSeq(r[h["open_alerts"]], ";") {
			if a != "" {
				p := strings.Split(a, ":")
				batchOpen = append(batchOpen, r[h["student_id"]]+" "+p[0]+" "+p[1])
			}
		}
	}
	slices.Sort(batchOpen)
	if !slices.Equal(streamOpen, batchOpen) {
		t.Errorf("alerts open at the end of the live run differ from the batch job's:\n live  %q\n batch %q", streamOpen, batchOpen)
	}

	// A rerun with the state kept resumes after the last checkpoint, which
	// covers the whole input: nothing is replayed, nothing announced
	// again, and the file goes on from the last run's (it is unchanged).
	pipelinetest.Run(t, toml)
	if again := readChanges(t, out); !slices.Equal(again, changes) {
		t.Errorf("rerun after the last checkpoint: the file holds %d changes, want the first run's %d unchanged (resumed at the end of the input)", len(again), len(changes))
	}

	// A rerun from the start (checkpoint removed, state kept): the file
	// starts over, and the timelines and announcements are versioned by
	// arrival, so replaying every row gives the same changes again.
	if err := os.Remove(filepath.Join(dir, "out", "live.state", "checkpoint.json")); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, toml)
	again := readChanges(t, out)
	if !slices.Equal(again, changes) {
		for i := range min(len(again), len(changes)) {
			if again[i] != changes[i] {
				t.Fatalf("rerun: change %d is %+v, first run %+v (%d changes, first run %d)", i, again[i], changes[i], len(again), len(changes))
			}
		}
		t.Errorf("rerun: %d changes, first run %d", len(again), len(changes))
	}
}
