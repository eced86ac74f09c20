package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/vigie-edu/vigie/engine/privacy"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// perRowWorkspace writes subjectPipeline with the early-warning rule
// scoring each row as it comes (emit = "per_row") and the academy's rows
// of the students in keep only (a small run).
func perRowWorkspace(t *testing.T, dir, wasm string, keep ...string) string {
	t.Helper()
	for _, name := range []string{"students.csv", "absences.csv", "grades.csv", "activity.csv"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "data", name))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if i == 0 || slices.ContainsFunc(strings.Split(l, ","), func(f string) bool { return slices.Contains(keep, f) }) {
				lines = append(lines, l)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data", name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := strings.Replace(subjectPipeline, "RULE", filepath.ToSlash(wasm), 1)
	p = strings.Replace(p, "keep_state = true", "keep_state = true\nemit = \"per_row\"\n[rule.params]\nas_of = \"latest\"\nraise_at = 0.1\nclear_below = 0.05", 1)
	file := filepath.Join(dir, "subject.toml")
	if err := os.WriteFile(file, []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// stateEntries returns every key and value of a state folder.
func stateEntries(t *testing.T, dir string) [][2][]byte {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][2][]byte
	for it.First(); it.Valid(); it.Next() {
		out = append(out, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStateErasePerRow: with emit = "per_row" and pseudonymisation, the
// per-row state holds no clear id; export finds a student's per-row
// timeline and announced alerts; erase leaves nothing of theirs in any
// key or value of the state, is audited, and a later run does not bring
// them back.
func TestStateErasePerRow(t *testing.T) {
	secret := strings.Repeat("subject-key-", 4)
	t.Setenv("VIGIE_SUBJECT_KEY", secret)
	key, err := privacy.NewKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	students := []string{"S0001", "S0002", "S0003", "S0004"}
	erased := key.Pseudonym("S0001")
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "early_warning"))
	dir := t.TempDir()
	file := perRowWorkspace(t, dir, wasm, students...)
	vigieRun(t, exitOK, "run", "--in-process", file)
	stateDir := filepath.Join(dir, "state")

	kinds := map[byte]int{}
	has := func(entries [][2][]byte, s string) bool {
		return slices.ContainsFunc(entries, func(e [2][]byte) bool {
			return bytes.Contains(e[0], []byte(s)) || bytes.Contains(e[1], []byte(s))
		})
	}
	entries := stateEntries(t, stateDir)
	for _, e := range entries {
		kinds[e[0][0]]++
	}
	if kinds['a'] == 0 || kinds['w'] == 0 {
		t.Fatalf("the run kept no per-row state (entries by keyspace: %v)", kinds)
	}
	for _, id := range students {
		if has(entries, id) {
			t.Errorf("clear id %s in the pseudonymised per-row state", id)
		}
	}
	if !has(entries, erased) {
		t.Fatal("the student's pseudonym is not in the state: the erase below proves nothing")
	}

	exp := stateExportJSON(t, file, "S0001")
	n := map[string]int{}
	for _, r := range exp.Records {
		n[r.Kind]++
		if r.Kind == "timeline" && r.Row["student_id"] != erased {
			t.Errorf("exported a row of another student: %v", r.Row)
		}
	}
	if n["timeline"] == 0 || n["value"] == 0 {
		t.Errorf("export of S0001: %v, want per-row timeline rows and announced alerts", n)
	}

	vigieRun(t, exitOK, "state", "erase", "--key", "S0001", file)
	entries = stateEntries(t, stateDir)
	if has(entries, erased) {
		t.Error("the erased student's pseudonym is still in the state")
	}
	if !has(entries, key.Pseudonym("S0002")) {
		t.Error("erase removed another student's state")
	}
	log, err := os.ReadFile(filepath.Join(dir, "subject.audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"event":"erase"`) || !strings.Contains(string(log), erased) {
		t.Errorf("erase not in the audit log:\n%s", log)
	}

	// A later run with the other students' rows: nothing of the erased
	// student comes back, in the outputs or the state.
	perRowWorkspace(t, dir, wasm, students[1:]...)
	vigieRun(t, exitOK, "run", "--in-process", file)
	for _, out := range []string{"risk.csv", "changes.csv"} {
		b, err := os.ReadFile(filepath.Join(dir, "out", out))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), erased) {
			t.Errorf("the erased student is back in %s", out)
		}
	}
	if has(stateEntries(t, stateDir), erased) {
		t.Error("the erased student is back in the state after the next run")
	}

	// New rows about the student arrive after the erasure (they are
	// enrolled again): they are scored and announced as for a student
	// never seen, the same as over a fresh state; only the arrival
	// sequence (the stage's count goes on) differs. One source has rows
	// (the union's interleaving of several is not fixed, and per-row
	// scores follow arrival order).
	fresh := t.TempDir()
	for _, d := range []string{dir, fresh} {
		f := perRowWorkspace(t, d, wasm, "S0001")
		for _, name := range []string{"absences.csv", "activity.csv"} {
			b, err := os.ReadFile(filepath.Join(d, "data", name))
			if err != nil {
				t.Fatal(err)
			}
			header, _, _ := strings.Cut(string(b), "\n")
			if err := os.WriteFile(filepath.Join(d, "data", name), []byte(header+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		vigieRun(t, exitOK, "run", "--in-process", f)
	}
	for _, out := range []string{"risk.csv", "changes.csv"} {
		got, want := withoutSeq(t, filepath.Join(dir, "out", out)), withoutSeq(t, filepath.Join(fresh, "out", out))
		if !strings.Contains(want, erased) {
			t.Fatalf("%s of the fresh run does not have the student:\n%s", out, want)
		}
		if got != want {
			t.Errorf("%s after the erasure differs from a fresh state's:\n%s\nwant\n%s", out, got, want)
		}
	}
}

// withoutSeq reads a CSV output without its arrival_seq column.
func withoutSeq(t *testing.T, path string) string {
	t.Helper()
	rows := readback.CSV(t, path)
	col := readback.Columns(rows[0])["arrival_seq"]
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(slices.Delete(slices.Clone(r), col, col+1), ",") + "\n")
	}
	return b.String()
}
