package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/engine/privacy"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

const subjectPipeline = `
[pipeline]
name = "subject"
state_dir = "state"

[privacy]
pseudonymise = ["student_id", "corrects"]
key_env = "VIGIE_SUBJECT_KEY"

[[source]]
name = "students"
connector = "csv"
[source.options]
path = "data/students.csv"
columns = { student_id = "utf8", class_id = "utf8" }

[[source]]
name = "absences"
connector = "csv"
[source.options]
path = "data/absences.csv"
columns = { student_id = "utf8", date = "date32", half = "utf8", justified = "bool", corrects = "utf8", recorded_at = "utf8", reason = "utf8" }

[[source]]
name = "grades"
connector = "csv"
[source.options]
path = "data/grades.csv"
columns = { student_id = "utf8", subject = "utf8", period = "utf8", mark = "float64", status = "utf8" }

[[source]]
name = "activity"
connector = "csv"
[source.options]
path = "data/activity.csv"
columns = { student_id = "utf8", date = "date32" }

[[union]]
name = "timeline"
inputs = ["absences", "grades", "activity"]

[[rule]]
name = "early_warning"
input = "timeline"
module = "RULE"
group_by = ["student_id"]
order_by = "date"
keep_state = true

[[alerts]]
name = "changes"
input = "early_warning"

[[sink]]
name = "risk"
input = "early_warning"
connector = "csv_file"
[sink.options]
path = "out/risk.csv"

[[sink]]
name = "changes_csv"
input = "changes"
connector = "csv_file"
[sink.options]
path = "out/changes.csv"
`

// subjectWorkspace writes subjectPipeline, the academy's data without
// the rows of the students in drop (students.csv keeps them all), and the
// early-warning rule into dir.
func subjectWorkspace(t *testing.T, dir, wasm string, drop ...string) string {
	t.Helper()
	for _, name := range []string{"students.csv", "absences.csv", "grades.csv", "activity.csv"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "data", name))
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for l := range strings.SplitSeq(string(b), "\n") {
			dropped := false
			for _, d := range drop {
				dropped = dropped || name != "students.csv" && strings.Contains(l, ","+d+",") || strings.HasPrefix(l, d+",") && name != "students.csv"
			}
			if !dropped {
				keep = append(keep, l)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data", name), []byte(strings.Join(keep, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "subject.toml")
	if err := os.WriteFile(file, []byte(strings.Replace(subjectPipeline, "RULE", filepath.ToSlash(wasm), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func vigieRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != want {
		t.Fatalf("vigie %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

type exported struct {
	Subject string
	Keys    []string
	Records []struct {
		Stage, Kind, Value string
		Row                map[string]any
	}
}

func stateExportJSON(t *testing.T, file, key string) exported {
	t.Helper()
	var e exported
	if err := json.Unmarshal([]byte(vigieRun(t, exitOK, "state", "export", "--key", key, file)), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func riskIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	rows := readback.CSV(t, filepath.Join(dir, "out", "risk.csv"))
	col := readback.Columns(rows[0])["student_id"]
	ids := map[string]bool{}
	for _, r := range rows[1:] {
		ids[r[col]] = true
	}
	return ids
}

// TestStateExportErase: a run keeps each student's timeline; export by
// clear id and by pseudonym finds it; erase removes it, is recorded in the
// audit trail under the pseudonym, and the next run, fed by the state,
// has the other absent student but not the erased one.
func TestStateExportErase(t *testing.T) {
	t.Setenv("VIGIE_SUBJECT_KEY", strings.Repeat("subject-key-", 4))
	key, err := privacy.NewKey([]byte(strings.Repeat("subject-key-", 4)))
	if err != nil {
		t.Fatal(err)
	}
	erased, kept := key.Pseudonym("S0001"), key.Pseudonym("S0002")
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "early_warning"))
	dir := t.TempDir()
	file := subjectWorkspace(t, dir, wasm)
	out := vigieRun(t, exitOK, "validate", "--in-process", file)
	for _, want := range []string{"personal data ([privacy]):", "risk             student_id (pseudonym)", "changes_csv      student_id (pseudonym)", "raw source rows withheld"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate does not say %q:\n%s", want, out)
		}
	}
	out = vigieRun(t, exitOK, "run", "--in-process", file)
	if !strings.Contains(out, "pseudonyms: key "+key.ID()) || !strings.Contains(out, "audit: ") {
		t.Errorf("run summary has no key id or audit line:\n%s", out)
	}
	if ids := riskIDs(t, dir); !ids[erased] || !ids[kept] {
		t.Fatalf("first run: %s or %s missing from risk.csv", erased, kept)
	}

	byClear := stateExportJSON(t, file, "S0001")
	byPseudonym := stateExportJSON(t, file, erased)
	if len(byClear.Records) == 0 || len(byClear.Records) != len(byPseudonym.Records) || byClear.Keys[0] != erased {
		t.Fatalf("export: %d records by clear id (keys %v), %d by pseudonym", len(byClear.Records), byClear.Keys, len(byPseudonym.Records))
	}
	for _, r := range byClear.Records {
		if r.Kind == "timeline" && r.Row["student_id"] != erased {
			t.Errorf("exported a row of another student: %v", r.Row)
		}
	}

	out = vigieRun(t, exitOK, "state", "erase", "--key", "S0001", file)
	if !strings.Contains(out, "erased ") {
		t.Errorf("erase said: %s", out)
	}
	if e := stateExportJSON(t, file, "S0001"); len(e.Records) != 0 {
		t.Errorf("after erase, export finds %d records", len(e.Records))
	}
	log, err := os.ReadFile(filepath.Join(dir, "subject.audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"event":"erase"`) || !strings.Contains(string(log), erased) || strings.Contains(string(log), "S0001") {
		t.Errorf("audit log after erase:\n%s", log)
	}

	// The next run reads neither student's rows: the kept one comes from
	// the state, the erased one is gone.
	subjectWorkspace(t, dir, wasm, "S0001", "S0002")
	vigieRun(t, exitOK, "run", "--in-process", file)
	ids := riskIDs(t, dir)
	if ids[erased] {
		t.Error("the erased student is back in the next run's output")
	}
	if !ids[kept] {
		t.Error("the student absent from the inputs but not erased is missing: the state does not feed the run, so the test proves nothing")
	}
	changes, err := os.ReadFile(filepath.Join(dir, "out", "changes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(changes), erased) {
		t.Error("the erased student's alerts are announced (as cleared) by the next run")
	}
	if out := vigieRun(t, exitOK, "audit", "verify", file); !strings.Contains(out, "3 entries, chain whole") {
		t.Errorf("audit verify: %s", out)
	}
}

// TestAuditVerifyCommand tampers with a log written by runs: verify names
// the line.
func TestAuditVerifyCommand(t *testing.T) {
	t.Setenv("VIGIE_SUBJECT_KEY", strings.Repeat("subject-key-", 4))
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "early_warning"))
	dir := t.TempDir()
	file := subjectWorkspace(t, dir, wasm)
	vigieRun(t, exitOK, "run", "--in-process", file)
	vigieRun(t, exitOK, "run", "--in-process", file)
	path := filepath.Join(dir, "subject.audit.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	for _, s := range []string{`"event":"run"`, `"pipeline_sha256":"`, `"name":"early_warning"`, `"version":"`, `"key_id":"k`, `"rows":`, `"connector":"csv_file"`} {
		if !strings.Contains(lines[0], s) {
			t.Errorf("audit entry lacks %s: %s", s, lines[0])
		}
	}
	lines[0] = strings.Replace(lines[0], `"status":"ok"`, `"status":"failed"`, 1)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := vigieRun(t, exitFailed, "audit", "verify", "--log", path); !strings.Contains(out, "subject.audit.jsonl:1: edited") {
		t.Errorf("audit verify of an edited log: %s", out)
	}
}

// TestStateExportAfterRotation: after a key rotation, a clear identifier
// still finds the state kept under the previous key's pseudonym until
// previous_key_until, and no longer after it.
func TestStateExportAfterRotation(t *testing.T) {
	oldSecret, newSecret := strings.Repeat("subject-key-", 4), strings.Repeat("rotated-key-", 4)
	t.Setenv("VIGIE_SUBJECT_KEY", oldSecret)
	t.Setenv("VIGIE_SUBJECT_KEY_NEW", newSecret)
	oldKey, err := privacy.NewKey([]byte(oldSecret))
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := privacy.NewKey([]byte(newSecret))
	if err != nil {
		t.Fatal(err)
	}
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "early_warning"))
	dir := t.TempDir()
	file := subjectWorkspace(t, dir, wasm)
	vigieRun(t, exitOK, "run", "--in-process", file)

	rotate := func(until time.Time) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if strings.Contains(s, "previous_key_until") {
			s = regexp.MustCompile(`previous_key_until = "[0-9-]+"`).ReplaceAllString(s, `previous_key_until = "`+until.Format(time.DateOnly)+`"`)
		} else {
			s = strings.Replace(s, `key_env = "VIGIE_SUBJECT_KEY"`+"\n", `key_env = "VIGIE_SUBJECT_KEY_NEW"`+"\n"+`previous_key_env = "VIGIE_SUBJECT_KEY"`+"\n"+`previous_key_until = "`+until.Format(time.DateOnly)+`"`+"\n", 1)
		}
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rotate(time.Now().AddDate(0, 0, 30))
	e := stateExportJSON(t, file, "S0001")
	if len(e.Keys) != 2 || e.Keys[0] != newKey.Pseudonym("S0001") || e.Keys[1] != oldKey.Pseudonym("S0001") || len(e.Records) == 0 {
		t.Fatalf("during the rotation: keys %v, %d records", e.Keys, len(e.Records))
	}
	out := vigieRun(t, exitOK, "validate", "--in-process", file)
	if !strings.Contains(out, "pseudonymisation key "+newKey.ID()+" (previous key "+oldKey.ID()+" used for lookups until ") {
		t.Errorf("validate does not name both keys:\n%s", out)
	}

	rotate(time.Now().AddDate(0, 0, -2))
	if e := stateExportJSON(t, file, "S0001"); len(e.Keys) != 1 || len(e.Records) != 0 {
		t.Errorf("after the rotation: keys %v, %d records", e.Keys, len(e.Records))
	}
}
