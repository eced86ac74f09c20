// Package evaluation measures the quality of early-warning outputs: alerts
// against the ground truth of a synthetic academy (synth/academy, vigie
// gen), or a score as a binary classifier of a label. `vigie eval` prints
// its figures; examples/indicators/tune counts with the same Counter, so
// what counts as a true alert is written once, here.
package evaluation

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Academy is the quality of alerts against the generator's ground truth.
//
// A student's alert is true when the student drifts and the alert opened
// on or after drift_start and before the dropout (outcome_date), or, for a
// drift that recovers, before drift_end plus the grace days; every other
// alert is false.
type Academy struct {
	Students         int     `json:"students"`
	Drifters         int     `json:"drifters"`
	Dropouts         int     `json:"dropouts"`
	Alerted          int     `json:"alerted_students"`
	AlertedTrue      int     `json:"alerted_with_true_alert"`
	Precision        Num     `json:"precision"`          // alerted students with a true alert / alerted students
	PrecisionDropout Num     `json:"precision_dropouts"` // alerted students who drop out / alerted students
	Recall           Num     `json:"recall"`             // dropouts with a true alert before the dropout / dropouts
	RecallDrifters   Num     `json:"recall_drifters"`    // drifters with a true alert / drifters
	MedianLeadDays   Num     `json:"median_lead_days"`   // dropout day - first true alert, over detected dropouts
	LeadP25          Num     `json:"lead_days_p25"`
	LeadP75          Num     `json:"lead_days_p75"`
	AlertsOpened     int     `json:"alerts_opened"`
	FalseAlerts      int     `json:"false_alerts"`
	FalsePer1000     Num     `json:"false_alerts_per_1000_students_per_month"`
	Months           float64 `json:"months"`
}

func (e Academy) String() string {
	return fmt.Sprintf(`students             %d (%d drifters, %d dropouts)
alerted students     %d (%d with a true alert)
precision            %.3f  (alerted students with a true alert; %.3f who drop out)
recall               %.3f  (dropouts alerted before the dropout; drifters: %.3f)
median lead time     %.0f days (p25 %.0f, p75 %.0f)
alerts opened        %d, false %d
false alerts         %.2f per 1,000 students per month (%.0f months)
`, e.Students, e.Drifters, e.Dropouts, e.Alerted, e.AlertedTrue, e.Precision, e.PrecisionDropout,
		e.Recall, e.RecallDrifters, e.MedianLeadDays, e.LeadP25, e.LeadP75, e.AlertsOpened, e.FalseAlerts, e.FalsePer1000, e.Months)
}

// Truth is what the ground truth says of one student, in days since
// 1970 (vigie gen's ground_truth.csv: drifts, drift_start, drift_end,
// outcome, outcome_date).
type Truth struct {
	Drifts     bool
	DriftStart int
	DriftEnd   int
	Recovers   bool // the drift ends on DriftEnd; otherwise DriftEnd is unused
	Dropout    bool
	DropoutDay int // outcome_date of a dropout; unused otherwise
}

// Window returns the days [from, to) on which an opened alert is true:
// from drift_start to the dropout, or for a drift that recovers to
// drift_end plus grace days (whichever comes first). It is empty (from >
// to) for a student who does not drift.
func (t Truth) Window(grace int) (from, to int) {
	from, to = math.MaxInt, math.MinInt
	if t.Drifts {
		from, to = t.DriftStart, math.MaxInt
		if t.Recovers {
			to = t.DriftEnd + grace
		}
	}
	if t.Dropout {
		to = min(to, t.DropoutDay)
	}
	return from, to
}

// IsTrue reports whether an alert opened on day is true (see Window).
func (t Truth) IsTrue(day, grace int) bool {
	from, to := t.Window(grace)
	return day >= from && day < to
}

// Counter counts Academy figures student by student: `vigie eval
// --alerts` and the tuning harness (examples/indicators/tune) both count
// with it.
type Counter struct {
	grace int
	e     Academy
	leads []float64
}

// NewCounter returns a Counter for which an alert stays true grace days
// after a recovering drift's end.
func NewCounter(grace int) *Counter { return &Counter{grace: grace} }

// Add counts one student: its truth and the days its alerts opened on, in
// the order they opened. It returns the day of the student's first true
// alert, or -1.
func (c *Counter) Add(t Truth, opened []int) (firstTrue int) {
	e := &c.e
	e.Students++
	if t.Drifts {
		e.Drifters++
	}
	if t.Dropout {
		e.Dropouts++
	}
	firstTrue = -1
	for _, d := range opened {
		e.AlertsOpened++
		if t.IsTrue(d, c.grace) {
			if firstTrue < 0 {
				firstTrue = d
			}
		} else {
			e.FalseAlerts++
		}
	}
	if len(opened) > 0 {
		e.Alerted++
		if t.Dropout {
			e.PrecisionDropout++
		}
	}
	if firstTrue >= 0 {
		e.AlertedTrue++
		e.RecallDrifters++
		if t.Dropout {
			e.Recall++
			c.leads = append(c.leads, float64(t.DropoutDay-firstTrue))
		}
	}
	return firstTrue
}

// Result returns the figures of the students added so far, false alerts
// per 1,000 students per month over months.
func (c *Counter) Result(months float64) *Academy {
	e := c.e
	e.Months = months
	e.Precision = Num(ratio(float64(e.AlertedTrue), float64(e.Alerted)))
	e.PrecisionDropout = Num(ratio(float64(e.PrecisionDropout), float64(e.Alerted)))
	e.Recall = Num(ratio(float64(e.Recall), float64(e.Dropouts)))
	e.RecallDrifters = Num(ratio(float64(e.RecallDrifters), float64(e.Drifters)))
	leads := slices.Clone(c.leads)
	sort.Float64s(leads)
	e.MedianLeadDays, e.LeadP25, e.LeadP75 = Num(quantile(leads, 0.5)), Num(quantile(leads, 0.25)), Num(quantile(leads, 0.75))
	e.FalsePer1000 = Num(ratio(float64(e.FalseAlerts)*1000, float64(e.Students)*months))
	return &e
}

// ReadTruth reads the truth of one row of ground_truth.csv, its columns
// named by header.
func ReadTruth(header, row []string) (id string, t Truth, err error) {
	col := func(name string) (string, error) {
		if i := slices.Index(header, name); i >= 0 && i < len(row) {
			return row[i], nil
		}
		return "", fmt.Errorf("no column %q (columns: %s)", name, strings.Join(header, ", "))
	}
	var v [6]string
	for i, name := range []string{"student_id", "drifts", "drift_start", "drift_end", "outcome", "outcome_date"} {
		if v[i], err = col(name); err != nil {
			return "", t, err
		}
	}
	id = v[0]
	t.Drifts, t.Dropout = v[1] == "true", v[4] == "dropout"
	if t.Drifts {
		if t.DriftStart, err = day(v[2]); err != nil {
			return id, t, fmt.Errorf("student %s: drift_start: %w", id, err)
		}
		if v[3] != "" {
			t.Recovers = true
			if t.DriftEnd, err = day(v[3]); err != nil {
				return id, t, fmt.Errorf("student %s: drift_end: %w", id, err)
			}
		}
	}
	if t.Dropout {
		if t.DropoutDay, err = day(v[5]); err != nil {
			return id, t, fmt.Errorf("student %s: outcome_date: %w", id, err)
		}
	}
	return id, t, nil
}

// OfAlerts measures an early_warning output (alertsPath: student_id and
// alert_history, or first_alert) against vigie gen's ground truth
// (truthPath), over months of school, grace days after a recovering
// drift's end. Either file is CSV, or Parquet when its name ends in
// .parquet; mem allocates what reading Parquet needs.
func OfAlerts(mem memory.Allocator, alertsPath, truthPath string, months float64, grace int) (*Academy, error) {
	at, err := readTable(mem, alertsPath)
	if err != nil {
		return nil, err
	}
	tt, err := readTable(mem, truthPath)
	if err != nil {
		return nil, err
	}
	sid, err := at.col("student_id")
	if err != nil {
		return nil, err
	}
	hist := at.index("alert_history")
	first := at.index("first_alert")
	if hist < 0 && first < 0 {
		return nil, fmt.Errorf("%s: no alert_history nor first_alert column", alertsPath)
	}
	open := map[string][]int{}
	for _, r := range at.rows {
		var ops []int
		if hist >= 0 {
			for _, a := range strings.Split(r[hist], ";") {
				f := strings.Split(a, ":") // id:CODE:opened:closed
				if len(f) < 3 {
					continue
				}
				d, err := day(f[2])
				if err != nil {
					return nil, fmt.Errorf("%s: student %s: alert %q: %w", alertsPath, r[sid], a, err)
				}
				ops = append(ops, d)
			}
		} else if r[first] != "" {
			d, err := day(r[first])
			if err != nil {
				return nil, fmt.Errorf("%s: student %s: first_alert: %w", alertsPath, r[sid], err)
			}
			ops = append(ops, d)
		}
		open[r[sid]] = ops
	}
	c := NewCounter(grace)
	for _, r := range tt.rows {
		id, t, err := ReadTruth(tt.header, r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", truthPath, err)
		}
		c.Add(t, open[id])
	}
	return c.Result(months), nil
}

// Binary is the quality of a score as a classifier of a label.
type Binary struct {
	Rows      int     `json:"rows"`
	Excluded  int     `json:"excluded"`
	Positives int     `json:"positives"`
	NullScore int     `json:"null_scores"`
	Threshold float64 `json:"threshold"`
	AUC       Num     `json:"roc_auc"`
	Precision Num     `json:"precision"`
	Recall    Num     `json:"recall"`
	Accuracy  Num     `json:"accuracy"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
	TN        int     `json:"tn"`
}

func (b Binary) String() string {
	return fmt.Sprintf(`rows        %d (%d positive; %d excluded; %d null scores counted as 0)
ROC-AUC     %.3f
threshold   %g: precision %.3f, recall %.3f, accuracy %.3f (tp %d, fp %d, fn %d, tn %d)
`, b.Rows, b.Positives, b.Excluded, b.NullScore, b.AUC, b.Threshold, b.Precision, b.Recall, b.Accuracy, b.TP, b.FP, b.FN, b.TN)
}

// OfScores measures the score column scoreCol of the table at path (CSV,
// or Parquet when the name ends in .parquet; a null score counts as 0) as
// a classifier of label ("COL=A|B" or "COL<NUM", also <=, >, >=), leaving
// out the rows that match exclude (same syntax; "" leaves none out); a
// row is predicted positive when its score is at least threshold. mem
// allocates what reading Parquet needs.
func OfScores(mem memory.Allocator, path, scoreCol, label, exclude string, threshold float64) (*Binary, error) {
	t, err := readTable(mem, path)
	if err != nil {
		return nil, err
	}
	sc, err := t.col(scoreCol)
	if err != nil {
		return nil, err
	}
	isPos, err := parseCond(t, label)
	if err != nil {
		return nil, fmt.Errorf("--label: %w", err)
	}
	isExcl := func([]string) (bool, error) { return false, nil }
	if exclude != "" {
		if isExcl, err = parseCond(t, exclude); err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
	}
	b := &Binary{Threshold: threshold}
	var ss []float64
	var ys []bool
	for i, r := range t.rows {
		if x, err := isExcl(r); err != nil {
			return nil, fmt.Errorf("%s: row %d: %w", path, i+1, err)
		} else if x {
			b.Excluded++
			continue
		}
		y, err := isPos(r)
		if err != nil {
			return nil, fmt.Errorf("%s: row %d: %w", path, i+1, err)
		}
		s := 0.0
		if r[sc] == "" {
			b.NullScore++
		} else if s, err = strconv.ParseFloat(r[sc], 64); err != nil {
			return nil, fmt.Errorf("%s: row %d: %s: %w", path, i+1, scoreCol, err)
		}
		b.Rows++
		ss, ys = append(ss, s), append(ys, y)
		pred := s >= threshold
		switch {
		case y && pred:
			b.TP++
		case y:
			b.FN++
		case pred:
			b.FP++
		default:
			b.TN++
		}
	}
	b.Positives = b.TP + b.FN
	b.Precision = Num(ratio(float64(b.TP), float64(b.TP+b.FP)))
	b.Recall = Num(ratio(float64(b.TP), float64(b.TP+b.FN)))
	b.Accuracy = Num(ratio(float64(b.TP+b.TN), float64(b.Rows)))
	b.AUC = Num(rocAUC(ss, ys))
	return b, nil
}

// rocAUC is the probability that a random positive scores above a random
// negative (ties count half): the Mann-Whitney statistic.
func rocAUC(s []float64, y []bool) float64 {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] < s[idx[b]] })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && s[idx[j]] == s[idx[i]] {
			j++
		}
		rank := float64(i+j+1) / 2 // mean 1-based rank of the tie
		for k := i; k < j; k++ {
			if y[idx[k]] {
				pos++
				rankSum += rank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// parseCond parses "COL=A|B" or "COL<NUM" (<=, >, >=).
func parseCond(t *table, expr string) (func([]string) (bool, error), error) {
	for _, op := range []string{"<=", ">=", "<", ">", "="} {
		name, val, ok := strings.Cut(expr, op)
		if !ok {
			continue
		}
		c, err := t.col(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		if op == "=" {
			set := map[string]bool{}
			for _, v := range strings.Split(val, "|") {
				set[strings.TrimSpace(v)] = true
			}
			return func(r []string) (bool, error) { return set[r[c]], nil }, nil
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v is not a number", expr, val)
		}
		return func(r []string) (bool, error) {
			v, err := strconv.ParseFloat(r[c], 64)
			if err != nil {
				return false, fmt.Errorf("column %s: %q is not a number", name, r[c])
			}
			switch op {
			case "<=":
				return v <= x, nil
			case ">=":
				return v >= x, nil
			case "<":
				return v < x, nil
			}
			return v > x, nil
		}, nil
	}
	return nil, fmt.Errorf("%q: want COL=A|B or COL<NUM (<=, >, >=)", expr)
}

// table is a file read as text: nulls are empty strings.
type table struct {
	path   string
	header []string
	rows   [][]string
}

func (t *table) index(name string) int { return slices.Index(t.header, name) }

func (t *table) col(name string) (int, error) {
	if i := t.index(name); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("%s: no column %q (columns: %s)", t.path, name, strings.Join(t.header, ", "))
}

// readTable reads a CSV file, or a Parquet file when its name ends in
// .parquet.
func readTable(mem memory.Allocator, path string) (*table, error) {
	if strings.HasSuffix(path, ".parquet") {
		return readParquet(mem, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	t := &table{path: path, header: header}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t.rows = append(t.rows, rec)
	}
}

func readParquet(mem memory.Allocator, path string) (*table, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, mem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer rr.Release()
	t := &table{path: path}
	for _, f := range rr.Schema().Fields() {
		t.header = append(t.header, f.Name)
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		base := len(t.rows)
		for range rec.NumRows() {
			t.rows = append(t.rows, make([]string, rec.NumCols()))
		}
		for j, c := range rec.Columns() {
			for i := range c.Len() {
				if c.IsValid(i) {
					t.rows[base+i][j] = c.ValueStr(i)
				}
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// day parses yyyy-mm-dd (or the start of a timestamp) into days since 1970.
func day(s string) (int, error) {
	if len(s) > 10 {
		s = s[:10]
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, fmt.Errorf("invalid date %q", s)
	}
	return int(t.Unix() / 86400), nil
}

// Num is a figure that may be undefined (NaN), written as null in JSON.
type Num float64

func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}
