package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/indicators"
)

// Inputs are the files the console loads after a run: the early-warning
// output and what the pipeline read. Empty paths are skipped (the pages
// concerned then show nothing).
type Inputs struct {
	// Alerts is the early-warning job's output (Parquet, CSV or JSONL):
	// one row per student with risk, alert_level, reason, reason_codes,
	// open_alert_count and alert_history (id:CODE:opened:cleared;...).
	Alerts string
	// Students (student_id, school_id, class_id, level), Absences
	// (student_id, date; rows with corrects set are corrections, not
	// absences), Marks (student_id, subject, period, mark) and Activity
	// (student_id, date) are CSV files.
	Students, Absences, Marks, Activity string
	// Calendar (date, half_days) gives the half-days of school per day;
	// without it every weekday counts two.
	Calendar string
	// DeadLetters is the run's dead-letter CSV.
	DeadLetters string
	// TermEnds dates the marks of T1, T2, T3 (the rule's term_ends).
	TermEnds string
}

// InputsFrom finds the console's inputs in a pipeline: the sources by the
// columns they declare, the alerts output as the first file sink whose
// stage emits alert_history (schemaHas tells which stage has a column).
func InputsFrom(cfg *config.Pipeline, schemaHas func(stage, column string) bool) Inputs {
	in := Inputs{DeadLetters: cfg.DeadLetter, TermEnds: indicators.DefaultTermEnds}
	path := func(opts map[string]any) string {
		p, _ := opts["path"].(string)
		if p == "" {
			return ""
		}
		return cfg.Resolve(p)
	}
	for _, s := range cfg.Sources {
		if s.Connector != "csv" {
			continue
		}
		has := func(c string) bool { return schemaHas(s.Name, c) }
		switch {
		case has("school_id") && has("class_id") && has("student_id"):
			in.Students = path(s.Options)
		case has("half") && has("date"):
			in.Absences = path(s.Options)
		case has("mark") && has("period"):
			in.Marks = path(s.Options)
		case has("student_id") && has("date"):
			in.Activity = path(s.Options)
		}
		if in.Calendar == "" && in.Students != "" {
			if c := filepath.Join(filepath.Dir(in.Students), "calendar.csv"); fileExists(c) {
				in.Calendar = c
			}
		}
	}
	for _, r := range cfg.Rules {
		if t, ok := r.Params["term_ends"].(string); ok {
			in.TermEnds = t
		}
	}
	for _, s := range cfg.Sinks {
		if in.Alerts == "" && schemaHas(s.Name, "alert_history") && schemaHas(s.Name, "student_id") {
			in.Alerts = path(s.Options)
		}
	}
	return in
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Event kinds in the store.
const (
	kindAbsence  = "absence"
	kindActivity = "activity"
	kindMark     = "mark"
)

type event struct {
	student, kind, date, subject string
	value                        float64
}

// runData is what Load puts in the store.
type runData struct {
	students    []Student
	alerts      []AlertSpan
	events      []event
	calendar    map[string]int
	deadLetters []DeadLetter
}

// table is a file read as rows of strings by column name.
type table struct {
	cols map[string]int
	rows [][]string
}

func (t *table) get(row []string, col string) string {
	i, ok := t.cols[col]
	if !ok || i >= len(row) {
		return ""
	}
	return row[i]
}

// readTable reads a CSV, JSONL or Parquet file.
func readTable(path string) (*table, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet":
		return readParquet(path)
	case ".jsonl", ".ndjson":
		return readJSONL(path)
	}
	return readCSV(path)
}

func readCSV(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("read %s: empty", path)
	}
	t := &table{cols: map[string]int{}, rows: all[1:]}
	for i, c := range all[0] {
		t.cols[c] = i
	}
	return t, nil
}

func readJSONL(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &table{cols: map[string]int{}}
	dec := json.NewDecoder(f)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		row := make([]string, len(t.cols))
		for k, v := range m {
			i, ok := t.cols[k]
			if !ok {
				i = len(t.cols)
				t.cols[k] = i
				row = append(row, "")
			}
			if v != nil {
				row[i] = fmt.Sprint(v)
			}
		}
		t.rows = append(t.rows, row)
	}
	return t, nil
}

func readParquet(path string) (*table, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer pf.Close()
	mem := memory.NewGoAllocator()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, mem)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer rr.Release()
	t := &table{cols: map[string]int{}}
	for i, f := range rr.Schema().Fields() {
		t.cols[f.Name] = i
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		for r := range int(rec.NumRows()) {
			row := make([]string, rec.NumCols())
			for c, col := range rec.Columns() {
				row[c] = valueString(col, r)
			}
			t.rows = append(t.rows, row)
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

func valueString(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return ""
	}
	return a.ValueStr(i)
}

// load reads the inputs.
func load(in Inputs) (*runData, error) {
	d := &runData{calendar: map[string]int{}}
	roster := map[string]*Student{}
	if in.Students != "" {
		t, err := readTable(in.Students)
		if err != nil {
			return nil, err
		}
		for _, r := range t.rows {
			st := &Student{ID: t.get(r, "student_id"), School: t.get(r, "school_id"), Class: t.get(r, "class_id"), Level: t.get(r, "level"), AlertLevel: "ok"}
			roster[st.ID] = st
		}
	}
	if in.Alerts != "" {
		t, err := readTable(in.Alerts)
		if err != nil {
			return nil, fmt.Errorf("alerts output (run the pipeline first): %w", err)
		}
		for _, r := range t.rows {
			id := t.get(r, "student_id")
			st := roster[id]
			if st == nil {
				st = &Student{ID: id, School: t.get(r, "school_id"), Class: t.get(r, "class_id"), Level: t.get(r, "level")}
				roster[id] = st
			}
			st.Risk, _ = strconv.ParseFloat(t.get(r, "risk"), 64)
			st.AlertLevel = t.get(r, "alert_level")
			st.Reason = t.get(r, "reason")
			st.ReasonCodes = t.get(r, "reason_codes")
			st.OpenAlerts, _ = strconv.Atoi(t.get(r, "open_alert_count"))
			for _, h := range strings.Split(t.get(r, "alert_history"), ";") {
				f := strings.Split(h, ":")
				if len(f) < 3 {
					continue
				}
				span := AlertSpan{ID: f[0], Student: id, Code: f[1], Opened: f[2]}
				if len(f) > 3 {
					span.Cleared = f[3]
				}
				d.alerts = append(d.alerts, span)
			}
		}
	}
	for _, st := range roster {
		d.students = append(d.students, *st)
	}
	slices.SortFunc(d.students, func(a, b Student) int { return strings.Compare(a.ID, b.ID) })
	if in.Absences != "" {
		t, err := readTable(in.Absences)
		if err != nil {
			return nil, err
		}
		for _, r := range t.rows {
			if t.get(r, "corrects") != "" {
				continue // a late correction of another row, not an absence
			}
			d.events = append(d.events, event{student: t.get(r, "student_id"), kind: kindAbsence, date: t.get(r, "date")})
		}
	}
	if in.Activity != "" {
		t, err := readTable(in.Activity)
		if err != nil {
			return nil, err
		}
		for _, r := range t.rows {
			d.events = append(d.events, event{student: t.get(r, "student_id"), kind: kindActivity, date: t.get(r, "date")})
		}
	}
	if in.Marks != "" {
		ends := strings.Split(in.TermEnds, ",")
		t, err := readTable(in.Marks)
		if err != nil {
			return nil, err
		}
		for _, r := range t.rows {
			v, err := strconv.ParseFloat(t.get(r, "mark"), 64)
			if err != nil {
				continue // a missing mark
			}
			term, _ := strconv.Atoi(strings.TrimPrefix(t.get(r, "period"), "T"))
			if term < 1 || term > len(ends) {
				continue
			}
			d.events = append(d.events, event{student: t.get(r, "student_id"), kind: kindMark, date: strings.TrimSpace(ends[term-1]), subject: t.get(r, "subject"), value: v})
		}
	}
	if in.Calendar != "" {
		t, err := readTable(in.Calendar)
		if err != nil {
			return nil, err
		}
		for _, r := range t.rows {
			n, _ := strconv.Atoi(t.get(r, "half_days"))
			d.calendar[t.get(r, "date")] = n
		}
	} else {
		weekdays(d)
	}
	if in.DeadLetters != "" && fileExists(in.DeadLetters) {
		t, err := readTable(in.DeadLetters)
		if err != nil {
			return nil, err
		}
		for _, r := range t.rows {
			d.deadLetters = append(d.deadLetters, DeadLetter{Stage: t.get(r, "stage"), Origin: t.get(r, "origin"), Line: t.get(r, "line"),
				Column: t.get(r, "column"), Reason: t.get(r, "reason"), Raw: t.get(r, "raw")})
		}
	}
	return d, nil
}

// weekdays fills a calendar of two half-days per weekday over the events'
// dates, for a run without a calendar file.
func weekdays(d *runData) {
	var lo, hi string
	for _, e := range d.events {
		if lo == "" || e.date < lo {
			lo = e.date
		}
		if e.date > hi {
			hi = e.date
		}
	}
	from, err1 := time.Parse(time.DateOnly, lo)
	to, err2 := time.Parse(time.DateOnly, hi)
	if err1 != nil || err2 != nil {
		return
	}
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday {
			d.calendar[day.Format(time.DateOnly)] = 2
		}
	}
}

// Schools lists the schools of the roster (Inputs.Students), sorted.
func Schools(in Inputs) ([]string, error) {
	if in.Students == "" {
		return nil, errors.New("no roster (a CSV source with student_id, school_id, class_id) in the pipeline")
	}
	t, err := readTable(in.Students)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range t.rows {
		if s := t.get(r, "school_id"); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Load reads the inputs into the store, replacing what an earlier run put
// there; recorded actions are kept.
func Load(ctx context.Context, s Store, in Inputs) error {
	d, err := load(in)
	if err != nil {
		return err
	}
	ss, ok := s.(*sqliteStore)
	if !ok {
		return fmt.Errorf("load: the %T store is filled by its sink, not by the console", s)
	}
	return ss.replace(ctx, d)
}
