package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Aggregate is an [[aggregate]] table: it groups the rows of its input by
// key columns and, with a time column, into tumbling calendar windows,
// computes measures per group and window, and emits one row per group
// when the window closes (at the end of a batch run; in a continuous run
// when the watermark passes the window's end). Cells computed from fewer
// than MinCount distinct subjects are withheld (small-cell suppression).
type Aggregate struct {
	Name    string
	Input   string
	GroupBy []string // key columns; none: one cell per window
	// TimeColumn holds each row's event time (date32 or timestamp); ""
	// makes the whole run one window.
	TimeColumn string
	// Window is WindowDay, WindowWeek (ISO, from Monday), WindowMonth,
	// WindowSchoolWeek (a week with school days in Calendar, stretched over
	// the holidays that follow it) or a duration such as "1h" or "15m"
	// (then WindowLength); "" when there is no time column.
	Window string
	// WindowLength is the length of a duration window, 0 for a calendar one.
	WindowLength time.Duration
	// Slide makes the windows sliding: a new window starts every Slide
	// ("day" for day and week windows, a duration dividing WindowLength
	// for duration windows). "" (the default) makes them tumbling.
	Slide string
	// SlideLength is Slide as a duration (24h for "day"); 0 for tumbling
	// windows.
	SlideLength time.Duration
	// Cumulative makes the windows expanding: when a window closes, each
	// key's cell covers every row from the start of the first window to
	// the end of this one (the year to date), not this window's alone.
	Cumulative bool
	// Calendar is the school calendar CSV (columns date and half_days,
	// as vigie gen writes calendar.csv) a school_week window reads,
	// resolved against the pipeline file's folder.
	Calendar string
	// Timezone, when set, is the IANA zone whose calendar days, weeks and
	// months the windows follow; "" takes the time column's own zone
	// (UTC for a date32 or a timestamp without one).
	Timezone string
	// AllowedLateness: a window closes once the newest event time seen
	// minus this passes its end; rows for a closed window are late and
	// go to the dead letters.
	AllowedLateness time.Duration
	Measures        []Measure
	// MinCount is the smallest number of distinct Subject values a
	// published cell may be computed from (default DefaultMinCount); 0
	// turns suppression off.
	MinCount int
	// Subject is the column whose distinct values are counted against
	// MinCount (the student); required unless MinCount is 0.
	Subject string
	// SuppressOver lists the key columns whose totals may be published:
	// cells that differ only in one of these columns are siblings, and
	// secondary suppression keeps a withheld sibling from being the only
	// one. Default: every GroupBy column.
	SuppressOver []string
	Pos          Pos            // the [[aggregate]] header
	KeyPos       map[string]Pos // line of each key present
}

// Measure is one output column of an aggregate: Op applied to Column
// (Column is "" for count).
type Measure struct {
	Name     string
	Op       string // one of the Measure* constants
	Column   string
	Quantile float64 // for MeasureQuantile, in [0, 1]
}

// Measure operations and window sizes of an [[aggregate]].
const (
	MeasureCount         = "count"
	MeasureCountDistinct = "count_distinct"
	MeasureSum           = "sum"
	MeasureMean          = "mean"
	MeasureMin           = "min"
	MeasureMax           = "max"
	MeasureQuantile      = "quantile"

	WindowDay   = "day"
	WindowWeek  = "week"
	WindowMonth = "month"
	// WindowSchoolWeek is a week (from Monday) with at least one school
	// day in the calendar; the holidays after it belong to it.
	WindowSchoolWeek = "school_week"
	// SlideDay starts a sliding day or week window at every midnight.
	SlideDay = "day"

	// DefaultMinCount is the threshold French official statistics apply
	// to data on persons.
	DefaultMinCount = 11
)

// At returns the line of key in the table, or the header's when the key
// is absent.
func (a *Aggregate) At(key string) Pos {
	if p, ok := a.KeyPos[key]; ok {
		return p
	}
	return a.Pos
}

func aggregateFields() []field {
	return []field{
		{"name", kString, true},
		{"input", kString, true},
		{"group_by", kStrings, false},
		{"time_column", kString, false},
		{"window", kString, false},
		{"slide", kString, false},
		{"calendar", kString, false},
		{"cumulative", kBool, false},
		{"timezone", kString, false},
		{"allowed_lateness", kString, false},
		{"measures", kStrings, true},
		{"min_count", kInteger, false},
		{"subject", kString, false},
		{"suppress_over", kStrings, false},
	}
}

// measureRE reads "name = op(column)" or "name = quantile(column, q)".
var measureRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([a-z_]+)\(\s*([A-Za-z0-9_]*)\s*(?:,\s*([0-9.]+)\s*)?\)\s*$`)
})

// ParseMeasure reads one entry of an aggregate's measures key, such as
// "students = count_distinct(student_id)" or "p90 = quantile(score, 0.9)".
func ParseMeasure(s string) (Measure, error) {
	m := measureRE().FindStringSubmatch(s)
	if m == nil {
		return Measure{}, fmt.Errorf("expected \"name = op(column)\", such as \"mean_score = mean(score)\", got %q", s)
	}
	ms := Measure{Name: m[1], Op: m[2], Column: m[3]}
	ops := []string{MeasureCount, MeasureCountDistinct, MeasureSum, MeasureMean, MeasureMin, MeasureMax, MeasureQuantile}
	switch {
	case !slices.Contains(ops, ms.Op):
		return Measure{}, fmt.Errorf("unknown operation %q in %q: allowed operations are %s", ms.Op, s, strings.Join(ops, ", "))
	case ms.Op == MeasureCount && ms.Column != "":
		return Measure{}, fmt.Errorf("count takes no column in %q: write count()", s)
	case ms.Op != MeasureCount && ms.Column == "":
		return Measure{}, fmt.Errorf("%s needs a column in %q", ms.Op, s)
	case ms.Op == MeasureQuantile && m[4] == "":
		return Measure{}, fmt.Errorf("quantile needs a level in %q, such as quantile(score, 0.9)", s)
	case ms.Op != MeasureQuantile && m[4] != "":
		return Measure{}, fmt.Errorf("%s takes one argument in %q", ms.Op, s)
	}
	if ms.Op == MeasureQuantile {
		q, err := strconv.ParseFloat(m[4], 64)
		if err != nil || q < 0 || q > 1 {
			return Measure{}, fmt.Errorf("quantile level in %q must be between 0 and 1", s)
		}
		ms.Quantile = q
	}
	return ms, nil
}

func (c *checker) aggregate(p *Pipeline, path string, m map[string]any) *Aggregate {
	a := &Aggregate{Pos: c.at(path), KeyPos: map[string]Pos{}, MinCount: DefaultMinCount}
	v := c.fields(path, a.Pos, m, aggregateFields())
	for k := range m {
		a.KeyPos[k] = c.at(path + "." + k)
	}
	a.Name = c.stageName(path, v["name"])
	a.Input = c.nonEmpty(path+".input", v["input"])
	a.GroupBy = c.strings(v["group_by"])
	if _, ok := v["time_column"]; ok {
		a.TimeColumn = c.nonEmpty(path+".time_column", v["time_column"])
	}
	windows := []string{WindowDay, WindowWeek, WindowMonth, WindowSchoolWeek}
	if w, ok := v["window"].(string); ok {
		if !slices.Contains(windows, w) {
			d, err := parseRetention(w)
			switch {
			case err != nil:
				c.fail(c.at(path+".window"), path+".window", "invalid value %q: allowed values are %q, %q, %q, %q or a duration such as \"1h\" or \"15m\"", w, WindowDay, WindowWeek, WindowMonth, WindowSchoolWeek)
			case d < time.Second || d%time.Second != 0:
				c.fail(c.at(path+".window"), path+".window", "a window lasts whole seconds, at least one, got %q", w)
			}
			a.WindowLength = d
		}
		a.Window = w
	}
	if s, ok := v["slide"].(string); ok {
		a.Slide = s
		switch {
		case a.Window == WindowDay || a.Window == WindowWeek:
			if s != SlideDay {
				c.fail(c.at(path+".slide"), path+".slide", "a %s window slides by %q, got %q", a.Window, SlideDay, s)
			}
			a.SlideLength = 24 * time.Hour
		case a.WindowLength > 0:
			d, err := parseRetention(s)
			if err != nil || d < time.Second || d%time.Second != 0 || a.WindowLength%d != 0 {
				c.fail(c.at(path+".slide"), path+".slide", "expected a duration of whole seconds dividing the window (%s), such as \"5m\", got %q", a.Window, s)
			}
			a.SlideLength = d
		default:
			c.fail(c.at(path+".slide"), path+".slide", "only day, week and duration windows slide, not %q", a.Window)
		}
	}
	if b, ok := v["cumulative"].(bool); ok {
		a.Cumulative = b
		if b && (a.Window == "" || a.Slide != "") {
			c.fail(c.at(path+".cumulative"), path+".cumulative", "cumulative windows expand a tumbling window: set window (and time_column), without slide")
		}
	}
	if s, ok := v["calendar"].(string); ok {
		if a.Window != WindowSchoolWeek {
			c.fail(c.at(path+".calendar"), path+".calendar", "a calendar is read by school_week windows only (window = %q)", a.Window)
		}
		a.Calendar = p.Resolve(c.nonEmpty(path+".calendar", s))
	}
	if a.Window == WindowSchoolWeek && a.Calendar == "" {
		c.fail(a.Pos, path, "a school_week window needs the school calendar: set calendar to its CSV file (columns date and half_days, as vigie gen writes calendar.csv)")
	}
	if (a.TimeColumn == "") != (a.Window == "") {
		c.fail(a.Pos, path, "time_column and window go together: set both (windows on event time) or neither (one result for the whole run)")
	}
	if tz, ok := v["timezone"].(string); ok {
		if _, err := time.LoadLocation(tz); err != nil || tz == "" {
			c.fail(c.at(path+".timezone"), path+".timezone", "%q is not a time zone: expected an IANA name such as \"Europe/Paris\"", tz)
		}
		a.Timezone = tz
	}
	if s, ok := v["allowed_lateness"].(string); ok {
		d, err := parseRetention(s)
		if err != nil || d < 0 {
			c.fail(c.at(path+".allowed_lateness"), path+".allowed_lateness", "expected a duration such as \"2d\" or \"36h\", got %q", s)
		}
		a.AllowedLateness = d
	}
	names := map[string]bool{}
	for _, g := range a.GroupBy {
		names[g] = true
	}
	for _, s := range c.strings(v["measures"]) {
		ms, err := ParseMeasure(s)
		if err != nil {
			c.fail(c.at(path+".measures"), path+".measures", "%s", err)
			continue
		}
		if names[ms.Name] {
			c.fail(c.at(path+".measures"), path+".measures", "output column %q is named twice", ms.Name)
		}
		names[ms.Name] = true
		a.Measures = append(a.Measures, ms)
	}
	if _, ok := v["measures"]; ok && len(a.Measures) == 0 && len(c.strings(v["measures"])) == 0 {
		c.fail(c.at(path+".measures"), path+".measures", "must list at least one measure")
	}
	if n, ok := v["min_count"].(int64); ok {
		if n < 0 {
			c.fail(c.at(path+".min_count"), path+".min_count", "must be 0 (no suppression) or more, got %d", n)
		}
		a.MinCount = int(n)
	}
	if _, ok := v["subject"]; ok {
		a.Subject = c.nonEmpty(path+".subject", v["subject"])
	}
	if a.MinCount > 0 && a.Subject == "" {
		c.fail(a.Pos, path, "small-cell suppression (min_count = %d) counts distinct persons: name their column in subject, or set min_count = 0 for data that is not about persons", a.MinCount)
	}
	a.SuppressOver = slices.Clone(a.GroupBy)
	if _, ok := v["suppress_over"]; ok {
		a.SuppressOver = c.strings(v["suppress_over"])
		for _, s := range a.SuppressOver {
			if !slices.Contains(a.GroupBy, s) {
				c.fail(c.at(path+".suppress_over"), path+".suppress_over", "%q is not a group_by column", s)
			}
		}
	}
	return a
}
