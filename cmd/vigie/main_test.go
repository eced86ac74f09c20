package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

var (
	buildOnce sync.Once
	vigieBin  string
	buildErr  error
)

// vigie builds the vigie binary once per test run.
func vigie(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigie-bin-")
		if err != nil {
			buildErr = err
			return
		}
		vigieBin = filepath.Join(dir, "vigie")
		out, err := exec.Command("go", "build", "-o", vigieBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return vigieBin
}

// workspace copies the absence demo (examples/pipelines/absence.toml),
// its data and the freshly built absence rule into a temp dir laid out like
// the repository, and returns that dir.
func workspace(t *testing.T) string {
	t.Helper()
	root := filepath.Join("..", "..")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, demoPipeline), filepath.Join(dir, demoPipeline))
	for _, f := range []string{"attendance.csv", "attendance_dirty.csv"} {
		copyFile(t, filepath.Join(root, "examples", "data", f), filepath.Join(dir, "examples", "data", f))
	}
	wasm := hosttest.BuildGoRule(t, filepath.Join(root, "examples", "rules", "absence"))
	copyFile(t, wasm, filepath.Join(dir, "examples", "rules", "absence", "absence.wasm"))
	return dir
}

// demoPipeline is the absence demo, relative to the repository root.
const demoPipeline = "examples/pipelines/absence.toml"

// demo returns the folder of the absence demo in a new workspace: its
// pipeline is absence.toml there, its outputs go to out/ there.
func demo(t *testing.T) string {
	t.Helper()
	return filepath.Join(workspace(t), filepath.Dir(demoPipeline))
}

// TestDefaultPipelineIsEarlyWarning runs `vigie run` with no FILE in a
// copy of the repository's default pipeline and what it reads: the
// early-warning job writes one row per student with alerts and reasons.
func TestDefaultPipelineIsEarlyWarning(t *testing.T) {
	root := filepath.Join("..", "..")
	dir := t.TempDir()
	for _, f := range []string{"pipeline.toml", "examples/data/students.csv", "examples/data/absences.csv",
		"examples/data/grades.csv", "examples/data/activity.csv"} {
		copyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
	}
	wasm := hosttest.BuildGoRule(t, filepath.Join(root, "examples", "rules", "early_warning"))
	copyFile(t, wasm, filepath.Join(dir, "examples", "rules", "early_warning", "early_warning.wasm"))
	stdout, stderr, code := runVigie(t, dir, "run")
	if code != exitOK {
		t.Fatalf("run exited %d:\n%s%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`pipeline "early_warning" ok: \d+ rows read, 0 dead-lettered`).MatchString(stdout) {
		t.Errorf("no early_warning summary:\n%s", stdout)
	}
	rows := readback.CSV(t, filepath.Join(dir, "out", "alerts.csv"))
	h := readback.Columns(rows[0])
	if len(rows) != 601 {
		t.Fatalf("%d rows in out/alerts.csv, want a header and one per student (600)", len(rows))
	}
	alerts := 0
	for _, r := range rows[1:] {
		if r[h["alert_level"]] == "alert" && r[h["reason"]] != "" {
			alerts++
		}
	}
	if alerts == 0 {
		t.Errorf("no student at level alert with a reason")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runVigie(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigie(t), args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// attendance is one row of examples/data/attendance.csv.
type attendance struct {
	student, month    string
	halfDays, absent  int
	halfNull, absNull bool
}

func readAttendance(t *testing.T, path string) []attendance {
	t.Helper()
	recs := readback.CSV(t, path)
	col := readback.Columns(recs[0])
	var out []attendance
	for _, r := range recs[1:] {
		a := attendance{student: r[col["student_id"]], month: r[col["month"]]}
		var err error
		a.halfDays, err = strconv.Atoi(r[col["half_days"]])
		a.halfNull = err != nil
		a.absent, err = strconv.Atoi(r[col["absent_half_days"]])
		a.absNull = err != nil
		out = append(out, a)
	}
	return out
}

func TestAbsenceDemoEndToEnd(t *testing.T) {
	dir := demo(t)
	stdout, stderr, code := runVigie(t, dir, "validate", "absence.toml")
	if code != 0 {
		t.Fatalf("validate exited %d:\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "is valid") || !strings.Contains(stdout, "absence_rate: type=float64") {
		t.Errorf("validate output:\n%s", stdout)
	}

	stdout, stderr, code = runVigie(t, dir, "run", "absence.toml")
	if code != 0 {
		t.Fatalf("run exited %d:\n%s%s", code, stdout, stderr)
	}
	want := readAttendance(t, filepath.Join(dir, "..", "data", "attendance.csv"))
	line := regexp.MustCompile(`pipeline "absence_demo" ok: (\d+) rows read, 0 dead-lettered, .* wall, \d+ rows/s`).FindStringSubmatch(stdout)
	if line == nil || line[1] != strconv.Itoa(len(want)) {
		t.Fatalf("summary line missing or wrong (want %d rows):\n%s", len(want), stdout)
	}
	t.Log("\n" + stdout)

	// Parquet: every row, in order, with the rule's values.
	fr := readback.OpenParquet(t, filepath.Join(dir, "out", "absence.parquet"))
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != int64(len(want)) {
		t.Fatalf("parquet has %d rows, want %d", tbl.NumRows(), len(want))
	}
	tr := array.NewTableReader(tbl, 1<<20)
	defer tr.Release()
	row, flagged := 0, 0
	for tr.Next() {
		rec := tr.RecordBatch()
		s := rec.Schema()
		idx := func(name string) int {
			i := s.FieldIndices(name)
			if len(i) != 1 {
				t.Fatalf("column %q missing from %s", name, s)
			}
			return i[0]
		}
		students := rec.Column(idx("student_id")).(*array.String)
		rates := rec.Column(idx("absence_rate")).(*array.Float64)
		flags := rec.Column(idx("flag")).(*array.Boolean)
		reasons := rec.Column(idx("reason")).(*array.String)
		for i := range int(rec.NumRows()) {
			w := want[row]
			if students.Value(i) != w.student {
				t.Fatalf("row %d: student %q, want %q (order lost)", row, students.Value(i), w.student)
			}
			if w.halfNull || w.absNull || w.halfDays == 0 {
				if !rates.IsNull(i) || !flags.IsNull(i) {
					t.Errorf("row %d (%+v): rate and flag should be null", row, w)
				}
			} else {
				rate := float64(w.absent) / float64(w.halfDays)
				if rates.IsNull(i) || rates.Value(i) != rate {
					t.Errorf("row %d (%+v): rate %v, want %v", row, w, rates.Value(i), rate)
				}
				if flags.IsNull(i) || flags.Value(i) != (rate >= 0.10) {
					t.Errorf("row %d (%+v): flag %v, want %v", row, w, flags.Value(i), rate >= 0.10)
				}
				if flags.Value(i) {
					flagged++
					if reasons.IsNull(i) || !strings.Contains(reasons.Value(i), fmt.Sprintf("%d of %d", w.absent, w.halfDays)) {
						t.Errorf("row %d: reason %q does not say why", row, reasons.Value(i))
					}
				}
			}
			row++
		}
	}
	if flagged == 0 || flagged == row {
		t.Errorf("%d of %d rows flagged: the example data should have some of each", flagged, row)
	}
	stored, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if md := stored.Metadata(); md.FindKey("vigie.rule.sha256") < 0 {
		t.Errorf("parquet schema lacks rule provenance: %v", md)
	}

	// CSV: same number of rows plus a header.
	b, err := os.ReadFile(filepath.Join(dir, "out", "absence.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != len(want)+1 {
		t.Errorf("csv has %d lines, want %d", n, len(want)+1)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "dead_letter.csv")); !os.IsNotExist(err) {
		t.Errorf("a clean run left a dead letter file (stat: %v)", err)
	}
}

func TestDirtyInputIsDeadLettered(t *testing.T) {
	dir := demo(t)
	cfg, err := os.ReadFile(filepath.Join(dir, "absence.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("attendance.csv"), []byte("attendance_dirty.csv"), 1)
	if err := os.WriteFile(filepath.Join(dir, "absence.toml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// A third of its rows are bad: past the default dead letter threshold.
	stdout, stderr, code := runVigie(t, dir, "run", "absence.toml")
	if code != 1 || !strings.Contains(stdout, `error: stage "attendance": source connector csv: 4 of the last 12 rows dead-lettered (33.3%), past the dead letter threshold of 10%`) {
		t.Fatalf("run exited %d, want 1 and the threshold named:\n%s%s", code, stdout, stderr)
	}
	cfg = bytes.Replace(cfg, []byte("[pipeline]\n"), []byte("[pipeline]\ndead_letter_max_share = 0.5\n"), 1)
	if err := os.WriteFile(filepath.Join(dir, "absence.toml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runVigie(t, dir, "run", "absence.toml")
	if code != 0 {
		t.Fatalf("run exited %d:\n%s%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`(\d+) rows read, (\d+) dead-lettered`).FindStringSubmatch(stdout)
	if m == nil || m[2] == "0" {
		t.Fatalf("no dead letters counted:\n%s", stdout)
	}
	recs := readback.CSV(t, filepath.Join(dir, "out", "dead_letter.csv"))
	if strconv.Itoa(len(recs)-1) != m[2] {
		t.Errorf("dead letter file has %d rows, summary says %s", len(recs)-1, m[2])
	}
	for _, r := range recs[1:] {
		// stage, origin, line, column, reason, raw
		if r[0] != "attendance" || !strings.HasSuffix(r[1], "attendance_dirty.csv") || r[2] == "" || r[4] == "" {
			t.Errorf("dead letter lacks stage, file, line or reason: %q", r)
		}
	}
}

func TestValidateRejectsBadPipelines(t *testing.T) {
	dir := demo(t)
	base, err := os.ReadFile(filepath.Join(dir, "absence.toml"))
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) int {
		for i, l := range strings.Split(string(base), "\n") {
			if strings.Contains(l, s) {
				return i + 1
			}
		}
		t.Fatalf("%q not in absence.toml", s)
		return 0
	}
	for _, tc := range []struct {
		name, from, to string
		want           string // %d is replaced by the line of `from`, or of `at`
	}{
		{"unknown connector", `connector = "parquet"`, `connector = "parket"`, `bad.toml:%d: sink[0].connector: unknown connector "parket" (did you mean "parquet"?)` + "\n"},
		{"unknown option", `path = "out/absence.parquet"`, `pth = "out/absence.parquet"`, `bad.toml:%d: sink[0].options.pth: connector "parquet": unknown option (did you mean "path"?)`},
		{"option of the wrong type", `path = "out/absence.csv"`, `path = 12`, `bad.toml:%d: sink[1].options.path: connector "csv_file": expected a string, got an integer`},
		{"missing input file", `path = "../data/attendance.csv"`, `path = "../data/nope.csv"`, `nope.csv`},
		{"missing rule module", `module = "../rules/absence/absence.wasm"`, `module = "../rules/absence/nope.wasm"`, `nope.wasm`},
		{"rule input of a narrower type", `half_days = "int32"`, `half_days = "float64"`, `half_days`},
		{"rule input missing upstream", `absent_half_days = "int32",`, ``, `absent_half_days`},
		{"unknown rule param", `threshold = 0.10`, `treshold = 0.10`, `did you mean "threshold"`},
		{"rule param of the wrong type", `threshold = 0.10`, `threshold = "high"`, `threshold`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(base, []byte(tc.from)) {
				t.Fatalf("%q not in absence.toml", tc.from)
			}
			want := tc.want
			if strings.Contains(want, "%d") {
				at := tc.from
				if strings.Contains(want, ".connector:") {
					at = "[[sink]]" // connector errors point at the stage's header
				}
				want = fmt.Sprintf(want, lineOf(at))
			}
			bad := bytes.Replace(base, []byte(tc.from), []byte(tc.to), 1)
			if err := os.WriteFile(filepath.Join(dir, "bad.toml"), bad, 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runVigie(t, dir, "validate", "bad.toml")
			if code != 1 {
				t.Fatalf("validate exited %d, want 1:\n%s%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr:\n%s\nwant it to contain:\n%s", stderr, want)
			}
		})
	}
}
