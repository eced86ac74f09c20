package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
)

// windowCase is one window definition of TestAggregateWindows with its
// own membership test, written from the definition and not from the
// stage's code: member lists the windows (start, end) holding t among the
// candidates starts.
type windowCase struct {
	name string
	cfg  func(*config.Aggregate)
	// member returns the windows holding t, as "start|end" in the output's
	// text form, and for school weeks the week number.
	member func(t time.Time) []string
	// peak bounds the windows open at once in a continuous run.
	peak int
}

// testCalendar writes a school calendar from 2026-08-31 to 2026-12-31:
// weekdays are school days (Wednesday a half-day) except the Toussaint
// holidays, 17 October to 1 November.
func testCalendar(t *testing.T) (path string, schoolDay func(time.Time) bool) {
	t.Helper()
	holiday := func(d time.Time) bool {
		return !d.Before(time.Date(2026, 10, 17, 0, 0, 0, 0, time.UTC)) && d.Before(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	}
	schoolDay = func(d time.Time) bool {
		return d.Weekday() != time.Saturday && d.Weekday() != time.Sunday && !holiday(d)
	}
	var b strings.Builder
	b.WriteString("date,weekday,half_days,holiday\n")
	for d := time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		n := 0
		if schoolDay(d) {
			n = 2
			if d.Weekday() == time.Wednesday {
				n = 1
			}
		}
		name := ""
		if holiday(d) {
			name = "Toussaint"
		}
		fmt.Fprintf(&b, "%s,%s,%d,%s\n", d.Format(time.DateOnly), strings.ToLower(d.Weekday().String()), n, name)
	}
	path = filepath.Join(t.TempDir(), "calendar.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, schoolDay
}

func TestAggregateWindows(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	calendar, schoolDay := testCalendar(t)
	day := func(t time.Time) time.Time { // the Paris date, as a UTC midnight
		lt := t.In(paris)
		return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
	}
	dates := func(a, b time.Time) string { return a.Format(time.DateOnly) + "|" + b.Format(time.DateOnly) }
	stamps := func(a, b time.Time) string {
		f := func(x time.Time) string { return x.In(paris).Format(time.RFC3339) }
		return f(a) + "|" + f(b)
	}
	// epochWindows enumerates every window start k*slide from the first
	// row on and keeps those holding t.
	epochWindows := func(length, slide time.Duration) func(time.Time) []string {
		return func(t time.Time) []string {
			var out []string
			for a := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC); a.Before(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); a = a.Add(slide) {
				if !t.Before(a) && t.Before(a.Add(length)) {
					out = append(out, stamps(a, a.Add(length)))
				}
			}
			return out
		}
	}
	// School weeks: the Mondays of weeks with a school day, numbered.
	var mondays []time.Time
	for d := time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC); d.Year() == 2026; d = d.AddDate(0, 0, 7) {
		for k := range 7 {
			if schoolDay(d.AddDate(0, 0, k)) {
				mondays = append(mondays, d)
				break
			}
		}
	}
	cases := []windowCase{
		{
			name: "week sliding by day",
			cfg: func(c *config.Aggregate) {
				c.Window, c.Slide, c.SlideLength = config.WindowWeek, config.SlideDay, 24*time.Hour
			},
			member: func(t time.Time) []string {
				var out []string
				for a := time.Date(2026, 8, 20, 0, 0, 0, 0, time.UTC); a.Before(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)); a = a.AddDate(0, 0, 1) {
					if d := day(t); !d.Before(a) && d.Before(a.AddDate(0, 0, 7)) {
						out = append(out, dates(a, a.AddDate(0, 0, 7)))
					}
				}
				return out
			},
			// Seven windows hold each day, plus a day of lateness, plus the
			// day of rows one batch brings before the stage flushes.
			peak: 7 + 2 + 1,
		},
		{
			name:   "one hour",
			cfg:    func(c *config.Aggregate) { c.Window, c.WindowLength = "1h", time.Hour },
			member: epochWindows(time.Hour, time.Hour),
			// A day of lateness, a batch (20 rows: 6.4 hours), the hour
			// itself, and the watermark's jumps (rows come up to 20 hours
			// early); the run spans 1,900 hours.
			peak: 24 + 7 + 2 + 7,
		},
		{
			name: "six hours sliding by 90 minutes",
			cfg: func(c *config.Aggregate) {
				c.Window, c.WindowLength, c.Slide, c.SlideLength = "6h", 6*time.Hour, "90m", 90*time.Minute
			},
			member: epochWindows(6*time.Hour, 90*time.Minute),
			peak:   4 + (24*60+7*60)/90 + 1 + 4,
		},
		{
			name: "school week",
			cfg:  func(c *config.Aggregate) { c.Window, c.Calendar = config.WindowSchoolWeek, calendar },
			member: func(t time.Time) []string {
				d := day(t)
				for i, m := range mondays {
					if !d.Before(m) && d.Before(m.AddDate(0, 0, 7)) {
						return []string{dates(m, m.AddDate(0, 0, 7)) + fmt.Sprintf("|%d", i+1)}
					}
				}
				return nil
			},
			peak: 3,
		},
	}
	rows := genEvalRows(11, 6000, 5, 80, 20*time.Hour)
	for _, wc := range cases {
		// The recomputation: rows and students per school and window.
		type cell struct {
			rows     int
			students map[int64]bool
		}
		want := map[string]*cell{}
		holidayRows := 0
		for _, r := range rows {
			ws := wc.member(r.at)
			if len(ws) == 0 {
				holidayRows++
			}
			for _, w := range ws {
				k := r.school + "|" + w
				if want[k] == nil {
					want[k] = &cell{students: map[int64]bool{}}
				}
				want[k].rows++
				want[k].students[r.student] = true
			}
		}
		for _, continuous := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/continuous=%v", wc.name, continuous), func(t *testing.T) {
				cfg := &config.Aggregate{GroupBy: []string{"school"}, TimeColumn: "at", Timezone: "Europe/Paris", AllowedLateness: 24 * time.Hour}
				for _, s := range []string{"n = count()", "students = count_distinct(student)"} {
					m, err := config.ParseMeasure(s)
					if err != nil {
						t.Fatal(err)
					}
					cfg.Measures = append(cfg.Measures, m)
				}
				wc.cfg(cfg)
				got, st := runAggregateStage(t, cfg, rows, 20, continuous)
				if len(got.dead) != holidayRows {
					t.Errorf("%d dead letters, want %d (rows outside every window)", len(got.dead), holidayRows)
				}
				for _, d := range got.dead {
					if !strings.Contains(d.Reason, "not in a school week") {
						t.Errorf("dead letter %q", d.Reason)
						break
					}
				}
				if len(st.windows) != 0 {
					t.Errorf("%d windows left open", len(st.windows))
				}
				if continuous && st.peak > wc.peak {
					t.Errorf("up to %d windows open at once, want at most %d", st.peak, wc.peak)
				}
				if len(got.rows) != len(want) {
					t.Errorf("%d cells, want %d", len(got.rows), len(want))
				}
				for _, g := range got.rows {
					k := g["school"] + "|" + g[ColWindowStart] + "|" + g[ColWindowEnd]
					if wc.cfg != nil && cfg.Window == config.WindowSchoolWeek {
						k += "|" + g[ColSchoolWeek]
					}
					w := want[k]
					if w == nil {
						t.Fatalf("unexpected cell %s (want e.g. %s)", k, slices.Collect(mapKeys(want, 1)))
					}
					if g["n"] != fmt.Sprint(w.rows) || g["students"] != fmt.Sprint(len(w.students)) {
						t.Errorf("%s: n %s students %s, want %d and %d", k, g["n"], g["students"], w.rows, len(w.students))
					}
				}
			})
		}
	}
}

// mapKeys yields up to n keys of m.
func mapKeys[V any](m map[string]V, n int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if n == 0 || !yield(k) {
				return
			}
			n--
		}
	}
}

// TestAggregateSlidingLateRow: a row whose first sliding window has
// closed counts in none of its windows, even those still open, and is
// dead-lettered; a batch run counts it in all seven.
func TestAggregateSlidingLateRow(t *testing.T) {
	rows := genEvalRows(5, 2000, 3, 30, time.Hour)
	late := rows[100]
	late.school = "late-school"
	late.at = rows[len(rows)/2].at.Add(-50 * time.Hour) // its first window closed two days ago
	rows = slices.Insert(rows, len(rows)/2+1, late)
	cfg := func() *config.Aggregate {
		m, _ := config.ParseMeasure("n = count()")
		return &config.Aggregate{GroupBy: []string{"school"}, TimeColumn: "at", Window: config.WindowWeek, Slide: config.SlideDay,
			SlideLength: 24 * time.Hour, Measures: []config.Measure{m}}
	}
	got := runAggregate(t, cfg(), rows, 50, true)
	if len(got.dead) != 1 || !strings.Contains(got.dead[0].Reason, "late") {
		t.Fatalf("dead letters %+v, want the late row", got.dead)
	}
	for _, g := range got.rows {
		if g["school"] == "late-school" {
			t.Errorf("the late row counted in %v", g)
		}
	}
	got = runAggregate(t, cfg(), rows, 50, false)
	n := 0
	for _, g := range got.rows {
		if g["school"] == "late-school" {
			n++
		}
	}
	if n != 7 {
		t.Errorf("batch run: the row is in %d windows, want 7", n)
	}
}

func TestSchoolWeeksCalendarErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, text, want string }{
		{"no columns", "day,halves\n2026-09-01,2\n", "expected columns date and half_days"},
		{"bad date", "date,half_days\n2026-09-01,2\n01/09/2026,2\n", "calendar.csv:3: date \"01/09/2026\""},
		{"bad half days", "date,half_days\n2026-09-01,two\n", "half_days \"two\""},
		{"no school day", "date,half_days\n2026-09-01,0\n", "no school day"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "calendar.csv")
			if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := schoolWeeks(p, time.UTC)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := schoolWeeks(filepath.Join(dir, "missing.csv"), time.UTC); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// BenchmarkAggregateWindows folds 100,000 rows (12 schools, 60 days) into
// tumbling and sliding windows, continuously: the cost of a row is one
// fold per window holding it.
//
//	go test ./engine/pipeline/ -run '^$' -bench AggregateWindows -benchmem
func BenchmarkAggregateWindows(b *testing.B) {
	rows := genEvalRows(3, 100_000, 12, 60, time.Hour)
	mem := memory.NewGoAllocator()
	batches := make([]arrow.RecordBatch, 0, len(rows)/1000)
	for lo := 0; lo < len(rows); lo += 1000 {
		batches = append(batches, evalBatch(mem, rows[lo:min(lo+1000, len(rows))]))
	}
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	for _, tc := range []struct {
		name string
		set  func(*config.Aggregate)
	}{
		{"week", func(c *config.Aggregate) {}},
		{"week-sliding-day", func(c *config.Aggregate) { c.Slide, c.SlideLength = config.SlideDay, 24*time.Hour }},
		{"1h", func(c *config.Aggregate) { c.Window, c.WindowLength = "1h", time.Hour }},
		{"1h-sliding-15m", func(c *config.Aggregate) {
			c.Window, c.WindowLength, c.Slide, c.SlideLength = "1h", time.Hour, "15m", 15*time.Minute
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := weeklyConfig(0)
			cfg.Name, cfg.Input = "agg", "in"
			tc.set(cfg)
			b.ReportAllocs()
			for b.Loop() {
				st, err := newAggregateStage(cfg, "aggregate[0]", evalSchema, mem)
				if err != nil {
					b.Fatal(err)
				}
				for _, rec := range batches {
					if _, err := st.add(rec); err != nil {
						b.Fatal(err)
					}
					for _, out := range st.close(st.maxEvent - int64(cfg.AllowedLateness/time.Second)) {
						out.Release()
					}
				}
				for _, out := range st.close(math.MaxInt64) {
					out.Release()
				}
			}
			b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestAggregateCumulative: with cumulative = true, each week's output
// holds, for every key seen so far, the rows from the first week's start
// to this week's end: checked against a recomputation over the input, in
// a batch run and a continuous one (where the year to date comes out as
// each week closes).
func TestAggregateCumulative(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	rows := genEvalRows(17, 5000, 6, 50, 10*time.Hour)
	monday := func(at time.Time) time.Time {
		lt := at.In(paris)
		d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	}
	// The weeks with rows, and the first.
	weeks := map[time.Time]bool{}
	first := monday(rows[0].at)
	for _, r := range rows {
		m := monday(r.at)
		weeks[m] = true
		if m.Before(first) {
			first = m
		}
	}
	type cell struct {
		rows     int
		students map[int64]bool
		scores   []float64
	}
	want := map[string]*cell{}
	for w := range weeks {
		end := w.AddDate(0, 0, 7)
		for _, r := range rows {
			if !monday(r.at).Before(end) {
				continue
			}
			k := r.school + "|" + first.Format(time.DateOnly) + "|" + end.Format(time.DateOnly)
			if want[k] == nil {
				want[k] = &cell{students: map[int64]bool{}}
			}
			want[k].rows++
			want[k].students[r.student] = true
			if !r.null {
				want[k].scores = append(want[k].scores, r.score)
			}
		}
	}
	for _, continuous := range []bool{false, true} {
		t.Run(fmt.Sprintf("continuous=%v", continuous), func(t *testing.T) {
			cfg := weeklyConfig(0)
			cfg.GroupBy, cfg.SuppressOver = []string{"school"}, nil
			cfg.Timezone, cfg.Cumulative = "Europe/Paris", true
			got, st := runAggregateStage(t, cfg, rows, 50, continuous)
			if len(got.dead) > 0 {
				t.Fatalf("%d dead letters: %+v", len(got.dead), got.dead[0])
			}
			if len(st.windows) != 0 {
				t.Errorf("%d windows left open", len(st.windows))
			}
			if len(got.rows) != len(want) {
				t.Errorf("%d rows, want %d", len(got.rows), len(want))
			}
			for _, g := range got.rows {
				k := g["school"] + "|" + g[ColWindowStart] + "|" + g[ColWindowEnd]
				w := want[k]
				if w == nil {
					t.Fatalf("unexpected row %v", g)
				}
				if g["n"] != fmt.Sprint(w.rows) || g["students"] != fmt.Sprint(len(w.students)) ||
					parseF(t, g["median"]) != fmtF(quantile7(w.scores, 0.5)) || parseF(t, g["hi"]) != fmtF(slices.Max(w.scores)) {
					t.Errorf("%s: %v, want %d rows, %d students, median %v", k, g, w.rows, len(w.students), quantile7(w.scores, 0.5))
				}
			}
			if continuous && slices.Max(got.batch) < len(weeks)-2 {
				t.Errorf("%d batches for %d weeks: the year to date should come out as each week closes", slices.Max(got.batch)+1, len(weeks))
			}
		})
	}
}
