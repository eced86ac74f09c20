package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// Output columns an aggregate stage adds besides its keys and measures.
const (
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	ColSuppressed  = "suppressed"
	// ColSchoolWeek numbers the school weeks of a school_week window from
	// 1, the first week with a school day in the calendar.
	ColSchoolWeek = "school_week"
)

// aggregateStage groups its input by key columns and event-time window
// and emits one row per key and window when the window closes: in a batch
// run at the end of the input; in a continuous run as soon as the
// watermark (the newest event time seen minus allowed_lateness) reaches
// the window's end. A closed window's state is dropped, so the state is
// bounded by the windows still open. Rows of an already closed window are
// late and go to the dead letters.
//
// Every measure is exact: quantiles keep the window's values (type 7
// interpolation, as R's default and numpy's), count_distinct a set.
//
// With min_count > 0, a cell computed from fewer distinct subjects is
// withheld (its measures null, suppressed true), and secondary
// suppression withholds further cells until no withheld cell can be
// solved for from the totals over any suppress_over column (see
// suppress).
type aggregateStage struct {
	cfg    *config.Aggregate
	schema *arrow.Schema // output
	mem    memory.Allocator
	// continuous is set for a run with an unbounded source: windows close
	// on the watermark instead of at the end.
	continuous bool

	keys     []int // key columns in the input
	keyTypes []arrow.DataType
	timeCol  int // -1 without a time column
	timeLoc  *time.Location
	subject  int   // -1 without suppression
	measCols []int // input column of each measure; -1 for count
	over     []int // positions in keys of the suppress_over columns

	// schoolWeeks lists, for a school_week window, the Mondays (unix
	// seconds, midnight in timeLoc) of the weeks with a school day, in
	// order.
	schoolWeeks []int64
	spans       []aggSpan // scratch: the windows of one row
	val         []byte    // scratch: a key of one value

	// mu guards the windows against a checkpoint's snapshot (taken at a
	// quiescent cut, from the coordinator's goroutine).
	mu      sync.Mutex
	windows map[int64]*aggWindow // by start (unix seconds)
	// running holds, for cumulative windows, every key's cell over the
	// windows closed so far, from runStart (the first window's start).
	running  map[string]*aggCell
	runStart int64
	maxEvent int64 // newest event time seen, unix seconds
	seen     bool
	closed   int64 // windows ending at or before this are closed
	peak     int   // most windows open at once (the state's bound)
}

type aggWindow struct {
	start, end int64 // unix seconds; end exclusive
	week       int32 // school week number (school_week windows)
	cells      map[string]*aggCell
}

// aggSpan is one window a row falls in.
type aggSpan struct {
	start, end int64
	week       int32
}

type aggCell struct {
	keys     []any // Go values of the key columns; nil for null
	rows     int64
	subjects map[string]struct{}
	meas     []aggAcc
}

type aggAcc struct {
	n        int64
	sum      float64
	min, max float64
	distinct map[string]struct{}
	values   []float64
}

func newAggregateStage(cfg *config.Aggregate, path string, in *arrow.Schema, mem memory.Allocator) (*aggregateStage, error) {
	s := &aggregateStage{cfg: cfg, mem: mem, timeCol: -1, subject: -1, windows: map[int64]*aggWindow{}, closed: math.MinInt64}
	var errs config.Errors
	col := func(key, name string) int {
		idx := in.FieldIndices(name)
		if len(idx) != 1 {
			errs = append(errs, &config.Error{Pos: cfg.At(key), Key: path + "." + key, Msg: fmt.Sprintf("column %q is not in the output of %q (columns: %s)", name, cfg.Input, fieldList(in))})
			return -1
		}
		return idx[0]
	}
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Pos: cfg.At(key), Key: path + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	fields := []arrow.Field{}
	for _, k := range cfg.GroupBy {
		i := col("group_by", k)
		if i < 0 {
			continue
		}
		t := in.Field(i).Type
		if !keyable(t) {
			bad("group_by", "column %q has type %s, which cannot be a group key", k, t)
		}
		s.keys, s.keyTypes = append(s.keys, i), append(s.keyTypes, t)
		fields = append(fields, arrow.Field{Name: k, Type: t, Nullable: true})
	}
	if cfg.TimeColumn != "" {
		s.timeCol = col("time_column", cfg.TimeColumn)
		s.timeLoc = time.UTC
		if s.timeCol >= 0 {
			switch t := in.Field(s.timeCol).Type.(type) {
			case *arrow.Date32Type:
			case *arrow.TimestampType:
				if t.TimeZone != "" {
					loc, err := time.LoadLocation(t.TimeZone)
					if err != nil {
						bad("time_column", "column %q has time zone %q: %v", cfg.TimeColumn, t.TimeZone, err)
					} else {
						s.timeLoc = loc
					}
				}
			default:
				bad("time_column", "column %q has type %s; expected date32 or timestamp", cfg.TimeColumn, t)
			}
		}
		if cfg.Timezone != "" {
			loc, err := time.LoadLocation(cfg.Timezone)
			if err != nil {
				bad("timezone", "%q is not a time zone: %v", cfg.Timezone, err)
			} else {
				s.timeLoc = loc
			}
		}
		var bound arrow.DataType = arrow.FixedWidthTypes.Date32
		if cfg.WindowLength > 0 {
			// Duration windows start at any second: timestamps in the
			// zone of the windows.
			bound = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: s.timeLoc.String()}
		}
		fields = append(fields,
			arrow.Field{Name: ColWindowStart, Type: bound},
			arrow.Field{Name: ColWindowEnd, Type: bound})
		if cfg.Window == config.WindowSchoolWeek {
			weeks, err := schoolWeeks(cfg.Calendar, s.timeLoc)
			if err != nil {
				bad("calendar", "%v", err)
			}
			s.schoolWeeks = weeks
			fields = append(fields, arrow.Field{Name: ColSchoolWeek, Type: arrow.PrimitiveTypes.Int32})
		}
	}
	if cfg.MinCount > 0 {
		if s.subject = col("subject", cfg.Subject); s.subject >= 0 && !keyable(in.Field(s.subject).Type) {
			bad("subject", "column %q has type %s, which cannot identify a person", cfg.Subject, in.Field(s.subject).Type)
		}
		for _, o := range cfg.SuppressOver {
			s.over = append(s.over, slices.Index(cfg.GroupBy, o))
		}
	}
	for _, m := range cfg.Measures {
		if m.Op == config.MeasureCount {
			s.measCols = append(s.measCols, -1)
			fields = append(fields, arrow.Field{Name: m.Name, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
			continue
		}
		i := col("measures", m.Column)
		s.measCols = append(s.measCols, i)
		if i < 0 {
			continue
		}
		t := in.Field(i).Type
		if m.Op == config.MeasureCountDistinct {
			if !keyable(t) {
				bad("measures", "count_distinct of column %q: type %s cannot be compared", m.Column, t)
			}
			fields = append(fields, arrow.Field{Name: m.Name, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
			continue
		}
		if !numeric(t) {
			bad("measures", "%s of column %q: type %s is not numeric", m.Op, m.Column, t)
		}
		fields = append(fields, arrow.Field{Name: m.Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	if cfg.MinCount > 0 {
		fields = append(fields, arrow.Field{Name: ColSuppressed, Type: arrow.FixedWidthTypes.Boolean})
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			bad("measures", "output column %q is named twice (group_by columns, %s, %s, %s, measures and %s share one schema)", f.Name, ColWindowStart, ColWindowEnd, ColSchoolWeek, ColSuppressed)
		}
		seen[f.Name] = true
	}
	if len(errs) > 0 {
		return nil, errs
	}
	s.schema = arrow.NewSchema(fields, nil)
	return s, nil
}

func numeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64:
		return true
	}
	return false
}

// float returns row i of a numeric column.
func float(c arrow.Array, i int) float64 {
	switch c := c.(type) {
	case *array.Int8:
		return float64(c.Value(i))
	case *array.Int16:
		return float64(c.Value(i))
	case *array.Int32:
		return float64(c.Value(i))
	case *array.Int64:
		return float64(c.Value(i))
	case *array.Uint8:
		return float64(c.Value(i))
	case *array.Uint16:
		return float64(c.Value(i))
	case *array.Uint32:
		return float64(c.Value(i))
	case *array.Uint64:
		return float64(c.Value(i))
	case *array.Float32:
		return float64(c.Value(i))
	case *array.Float64:
		return c.Value(i)
	}
	return math.NaN()
}

// goValue returns row i of a key column as a Go value (nil when null).
func goValue(c arrow.Array, i int) any {
	if c.IsNull(i) {
		return nil
	}
	switch c := c.(type) {
	case *array.String:
		// A copy: Value is a view of the batch's buffer, and the cell
		// keeps its keys after the batch is released, when that buffer
		// may be reused, or unmapped (a body read in place from a
		// plugin's shared memory ring: a fault at the window's close).
		return strings.Clone(c.Value(i))
	case *array.Int32:
		return c.Value(i)
	case *array.Int64:
		return c.Value(i)
	case *array.Date32:
		return c.Value(i)
	case *array.Timestamp:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	}
	return nil
}

// cellKey appends an encoding of row i of cols in which a null differs
// from every value.
func cellKey(b []byte, cols []arrow.Array, i int) []byte {
	for _, c := range cols {
		if c.IsNull(i) {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b, _ = appendKey(b, []arrow.Array{c}, i)
	}
	return b
}

// eventTime returns row i's event time in unix seconds; ok is false for a
// null.
func (s *aggregateStage) eventTime(c arrow.Array, i int) (int64, bool) {
	if c.IsNull(i) {
		return 0, false
	}
	switch c := c.(type) {
	case *array.Date32:
		return int64(c.Value(i)) * 86400, true
	case *array.Timestamp:
		t := c.DataType().(*arrow.TimestampType)
		fn, err := t.GetToTimeFunc()
		if err != nil {
			return 0, false
		}
		return fn(c.Value(i)).Unix(), true
	}
	return 0, false
}

// windows returns the windows holding event time t (unix seconds), in
// s.spans: one for tumbling windows, window/slide for sliding ones, none
// for a time outside every school week. Calendar windows (day, week,
// month, school_week) follow the midnights of the time column's zone;
// duration windows are aligned on the Unix epoch.
func (s *aggregateStage) spansOf(t int64) []aggSpan {
	s.spans = s.spans[:0]
	if l := int64(s.cfg.WindowLength / time.Second); l > 0 {
		step := l
		if s.cfg.SlideLength > 0 {
			step = int64(s.cfg.SlideLength / time.Second)
		}
		// The latest start at or before t, then back while the window
		// still holds t.
		for a := floorDiv(t, step) * step; a > t-l; a -= step {
			s.spans = append(s.spans, aggSpan{start: a, end: a + l})
		}
		return s.spans
	}
	lt := time.Unix(t, 0).In(s.timeLoc)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, s.timeLoc)
	monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	switch s.cfg.Window {
	case config.WindowDay, config.WindowWeek:
		days := 1
		if s.cfg.Window == config.WindowWeek {
			days = 7
		}
		if s.cfg.SlideLength == 0 {
			a := day
			if days == 7 {
				a = monday
			}
			return append(s.spans, aggSpan{start: a.Unix(), end: a.AddDate(0, 0, days).Unix()})
		}
		// Sliding by a day: the windows starting on each of the last
		// days midnights.
		for k := range days {
			a := day.AddDate(0, 0, -k)
			s.spans = append(s.spans, aggSpan{start: a.Unix(), end: a.AddDate(0, 0, days).Unix()})
		}
		return s.spans
	case config.WindowSchoolWeek:
		m := monday.Unix()
		if i, ok := slices.BinarySearch(s.schoolWeeks, m); ok {
			s.spans = append(s.spans, aggSpan{start: m, end: monday.AddDate(0, 0, 7).Unix(), week: int32(i + 1)})
		}
		return s.spans
	}
	a := time.Date(lt.Year(), lt.Month(), 1, 0, 0, 0, 0, s.timeLoc)
	return append(s.spans, aggSpan{start: a.Unix(), end: a.AddDate(0, 1, 0).Unix()})
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// schoolWeeks reads a school calendar CSV (a header naming date and
// half_days, then one row per day) and returns the Mondays, at midnight in
// loc, of the weeks holding a day with half_days > 0, in order.
func schoolWeeks(path string, loc *time.Location) ([]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the school calendar: %w", err)
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("school calendar %s: no header: %w", path, err)
	}
	dc, hc := slices.Index(head, "date"), slices.Index(head, "half_days")
	if dc < 0 || hc < 0 {
		return nil, fmt.Errorf("school calendar %s: the header names %q; expected columns date and half_days", path, strings.Join(head, ","))
	}
	var weeks []int64
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("school calendar %s: %w", path, err)
		}
		if len(rec) <= max(dc, hc) {
			return nil, fmt.Errorf("school calendar %s:%d: %d columns, expected date and half_days", path, line, len(rec))
		}
		d, err := time.ParseInLocation(time.DateOnly, rec[dc], loc)
		if err != nil {
			return nil, fmt.Errorf("school calendar %s:%d: date %q: expected YYYY-MM-DD", path, line, rec[dc])
		}
		n, err := strconv.Atoi(rec[hc])
		if err != nil {
			return nil, fmt.Errorf("school calendar %s:%d: half_days %q: expected a number", path, line, rec[hc])
		}
		if n <= 0 {
			continue
		}
		m := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)).Unix()
		if i, ok := slices.BinarySearch(weeks, m); !ok {
			weeks = slices.Insert(weeks, i, m)
		}
	}
	if len(weeks) == 0 {
		return nil, fmt.Errorf("school calendar %s: no school day (no row with half_days > 0)", path)
	}
	return weeks, nil
}

func (s *aggregateStage) Run(ctx context.Context, st *stream.Stage, ins []*stream.Inbox, out *stream.Outbox) error {
	for {
		rec, err := ins[0].Recv(ctx)
		if errors.Is(err, io.EOF) {
			return s.flush(ctx, out, math.MaxInt64)
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		dead, err := s.add(rec)
		s.mu.Unlock()
		rec.Release()
		if err != nil {
			return err
		}
		if len(dead) > 0 {
			if err := st.DeadLetter(dead...); err != nil {
				return err
			}
		}
		if s.continuous && s.timeCol >= 0 && s.seen {
			if err := s.flush(ctx, out, s.maxEvent-int64(s.cfg.AllowedLateness/time.Second)); err != nil {
				return err
			}
		}
	}
}

// add folds one batch into the open windows; rows without an event time
// or of a closed window are returned as dead letters.
func (s *aggregateStage) add(rec arrow.RecordBatch) ([]stream.DeadLetter, error) {
	keyCols := make([]arrow.Array, len(s.keys))
	for k, c := range s.keys {
		keyCols[k] = rec.Column(c)
	}
	var timeCol, subj arrow.Array
	if s.timeCol >= 0 {
		timeCol = rec.Column(s.timeCol)
	}
	if s.subject >= 0 {
		subj = rec.Column(s.subject)
	}
	var dead []stream.DeadLetter
	var rows []string
	reject := func(i int, reason string) error {
		if rows == nil {
			var err error
			if rows, err = rowsAsJSON(rec); err != nil {
				return err
			}
		}
		dead = append(dead, stream.DeadLetter{Origin: "aggregate " + s.cfg.Name, Reason: reason, Raw: rows[i]})
		return nil
	}
	var key []byte
	var whole [1]aggSpan // the one window of a run without a time column
	newest := s.maxEvent
	for i := range int(rec.NumRows()) {
		spans := whole[:]
		if timeCol != nil {
			t, ok := s.eventTime(timeCol, i)
			if !ok {
				if err := reject(i, fmt.Sprintf("no event time in column %q", s.cfg.TimeColumn)); err != nil {
					return nil, err
				}
				continue
			}
			spans = s.spansOf(t)
			if len(spans) == 0 {
				if err := reject(i, fmt.Sprintf("not in a school week: no school day in the week of %s in the calendar %s",
					time.Unix(t, 0).In(s.timeLoc).Format(time.DateOnly), s.cfg.Calendar)); err != nil {
					return nil, err
				}
				continue
			}
			// A row counts in all its windows or in none: late when the
			// first of them (the one ending first) has closed.
			first := spans[len(spans)-1]
			if first.end <= s.closed {
				if err := reject(i, fmt.Sprintf("late: its %s window starting %s closed when the watermark passed it (allowed_lateness %s)",
					s.cfg.Window, s.format(first.start), s.cfg.AllowedLateness)); err != nil {
					return nil, err
				}
				continue
			}
			if !s.seen || t > newest {
				newest, s.seen = t, true
			}
		}
		key = cellKey(key[:0], keyCols, i)
		for _, sp := range spans {
			s.fold(rec, sp, key, keyCols, subj, i)
		}
	}
	s.maxEvent = newest
	s.peak = max(s.peak, len(s.windows))
	return dead, nil
}

// format writes a window bound for a message.
func (s *aggregateStage) format(t int64) string {
	if s.cfg.WindowLength > 0 {
		return time.Unix(t, 0).In(s.timeLoc).Format(time.RFC3339)
	}
	return time.Unix(t, 0).In(s.timeLoc).Format(time.DateOnly)
}

// fold adds row i of rec to its cell of window sp.
func (s *aggregateStage) fold(rec arrow.RecordBatch, sp aggSpan, key []byte, keyCols []arrow.Array, subj arrow.Array, i int) {
	w := s.windows[sp.start]
	if w == nil {
		w = &aggWindow{start: sp.start, end: sp.end, week: sp.week, cells: map[string]*aggCell{}}
		s.windows[sp.start] = w
	}
	c := w.cells[string(key)]
	if c == nil {
		c = &aggCell{meas: make([]aggAcc, len(s.measCols))}
		for _, kc := range keyCols {
			c.keys = append(c.keys, goValue(kc, i))
		}
		if subj != nil {
			c.subjects = map[string]struct{}{}
		}
		w.cells[string(key)] = c
	}
	c.rows++
	if subj != nil && subj.IsValid(i) {
		s.val, _ = appendKey(s.val[:0], []arrow.Array{subj}, i)
		c.subjects[string(s.val)] = struct{}{}
	}
	for m, mc := range s.measCols {
		if mc < 0 {
			continue
		}
		col := rec.Column(mc)
		if col.IsNull(i) {
			continue
		}
		a := &c.meas[m]
		switch s.cfg.Measures[m].Op {
		case config.MeasureCountDistinct:
			if a.distinct == nil {
				a.distinct = map[string]struct{}{}
			}
			s.val, _ = appendKey(s.val[:0], []arrow.Array{col}, i)
			a.distinct[string(s.val)] = struct{}{}
			continue
		case config.MeasureQuantile:
			a.values = append(a.values, float(col, i))
		}
		v := float(col, i)
		if a.n == 0 || v < a.min {
			a.min = v
		}
		if a.n == 0 || v > a.max {
			a.max = v
		}
		a.n++
		a.sum += v
	}

}

// flush emits, oldest first, every window ending at or before watermark
// and drops its state.
func (s *aggregateStage) flush(ctx context.Context, out *stream.Outbox, watermark int64) error {
	s.mu.Lock()
	recs := s.close(watermark)
	s.mu.Unlock()
	for i, rec := range recs {
		if err := out.Send(ctx, rec); err != nil {
			for _, r := range recs[i+1:] {
				r.Release()
			}
			return err
		}
	}
	return nil
}

// close removes the windows ending at or before watermark from the state
// and returns their output: one batch, or for cumulative windows one per
// window (each is built before the next window folds into the year to
// date); none when no window closes.
func (s *aggregateStage) close(watermark int64) []arrow.RecordBatch {
	var due []*aggWindow
	for _, w := range s.windows {
		if w.end <= watermark || watermark == math.MaxInt64 {
			due = append(due, w)
		}
	}
	if watermark != math.MaxInt64 {
		s.closed = max(s.closed, watermark)
	}
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(a, b *aggWindow) int { return cmp.Compare(a.start, b.start) })
	var cells []*aggCell
	var starts, ends []int64
	var weeks []int32
	var withheld []bool
	var recs []arrow.RecordBatch
	emit := func() {
		if len(cells) > 0 {
			recs = append(recs, s.build(cells, starts, ends, weeks, withheld))
			cells, starts, ends, weeks, withheld = nil, nil, nil, nil, nil
		}
	}
	for _, w := range due {
		delete(s.windows, w.start)
		src, start := w.cells, w.start
		if s.cfg.Cumulative {
			// Windows close in order: fold this one into the year to
			// date and publish every key's cell so far.
			if s.running == nil {
				s.running, s.runStart = map[string]*aggCell{}, w.start
			}
			for k, c := range w.cells {
				if r := s.running[k]; r != nil {
					r.merge(c)
				} else {
					s.running[k] = c
				}
			}
			src, start = s.running, s.runStart
		}
		list := make([]*aggCell, 0, len(src))
		for _, c := range src {
			list = append(list, c)
		}
		slices.SortFunc(list, func(a, b *aggCell) int { return compareKeys(a.keys, b.keys) })
		var sup []bool
		if s.cfg.MinCount > 0 {
			sup = suppress(list, s.cfg.MinCount, s.over)
		}
		for i, c := range list {
			cells = append(cells, c)
			starts, ends, weeks = append(starts, start), append(ends, w.end), append(weeks, w.week)
			withheld = append(withheld, sup != nil && sup[i])
		}
		if s.cfg.Cumulative {
			emit()
		}
	}
	emit()
	return recs
}

// merge adds the rows of o, a cell of the same key, to c.
func (c *aggCell) merge(o *aggCell) {
	c.rows += o.rows
	for k := range o.subjects {
		c.subjects[k] = struct{}{}
	}
	for m := range c.meas {
		a, b := &c.meas[m], &o.meas[m]
		if b.n > 0 {
			if a.n == 0 || b.min < a.min {
				a.min = b.min
			}
			if a.n == 0 || b.max > a.max {
				a.max = b.max
			}
		}
		a.n += b.n
		a.sum += b.sum
		a.values = append(a.values, b.values...)
		if b.distinct != nil {
			if a.distinct == nil {
				a.distinct = map[string]struct{}{}
			}
			for k := range b.distinct {
				a.distinct[k] = struct{}{}
			}
		}
	}
}

func compareKeys(a, b []any) int {
	for i := range a {
		x, y := a[i], b[i]
		switch {
		case x == nil && y == nil:
			continue
		case x == nil:
			return -1
		case y == nil:
			return 1
		}
		var c int
		switch x := x.(type) {
		case string:
			c = cmp.Compare(x, y.(string))
		case int32:
			c = cmp.Compare(x, y.(int32))
		case int64:
			c = cmp.Compare(x, y.(int64))
		case arrow.Date32:
			c = cmp.Compare(x, y.(arrow.Date32))
		case arrow.Timestamp:
			c = cmp.Compare(x, y.(arrow.Timestamp))
		case bool:
			if x != y.(bool) {
				c = -1
				if x {
					c = 1
				}
			}
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// build makes the output batch of cells.
func (s *aggregateStage) build(cells []*aggCell, starts, ends []int64, weeks []int32, withheld []bool) arrow.RecordBatch {
	b := array.NewRecordBuilder(s.mem, s.schema)
	defer b.Release()
	f := 0
	for k := range s.keys {
		fb := b.Field(f)
		for _, c := range cells {
			appendGo(fb, c.keys[k])
		}
		f++
	}
	if s.timeCol >= 0 {
		for _, t := range [][]int64{starts, ends} {
			if tb, ok := b.Field(f).(*array.TimestampBuilder); ok {
				for _, v := range t {
					tb.Append(arrow.Timestamp(v * 1_000_000))
				}
				f++
				continue
			}
			db := b.Field(f).(*array.Date32Builder)
			for _, v := range t {
				// Window bounds are midnights in the time column's zone:
				// the date is that zone's calendar day.
				lt := time.Unix(v, 0).In(s.timeLoc)
				db.Append(arrow.Date32FromTime(time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)))
			}
			f++
		}
		if s.schoolWeeks != nil {
			b.Field(f).(*array.Int32Builder).AppendValues(weeks, nil)
			f++
		}
	}
	for m, ms := range s.cfg.Measures {
		fb := b.Field(f)
		for i, c := range cells {
			a := &c.meas[m]
			if withheld[i] {
				fb.AppendNull()
				continue
			}
			switch ms.Op {
			case config.MeasureCount:
				fb.(*array.Int64Builder).Append(c.rows)
			case config.MeasureCountDistinct:
				fb.(*array.Int64Builder).Append(int64(len(a.distinct)))
			default:
				if a.n == 0 && ms.Op != config.MeasureSum {
					fb.AppendNull()
					continue
				}
				fb.(*array.Float64Builder).Append(a.value(ms))
			}
		}
		f++
	}
	if s.cfg.MinCount > 0 {
		bb := b.Field(f).(*array.BooleanBuilder)
		for i := range cells {
			bb.Append(withheld[i])
		}
	}
	return b.NewRecordBatch()
}

func (a *aggAcc) value(ms config.Measure) float64 {
	switch ms.Op {
	case config.MeasureSum:
		return a.sum
	case config.MeasureMean:
		return a.sum / float64(a.n)
	case config.MeasureMin:
		return a.min
	case config.MeasureMax:
		return a.max
	}
	slices.Sort(a.values)
	// Type 7: h = (n-1)q, interpolate between the values around h.
	h := float64(len(a.values)-1) * ms.Quantile
	lo := int(math.Floor(h))
	if lo+1 >= len(a.values) {
		return a.values[lo]
	}
	return a.values[lo] + (h-float64(lo))*(a.values[lo+1]-a.values[lo])
}

func appendGo(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.Int32Builder:
		b.Append(v.(int32))
	case *array.Int64Builder:
		b.Append(v.(int64))
	case *array.Date32Builder:
		b.Append(v.(arrow.Date32))
	case *array.TimestampBuilder:
		b.Append(v.(arrow.Timestamp))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	}
}

// suppress decides which cells of one window are withheld. Primary: a
// cell with fewer than minCount distinct subjects. Secondary: for each
// column of over (positions in the keys), the cells that agree on every
// other key are siblings whose total over that column may be published;
// cells are withheld, smallest first, until no withheld cell can be
// solved for from those totals: no sibling set has exactly one withheld
// cell, and no withheld cell is determined by the linear system the
// totals give (checked by elimination; a cell can be pinned through
// several sets even when each holds two withheld cells).
func suppress(cells []*aggCell, minCount int, over []int) []bool {
	sup := make([]bool, len(cells))
	for i, c := range cells {
		sup[i] = len(c.subjects) < minCount
	}
	// sets lists the sibling sets with more than one cell.
	var sets [][]int
	for _, o := range over {
		groups := map[string][]int{}
		var order []string
		for i, c := range cells {
			var k []byte
			for j, v := range c.keys {
				if j != o {
					k = fmt.Appendf(k, "%T:%v\x00", v, v)
				}
			}
			if _, ok := groups[string(k)]; !ok {
				order = append(order, string(k))
			}
			groups[string(k)] = append(groups[string(k)], i)
		}
		for _, k := range order {
			if len(groups[k]) > 1 {
				sets = append(sets, groups[k])
			}
		}
	}
	// smallest returns the published cell of set with the fewest subjects
	// (then rows, then order), or -1.
	smallest := func(set []int) int {
		best := -1
		for _, i := range set {
			if sup[i] {
				continue
			}
			if best < 0 || len(cells[i].subjects) < len(cells[best].subjects) ||
				(len(cells[i].subjects) == len(cells[best].subjects) && cells[i].rows < cells[best].rows) {
				best = i
			}
		}
		return best
	}
	for {
		changed := false
		for _, set := range sets {
			n := 0
			for _, i := range set {
				if sup[i] {
					n++
				}
			}
			if n == 1 {
				if j := smallest(set); j >= 0 {
					sup[j], changed = true, true
				}
			}
		}
		if changed {
			continue
		}
		i := determined(sup, sets)
		if i < 0 {
			return sup
		}
		// Withhold one more cell of a set holding the determined cell.
		for _, set := range sets {
			if slices.Contains(set, i) {
				if j := smallest(set); j >= 0 {
					sup[j], changed = true, true
					break
				}
			}
		}
		if !changed {
			return sup // every sibling is withheld: nothing left to add
		}
	}
}

// determined returns a withheld cell that the sibling totals determine,
// or -1. Each set with withheld cells gives one equation over them; a cell
// is determined when its unit vector is in the equations' row space, which
// Gauss-Jordan elimination shows as a reduced row with one nonzero entry.
func determined(sup []bool, sets [][]int) int {
	col := map[int]int{}
	var vars []int
	for i, s := range sup {
		if s {
			col[i] = len(vars)
			vars = append(vars, i)
		}
	}
	var rows [][]float64
	for _, set := range sets {
		var r []float64
		for _, i := range set {
			if sup[i] {
				if r == nil {
					r = make([]float64, len(vars))
				}
				r[col[i]] = 1
			}
		}
		if r != nil {
			rows = append(rows, r)
		}
	}
	const eps = 1e-9
	pivot := 0
	for c := 0; c < len(vars) && pivot < len(rows); c++ {
		best := -1
		for r := pivot; r < len(rows); r++ {
			if math.Abs(rows[r][c]) > eps && (best < 0 || math.Abs(rows[r][c]) > math.Abs(rows[best][c])) {
				best = r
			}
		}
		if best < 0 {
			continue
		}
		rows[pivot], rows[best] = rows[best], rows[pivot]
		p := rows[pivot][c]
		for k := range rows[pivot] {
			rows[pivot][k] /= p
		}
		for r := range rows {
			if r != pivot && math.Abs(rows[r][c]) > eps {
				f := rows[r][c]
				for k := range rows[r] {
					rows[r][k] -= f * rows[pivot][k]
				}
			}
		}
		pivot++
	}
	for _, r := range rows[:pivot] {
		nz, at := 0, -1
		for k, v := range r {
			if math.Abs(v) > eps {
				nz++
				at = k
			}
		}
		if nz == 1 {
			return vars[at]
		}
	}
	return -1
}

var _ stream.Merge = (*aggregateStage)(nil)
