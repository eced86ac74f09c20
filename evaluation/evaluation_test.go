package evaluation

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

const evalTruth = `student_id,school_id,track,drifts,drift_start,drift_end,signals,outcome,outcome_date,noise
S1,X,lp,true,2025-11-03,2026-01-20,absences,dropout,2026-01-20,
S2,X,lp,true,2025-12-01,2026-02-01,absences,dropout,2026-02-01,
S3,X,lp,true,2025-12-01,2026-01-15,marks,stays,,
S4,X,lp,false,,,,stays,,
S5,X,lp,false,,,,transfer,2026-03-01,
`

// S1: true alert 2025-12-01 (lead 50 days); S2: only an alert before its
// drift (false) and one after its dropout (false); S3: true alert within
// the grace; S4: two false alerts; S5: none.
const evalAlerts = `student_id,first_alert,alert_history
S1,2025-12-01,a:ABS_TREND:2025-12-01:
S2,2025-10-01,b:ABS_UNJ:2025-10-01:2025-10-20;c:ABS_UNJ:2026-02-02:
S3,2026-02-10,d:MARK_FALL:2026-02-10:
S4,2025-09-20,e:ABS_RATE:2025-09-20:2025-10-01;f:INACTIVE:2026-05-01:
S5,,
`

func writeFile(t *testing.T, name, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvalAcademy(t *testing.T) {
	truth, alerts := writeFile(t, "gt.csv", evalTruth), writeFile(t, "alerts.csv", evalAlerts)
	e, err := OfAlerts(memory.NewGoAllocator(), alerts, truth, 10, 30)
	if err != nil {
		t.Fatal(err)
	}
	want := Academy{Students: 5, Drifters: 3, Dropouts: 2, Alerted: 4, AlertedTrue: 2, Precision: 0.5, PrecisionDropout: 0.5,
		Recall: 0.5, RecallDrifters: 2.0 / 3, MedianLeadDays: 50, LeadP25: 50, LeadP75: 50, AlertsOpened: 6, FalseAlerts: 4,
		FalsePer1000: 4 * 1000 / 50.0, Months: 10}
	if *e != want {
		t.Errorf("got  %+v\nwant %+v", *e, want)
	}
	j, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatalf("%v: %s", err, j)
	}
	if m["median_lead_days"] != 50.0 || m["recall"] != 0.5 {
		t.Errorf("json: %s", j)
	}
}

func TestEvalBinary(t *testing.T) {
	// Scores 0.9 0.8 0.4 0.3 0.1 for labels P N P N N: of 6 pairs
	// (positive, negative) 5 are ordered right, AUC 5/6.
	scores := writeFile(t, "s.csv", "risk,G3,final_result\n0.9,5,Fail\n0.8,12,Pass\n0.4,9,Withdrawn\n0.3,15,Pass\n,11,Distinction\n")
	b, err := OfScores(memory.NewGoAllocator(), scores, "risk", "G3<10", "", 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(b.AUC)-5.0/6) > 1e-12 || b.TP != 1 || b.FP != 1 || b.FN != 1 || b.TN != 2 || b.NullScore != 1 {
		t.Errorf("got %+v", *b)
	}
	b, err = OfScores(memory.NewGoAllocator(), scores, "risk", "final_result=Withdrawn|Fail", "final_result=Distinction", 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rows != 4 || b.Excluded != 1 || b.Positives != 2 || math.Abs(float64(b.AUC)-0.75) > 1e-12 {
		t.Errorf("got %+v", *b)
	}
	if _, err := OfScores(memory.NewGoAllocator(), scores, "risk", "G3~10", "", 0.5); err == nil || !strings.Contains(err.Error(), "want COL=A|B") {
		t.Errorf("bad label: %v", err)
	}
	if _, err := OfScores(memory.NewGoAllocator(), scores, "nope", "G3<10", "", 0.5); err == nil || !strings.Contains(err.Error(), `no column "nope"`) {
		t.Errorf("bad column: %v", err)
	}
	if !math.IsNaN(rocAUC([]float64{1, 2}, []bool{true, true})) {
		t.Error("AUC with no negative is not NaN")
	}
}

// TestEvalParquet reads the alerts from Parquet, as term.toml writes them.
func TestEvalParquet(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "first_alert", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "alert_history", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	d, _ := day("2025-12-01")
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"S1", "S4"}, nil)
	b.Field(1).(*array.Date32Builder).AppendValues([]arrow.Date32{arrow.Date32(d), 0}, []bool{true, false})
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"a:ABS_TREND:2025-12-01:", ""}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "alerts.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tb, err := readTable(mem, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.rows) != 2 || tb.rows[0][1] != "2025-12-01" || tb.rows[1][1] != "" || tb.rows[0][2] != "a:ABS_TREND:2025-12-01:" {
		t.Fatalf("read %q %q", tb.header, tb.rows)
	}
	e, err := OfAlerts(mem, path, writeFile(t, "gt.csv", evalTruth), 10, 30)
	if err != nil {
		t.Fatal(err)
	}
	if e.Alerted != 1 || e.AlertedTrue != 1 || e.MedianLeadDays != 50 {
		t.Errorf("got %+v", *e)
	}
}

func TestTruthWindow(t *testing.T) {
	tests := []struct {
		name     string
		truth    Truth
		from, to int
	}{
		{"no drift", Truth{}, math.MaxInt, math.MinInt},
		{"no drift, leaves", Truth{Dropout: true, DropoutDay: 90}, math.MaxInt, math.MinInt},
		{"drift without end", Truth{Drifts: true, DriftStart: 10}, 10, math.MaxInt},
		{"drift recovers, grace", Truth{Drifts: true, DriftStart: 10, DriftEnd: 50, Recovers: true}, 10, 80},
		{"dropout before the grace ends", Truth{Drifts: true, DriftStart: 10, DriftEnd: 50, Recovers: true, Dropout: true, DropoutDay: 60}, 10, 60},
		{"drift to the dropout", Truth{Drifts: true, DriftStart: 10, Dropout: true, DropoutDay: 60}, 10, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if from, to := tt.truth.Window(30); from != tt.from || to != tt.to {
				t.Errorf("Window(30) = [%d, %d), want [%d, %d)", from, to, tt.from, tt.to)
			}
		})
	}
}

// TestCounterFirstTrue: the lead is counted from the first true alert in
// opening order, and a Result does not stop the counting.
func TestCounterFirstTrue(t *testing.T) {
	c := NewCounter(30)
	tr := Truth{Drifts: true, DriftStart: 10, Dropout: true, DropoutDay: 100}
	if got := c.Add(tr, []int{5, 20, 40, 120}); got != 20 {
		t.Errorf("first true alert on day %d, want 20", got)
	}
	e := c.Result(10)
	if e.AlertsOpened != 4 || e.FalseAlerts != 2 || e.MedianLeadDays != 80 || e.Recall != 1 {
		t.Errorf("got %+v", *e)
	}
	if got := c.Add(Truth{}, []int{30}); got != -1 {
		t.Errorf("student without drift: first true alert %d, want -1", got)
	}
	if e := c.Result(10); e.Students != 2 || e.Alerted != 2 || e.Precision != 0.5 || e.FalsePer1000 != 150 {
		t.Errorf("got %+v", *e)
	}
}
