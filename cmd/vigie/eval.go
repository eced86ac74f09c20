package main

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
	"github.com/spf13/cobra"
)

// newEvalCmd is `vigie eval`: it measures the quality of early-warning
// outputs, against the synthetic academy's ground truth (--alerts,
// --truth), or as a binary classifier of a label (--scores, --label).
func newEvalCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval --alerts FILE --truth ground_truth.csv | --scores FILE --label EXPR",
		Short: "Measure early-warning quality against ground truth or a label",
		Long: `Academy mode (--alerts, --truth): precision, recall, median lead time and
false alerts per 1,000 students per month of an early_warning output
against vigie gen's ground truth. Binary mode (--scores, --label): ROC-AUC,
precision, recall and accuracy of a score against a label (the real-data
evaluations of docs/indicators.md).`,
		Example: `  vigie eval --alerts examples/pipelines/out/term_xapi_alerts.parquet --truth academy/ground_truth.csv
  vigie eval --scores examples/pipelines/out/uci_risk.csv --label 'G3<10'`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	alerts := fs.String("alerts", "", "alerts output of the early_warning rule (Parquet or CSV): student_id, first_alert, alert_history")
	truth := fs.String("truth", "", "ground_truth.csv (or .parquet) of vigie gen")
	months := fs.Float64("months", 10, "months of school the run covers, for false alerts per 1,000 students per month")
	grace := fs.Int("grace", 30, "days after a recovering drift's end during which an alert still counts as true")
	scores := fs.String("scores", "", "binary mode: a table (Parquet or CSV) with a score column and the label's column")
	scoreCol := fs.String("score", "risk", "binary mode: score column (higher means at risk; null counts as 0)")
	label := fs.String("label", "", `binary mode: what is positive, "COL=A|B" or "COL<NUM" (also <=, >, >=)`)
	exclude := fs.String("exclude", "", `binary mode: rows to leave out, same syntax as --label`)
	threshold := fs.Float64("threshold", 0.5, "binary mode: score from which a row is predicted positive")
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	cmd.RunE = do(func(*cobra.Command, []string) int {
		var (
			res any
			err error
		)
		switch {
		case *alerts != "" && *truth != "" && *scores == "":
			res, err = evalAcademy(*alerts, *truth, *months, *grace)
		case *scores != "" && *label != "" && *alerts == "":
			res, err = evalBinary(*scores, *scoreCol, *label, *exclude, *threshold)
		default:
			fmt.Fprintln(stderr, "vigie eval: give --alerts and --truth, or --scores and --label")
			return exitUsage
		}
		if err != nil {
			fmt.Fprintf(stderr, "vigie eval: %v\n", err)
			return exitFailed
		}
		return printEval(res, *asJSON, stdout, stderr)
	})
	return cmd
}

func printEval(res any, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "vigie eval: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprint(stdout, res)
	return exitOK
}

// AcademyEval is the quality of alerts against the generator's ground truth.
//
// A student's alert is true when the student drifts and the alert opened
// on or after drift_start and before the dropout (outcome_date), or, for a
// drift that recovers, before drift_end plus the grace days; every other
// alert is false.
type AcademyEval struct {
	Students         int     `json:"students"`
	Drifters         int     `json:"drifters"`
	Dropouts         int     `json:"dropouts"`
	Alerted          int     `json:"alerted_students"`
	AlertedTrue      int     `json:"alerted_with_true_alert"`
	Precision        num     `json:"precision"`          // alerted students with a true alert / alerted students
	PrecisionDropout num     `json:"precision_dropouts"` // alerted students who drop out / alerted students
	Recall           num     `json:"recall"`             // dropouts with a true alert before the dropout / dropouts
	RecallDrifters   num     `json:"recall_drifters"`    // drifters with a true alert / drifters
	MedianLeadDays   num     `json:"median_lead_days"`   // dropout day - first true alert, over detected dropouts
	LeadP25          num     `json:"lead_days_p25"`
	LeadP75          num     `json:"lead_days_p75"`
	AlertsOpened     int     `json:"alerts_opened"`
	FalseAlerts      int     `json:"false_alerts"`
	FalsePer1000     num     `json:"false_alerts_per_1000_students_per_month"`
	Months           float64 `json:"months"`
}

func (e AcademyEval) String() string {
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

type opening struct {
	day  int
	code string
}

func evalAcademy(alertsPath, truthPath string, months float64, grace int) (*AcademyEval, error) {
	at, err := readTable(alertsPath)
	if err != nil {
		return nil, err
	}
	tt, err := readTable(truthPath)
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
	open := map[string][]opening{}
	for _, r := range at.rows {
		var ops []opening
		if hist >= 0 {
			for _, a := range strings.Split(r[hist], ";") {
				f := strings.Split(a, ":") // id:CODE:opened:closed
				if len(f) < 3 {
					continue
				}
				d, err := day(f[2])
				if err != nil {
					return nil, fmt.Errorf("%s: student %s: alert %q: %v", alertsPath, r[sid], a, err)
				}
				ops = append(ops, opening{d, f[1]})
			}
		} else if r[first] != "" {
			d, err := day(r[first])
			if err != nil {
				return nil, fmt.Errorf("%s: student %s: first_alert: %v", alertsPath, r[sid], err)
			}
			ops = append(ops, opening{d, ""})
		}
		open[r[sid]] = ops
	}
	var idx [6]int
	for i, name := range []string{"student_id", "drifts", "drift_start", "drift_end", "outcome", "outcome_date"} {
		if idx[i], err = tt.col(name); err != nil {
			return nil, err
		}
	}
	e := &AcademyEval{Months: months}
	var leads []float64
	for _, r := range tt.rows {
		e.Students++
		ops := open[r[idx[0]]]
		drifts := r[idx[1]] == "true"
		dropout := r[idx[4]] == "dropout"
		trueFrom, trueTo := math.MaxInt, math.MinInt
		if drifts {
			e.Drifters++
			if trueFrom, err = day(r[idx[2]]); err != nil {
				return nil, fmt.Errorf("%s: student %s: drift_start: %v", truthPath, r[idx[0]], err)
			}
			trueTo = math.MaxInt
			if r[idx[3]] != "" {
				if trueTo, err = day(r[idx[3]]); err != nil {
					return nil, fmt.Errorf("%s: student %s: drift_end: %v", truthPath, r[idx[0]], err)
				}
				trueTo += grace
			}
		}
		outDay := math.MaxInt
		if dropout {
			e.Dropouts++
			if outDay, err = day(r[idx[5]]); err != nil {
				return nil, fmt.Errorf("%s: student %s: outcome_date: %v", truthPath, r[idx[0]], err)
			}
			trueTo = min(trueTo, outDay)
		}
		firstTrue := -1
		for _, o := range ops {
			e.AlertsOpened++
			if o.day >= trueFrom && o.day < trueTo {
				if firstTrue < 0 {
					firstTrue = o.day
				}
			} else {
				e.FalseAlerts++
			}
		}
		if len(ops) > 0 {
			e.Alerted++
			if dropout {
				e.PrecisionDropout++
			}
		}
		if firstTrue >= 0 {
			e.AlertedTrue++
			e.RecallDrifters++
			if dropout {
				e.Recall++
				leads = append(leads, float64(outDay-firstTrue))
			}
		}
	}
	e.Precision = num(ratio(float64(e.AlertedTrue), float64(e.Alerted)))
	e.PrecisionDropout = num(ratio(float64(e.PrecisionDropout), float64(e.Alerted)))
	e.Recall = num(ratio(float64(e.Recall), float64(e.Dropouts)))
	e.RecallDrifters = num(ratio(float64(e.RecallDrifters), float64(e.Drifters)))
	sort.Float64s(leads)
	e.MedianLeadDays, e.LeadP25, e.LeadP75 = num(quantile(leads, 0.5)), num(quantile(leads, 0.25)), num(quantile(leads, 0.75))
	e.FalsePer1000 = num(ratio(float64(e.FalseAlerts)*1000, float64(e.Students)*months))
	return e, nil
}

// BinaryEval is the quality of a score as a classifier of a label.
type BinaryEval struct {
	Rows      int     `json:"rows"`
	Excluded  int     `json:"excluded"`
	Positives int     `json:"positives"`
	NullScore int     `json:"null_scores"`
	Threshold float64 `json:"threshold"`
	AUC       num     `json:"roc_auc"`
	Precision num     `json:"precision"`
	Recall    num     `json:"recall"`
	Accuracy  num     `json:"accuracy"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
	TN        int     `json:"tn"`
}

func (b BinaryEval) String() string {
	return fmt.Sprintf(`rows        %d (%d positive; %d excluded; %d null scores counted as 0)
ROC-AUC     %.3f
threshold   %g: precision %.3f, recall %.3f, accuracy %.3f (tp %d, fp %d, fn %d, tn %d)
`, b.Rows, b.Positives, b.Excluded, b.NullScore, b.AUC, b.Threshold, b.Precision, b.Recall, b.Accuracy, b.TP, b.FP, b.FN, b.TN)
}

func evalBinary(path, scoreCol, label, exclude string, threshold float64) (*BinaryEval, error) {
	t, err := readTable(path)
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
	b := &BinaryEval{Threshold: threshold}
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
	b.Precision = num(ratio(float64(b.TP), float64(b.TP+b.FP)))
	b.Recall = num(ratio(float64(b.TP), float64(b.TP+b.FN)))
	b.Accuracy = num(ratio(float64(b.TP+b.TN), float64(b.Rows)))
	b.AUC = num(rocAUC(ss, ys))
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
func readTable(path string) (*table, error) {
	if strings.HasSuffix(path, ".parquet") {
		return readParquet(path)
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

func readParquet(path string) (*table, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
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

// num is a figure that may be undefined (NaN), written as null in JSON.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
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
