package indicators

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Reason codes, in the order of Config.Weights.
const (
	AbsRate = iota
	AbsUnj
	AbsTrend
	MarkLow
	MarkFall
	CoreFail
	Missing
	PlatformDrop
	Inactive
	AbsStreak
	AbsCusum
	AbsMonths
	AbsDrift
	numCodes
)

// Codes are the reason codes of the indicators.
var Codes = [numCodes]string{"ABS_RATE", "ABS_UNJ", "ABS_TREND", "MARK_LOW", "MARK_FALL", "CORE_FAIL", "MISSING", "PLATFORM_DROP", "INACTIVE", "ABS_STREAK", "ABS_CUSUM", "ABS_MONTHS", "ABS_DRIFT"}

// Config holds the parameters (see Params for their meaning).
type Config struct {
	NoSchool     map[int32]bool
	HalfDaysWeek [7]int // Monday..Sunday
	TermEnds     []int32
	AsOf         int32 // -1: the last term end; AsOfLatest: the newest event day

	WindowDays, UnjustifiedDays, UnjustifiedMin, TrendMin, TrendDays, BaselineMinDays int
	ChronicRate, TrendFactor                                                          float64

	LowAverage, FallPoints, CoreFailMark float64
	CoreSubjects                         []string
	CoreFailCount, MissingMin            int

	DropRatio, DropMinExpected        float64
	InactiveDays, InactiveMinSessions int

	StreakWeeks, StreakMinHalfDays                          int
	CusumRate, CusumPriorRate, CusumPriorHalfDays, CusumMin float64

	MonthsMin, MonthMinHalfDays, MonthsSpan int
	MonthsUsualMax                          float64
	UseCorrections                          bool

	DriftMin, DriftPrior, DriftRate, DriftRampHalfDays, DriftEpisode float64
	EpisodePrior, EpisodePriorMonths, EpisodeMore, SporadicRate      float64
	EpisodeMin                                                       int
	DriftFrom, DriftTo, HistoryFrom                                  int32

	Weights                                [numCodes]float64
	RaiseAt, ClearBelow, AlertShare, Combo float64
	ClearDays, RaiseDays                   int
	CalibA, CalibB                         float64
	CalibPoints                            [][2]float64 // x:y, x increasing
	Lang                                   string       // en or fr
}

// AsOfLatest is the AsOf of as_of = "latest": each timeline is scored as
// of its own newest event day (a mark's day is its term's end).
const AsOfLatest int32 = -2

// Kind is the kind of a timeline event.
type Kind uint8

// Kinds of events.
const (
	Absence  Kind = iota // one absent half-day
	Mark                 // one mark of a subject and term
	Activity             // one platform session
)

// Event is one row of a student's timeline.
type Event struct {
	Kind Kind
	Day  int32 // days since 1970-01-01 (date32); for marks, filled from the term
	// Absence.
	Justified    bool
	CorrectedDay int32 // > 0: a later record justifies the half-day from this day
	// Mark.
	Term    int // 0-based
	Subject string
	Mark    float64 // /20; NaN when missing
}

// Alert is one alert of a student for one reason.
type Alert struct {
	ID     string
	Code   string
	Opened int32 // day
	Closed int32 // day, or -1 while open
}

// Result is a student's state on the report day, and the alerts of the run.
type Result struct {
	Risk       float64
	Level      string // "ok", "watch" or "alert"
	Codes      []string
	Reason     string
	Alerts     []Alert // every alert opened, in order
	FirstAlert int32   // day of the first alert, -1 when none
	MaxRisk    float64
	Score      float64 // the year's highest ABS_DRIFT posterior, or MaxRisk when ABS_DRIFT is off
	Chance     float64 // calibrated chance that the student drifts this year (calib_a, calib_b), from the year's highest ABS_DRIFT posterior, or MaxRisk when ABS_DRIFT is off
}

// Logit is log(p/(1-p)), with p clamped to [1e-4, 1-1e-4].
func Logit(p float64) float64 {
	p = math.Min(1-1e-4, math.Max(1e-4, p))
	return math.Log(p / (1 - p))
}

// ChanceOf maps a risk to a calibrated chance: by linear interpolation
// between the points of calib_points when set (an isotonic map), else
// 1/(1+exp(-(calib_a + calib_b × logit(risk)))).
func (c *Config) ChanceOf(risk float64) float64 {
	if p := c.CalibPoints; len(p) > 0 {
		if risk <= p[0][0] {
			return p[0][1]
		}
		for k := 1; k < len(p); k++ {
			if risk <= p[k][0] {
				t := (risk - p[k-1][0]) / math.Max(p[k][0]-p[k-1][0], 1e-12)
				return p[k-1][1] + t*(p[k][1]-p[k-1][1])
			}
		}
		return p[len(p)-1][1]
	}
	return 1 / (1 + math.Exp(-(c.CalibA + c.CalibB*Logit(risk))))
}

// Open returns the alerts still open on the report day.
func (r *Result) Open() []Alert {
	var o []Alert
	for _, a := range r.Alerts {
		if a.Closed < 0 {
			o = append(o, a)
		}
	}
	return o
}

// AlertID is the id of an alert: a hash of the student, the reason code and
// the day the alert opened, so that a rerun on the same data gives the same
// id.
func AlertID(student, code string, opened int32) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%d", student, code, opened)
	return fmt.Sprintf("%016x", h.Sum64())
}

// indicator is the state of one indicator on one day.
type indicator struct {
	severity float64 // 0 when off, 0.5 at the threshold up to 1
	text     string
}

// sev is the severity of a value v that passed threshold t by going up:
// 0.5 at t, 1 at 2t and above.
func sev(v, t float64) float64 {
	if t <= 0 {
		return 1
	}
	return fmin(1, 0.5+0.5*(v-t)/t)
}

// Evaluate replays a student's timeline day by day, up to the report day,
// and returns its state on that day and every alert opened on the way.
// events may be in any order; Evaluate sorts them.
func (c *Config) Evaluate(student string, events []Event) Result {
	return c.evaluate(student, events, nil, nil, nil, nil)
}

// dayState is the state of Evaluate's replay before day start+next, all a
// later call needs to resume there instead of replaying the days before
// (see Memo).
type dayState struct {
	next        int // offset from start of the next day to replay
	open, off   [numCodes]int
	above       int
	cusum       float64
	lastSess    int
	markTerm    int
	markInd     [numCodes]indicator
	maxRisk     float64
	maxDrift    float64 // over the days before next
	alerts      []Alert
	firstAlert  int32
	drift       driftState
	driftActive bool
}

// evaluate is Evaluate, resuming from in when it is not nil (the caller
// has checked that the events before day start+in.next are those of the
// call that took it), copying the state before the report day into snap
// when it is not nil, taking the school days from cal when it is not nil,
// and working in sc0 when it is not nil (else in a scratch of the pool).
func (c *Config) evaluate(student string, events []Event, in, snap *dayState, cal0 *calendar, sc0 *scratch) Result {
	res := Result{FirstAlert: -1, Level: "ok"}
	res.Chance = c.ChanceOf(0)
	if len(events) == 0 {
		return res
	}
	for i := range events {
		if events[i].Kind == Mark {
			t := min(events[i].Term, len(c.TermEnds)-1)
			events[i].Day = c.TermEnds[max(t, 0)]
		}
	}
	sc := sc0
	if sc == nil {
		sc = scratchPool.Get().(*scratch)
		defer sc.release()
	} else {
		defer sc.forget()
	}
	sortByDay(events, sc)
	end := c.AsOf
	switch {
	case end == AsOfLatest:
		end = events[len(events)-1].Day // sorted above
	case end < 0:
		end = c.TermEnds[len(c.TermEnds)-1]
	}
	start := events[0].Day
	if start > end {
		return res
	}
	n := int(end-start) + 1
	var cal calendar
	if cal0 != nil {
		cal = *cal0
	} else {
		cal = c.calendarFor(sc, start, end)
	}
	r0 := 0 // the first day replayed
	if in != nil {
		r0 = in.next
	}
	// Per-day counts, offsets from start; prefix sums p[i] = sum of days < i.
	// One buffer for the four of them.
	sc.counts = zeroed(sc.counts, 4*(n+1))
	counts := sc.counts
	school, absAll, unj, sess := counts[:n+1:n+1], counts[n+1:2*(n+1):2*(n+1)], counts[2*(n+1):3*(n+1):3*(n+1)], counts[3*(n+1):]
	corrections := sc.corrections[:0]
	marks := sc.marks[:0]
	for _, e := range events {
		i := int(e.Day - start)
		if i < 0 || i >= n {
			continue
		}
		switch e.Kind {
		case Absence:
			absAll[i+1]++
			if !e.Justified {
				unj[i+1]++
				if e.CorrectedDay > 0 {
					corrections = append(corrections, corr{e.Day, e.CorrectedDay})
				}
			}
		case Activity:
			sess[i+1]++
		case Mark:
			marks = append(marks, e)
		}
	}
	prefixSums(school, absAll, unj, sess, cal.days(sc, start, start+int32(n)-1))
	dc := dayCounts{n: n, start: start, school: school, absAll: absAll, unj: unj, sess: sess}
	if c.UseCorrections {
		dc.corrections = corrections
	}
	sum := func(p []int32, from, to int) int32 { return dc.sum(p, from, to) }
	unjAt := func(i, from, to int) int32 { return dc.unjAt(i, from, to) }
	// Calendar months: monthStart[i] is the offset of the first day of
	// day i's month (may be negative).
	sc.monthStart = monthStarts(zeroed(sc.monthStart, n), start)
	monthStart := sc.monthStart
	dc.monthStart = monthStart
	var drift []float64
	if c.DriftMin > 0 {
		// Unjustified half-days as first recorded (a correction is noise
		// to the model) and school half-days, by day.
		from := min(c.HistoryFrom, start)
		sc.orig = zeroed(sc.orig, int(end-from+1))
		orig := sc.orig
		for _, e := range events {
			if e.Kind == Absence && !e.Justified && e.Day >= from && e.Day <= end {
				orig[e.Day-from]++
			}
		}
		var din, dsnap *driftState
		if in != nil && in.driftActive {
			din = &in.drift
		}
		if snap != nil {
			dsnap = &snap.drift
		}
		drift = c.newDriftModel().posteriors(sc, start, n, orig, &cal, din, dsnap)
	}
	sc.corrections, sc.marks = corrections, marks
	terms := c.termAverages(marks)
	firstSess := -1
	for i := 0; i < n; i++ {
		if sess[i+1] > sess[i] {
			firstSess = i
			break
		}
	}

	var ind [numCodes]indicator
	open := [numCodes]int{} // index+1 in res.Alerts of the open alert
	above := 0              // consecutive days with risk >= raise_at
	cusum := 0.0            // ABS_CUSUM statistic
	off := [numCodes]int{}  // days the indicator of an open alert has been off
	lastSess := -1
	var risk float64
	markTerm, markInd := -1, [numCodes]indicator{}
	maxDrift := 0.0
	if in != nil {
		open, above, cusum, off, lastSess, markTerm, markInd = in.open, in.above, in.cusum, in.off, in.lastSess, in.markTerm, in.markInd
		res.MaxRisk, res.Alerts, res.FirstAlert, maxDrift = in.maxRisk, slices.Clone(in.alerts), in.firstAlert, in.maxDrift
	}
	// The codes whose indicator is set on a day (on), whose alert is open
	// (opened), and of the marks' indicators (marksOn): the risk and the
	// alerts visit those instead of all numCodes every day. An indicator
	// left at 0 changes neither (q *= 1 - w×0 is q, top = max(top, w×0)
	// is top, and no alert opens on it) as long as the weights are
	// finite; with an infinite or NaN weight every code is visited, as
	// before.
	var opened, marksOn codeSet
	for k := range open {
		if open[k] > 0 {
			opened |= 1 << k
		}
	}
	for k := range markInd {
		if markInd[k].severity != 0 {
			marksOn |= 1 << k
		}
	}
	var always, prevOn codeSet
	for _, w := range c.Weights {
		if math.IsInf(w, 0) || math.IsNaN(w) {
			always = allCodes
		}
	}
	termCheck := int32(math.MinInt32) // the day lastTerm may change next
	// ABS_STREAK, ABS_CUSUM and ABS_MONTHS are off by default: one test a
	// day for the three.
	optional := c.StreakWeeks > 0 || c.CusumMin > 0 || c.MonthsMin > 0
	raiseDays := max(c.RaiseDays, 1)
	for i := r0; i < n; i++ {
		d := start + int32(i)
		if snap != nil && i == n-1 {
			snap.next, snap.open, snap.above, snap.cusum, snap.off, snap.lastSess, snap.markTerm, snap.markInd = i, open, above, cusum, off, lastSess, markTerm, markInd
			snap.maxRisk, snap.alerts, snap.firstAlert = res.MaxRisk, slices.Clone(res.Alerts), res.FirstAlert
			snap.maxDrift, snap.driftActive = maxDrift, drift != nil
			if drift != nil && i > r0 {
				m := fmaxOf(drift[r0:i])
				if r0 > 0 {
					m = fmax(maxDrift, m)
				}
				snap.maxDrift = m
			}
		}
		final := i == n-1 // reasons are written for the report day only
		// i on a day with a session (lastSess < i), without a branch.
		lastSess = imax(lastSess, (i+1)*b2i(sess[i+1] > sess[i])-1)
		// The indicators set the day before are cleared: zeroing all of
		// ind (312 bytes) is a memory.fill in WebAssembly, which wazero
		// runs as calls to memmove, every day.
		if prevOn != 0 { // an empty loop is two jumps, this test one
			for ks := prevOn; ks != 0; ks &= ks - 1 {
				ind[ks.first()] = indicator{}
			}
		}
		on := always | c.countIndicators(&dc, &ind, i, firstSess, lastSess, drift, final)
		if optional {
			if c.StreakWeeks > 0 {
				// Consecutive school weeks (7-day blocks ending today, holiday
				// weeks skipped) with an unjustified half-day.
				streak, total := 0, int32(0)
				for b, seen := 0, 0; seen < 3*c.StreakWeeks && b < 40; b++ {
					hi := i - 7*b
					if hi-6 < 0 {
						break
					}
					if sum(school, hi-6, hi) < 3 {
						continue
					}
					seen++
					u := unjAt(i, hi-6, hi)
					if u == 0 {
						break
					}
					streak++
					total += u
				}
				if streak >= c.StreakWeeks && int(total) >= c.StreakMinHalfDays {
					ind[AbsStreak].severity = sev(float64(streak), float64(c.StreakWeeks))
					on |= 1 << AbsStreak
					if final {
						ind[AbsStreak].text = c.say(final, "unjustified absences %d weeks in a row (%d half-days)", streak, total)
					}
				}
			}
			if c.CusumMin > 0 {
				// Log-likelihood ratio, per school half-day, of a drift's rate
				// of unjustified absences (cusum_rate) against the student's
				// own usual rate before the trend window (shrunk toward
				// cusum_prior_rate), accumulated as a CUSUM.
				if h := sum(school, i, i); h > 0 {
					tf := i - c.TrendDays
					u0, h0 := 0.0, 0.0
					if tf >= 0 {
						u0, h0 = float64(unjAt(i, 0, tf)), float64(sum(school, 0, tf))
					}
					l0 := (c.CusumPriorRate*c.CusumPriorHalfDays + u0) / (c.CusumPriorHalfDays + h0)
					l1 := fmax(c.CusumRate, 1.5*l0)
					x := float64(sum(unj, i, i))
					cusum = fmax(0, cusum+x*math.Log(l1/l0)+(float64(h)-x)*math.Log((1-l1)/(1-l0)))
				}
				if cusum >= c.CusumMin {
					ind[AbsCusum].severity = sev(cusum, c.CusumMin)
					on |= 1 << AbsCusum
					if final {
						ind[AbsCusum].text = c.say(final, "unjustified absences well above the student's usual rate (score %s)", num1(cusum))
					}
				}
			}
			if c.MonthsMin > 0 {
				// Calendar months (the current one and the months_span-1
				// before it) with month_min_half_days unjustified half-days or
				// more, against the student's own share of such months before:
				// a truant's episode stays within one month, a drift goes on.
				hit, total := 0, int32(0)
				ms := monthStart[i]
				for m := 0; m < c.MonthsSpan; m++ {
					me := i
					if m > 0 {
						me = ms - 1
						ms = me - (dayOfMonth(start+int32(me)) - 1)
					}
					if u := unjAt(i, ms, me); int(u) >= c.MonthMinHalfDays {
						hit++
						total += u
					}
				}
				if hit >= c.MonthsMin {
					// The student's usual share of such months, before the span.
					past, pastHit := 0, 0
					for me := ms - 1; me >= 0; {
						s0 := me - (dayOfMonth(start+int32(me)) - 1)
						if sum(school, s0, me) >= 16 {
							past++
							if int(unjAt(i, s0, me)) >= c.MonthMinHalfDays {
								pastHit++
							}
						}
						me = s0 - 1
					}
					usual := 0.0
					if past > 0 {
						usual = float64(pastHit) / float64(past)
					}
					if past < 2 || usual <= c.MonthsUsualMax {
						ind[AbsMonths].severity = sev(float64(total), float64(c.MonthsMin*c.MonthMinHalfDays))
						on |= 1 << AbsMonths
						if final {
							ind[AbsMonths].text = c.say(final, "unjustified absences %d months running (%d half-days), usually %s %% of months", hit, total, pct(usual))
						}
					}
				}
			}
		}
		// Course performance: the last term whose marks are known, which
		// changes only on the end of a known term (termCheck, the next
		// one after the day it was last looked up).
		if d >= termCheck {
			termCheck = c.nextTermEnd(terms, d)
			if lt := c.lastTerm(terms, d); lt != markTerm {
				markTerm, markInd = lt, [numCodes]indicator{}
				c.markIndicators(&markInd, terms, lt)
				marksOn = 0
				for _, k := range []int{MarkLow, MarkFall, CoreFail, Missing} {
					if markInd[k].severity != 0 {
						marksOn |= 1 << k
					}
				}
			}
		}
		if marksOn != 0 {
			for ks := marksOn; ks != 0; ks &= ks - 1 {
				k := ks.first()
				ind[k].severity, ind[k].text = markInd[k].severity, markInd[k].text // not a 24-byte memory.copy
			}
		}
		on |= marksOn
		prevOn = on // every code set in ind is in on
		// Risk. With no indicator set it is 1 - 1 = +0, and MaxRisk (+0
		// or more, or NaN: fmax from +0) stays what it is.
		risk = 0
		if on != 0 {
			q := 1.0
			var fam [3]bool // attendance, marks, engagement
			for ks := on; ks != 0; ks &= ks - 1 {
				k := ks.first()
				q *= 1 - c.Weights[k]*ind[k].severity
				if ind[k].severity > 0 && c.Weights[k] > 0 {
					fam[family(k)] = true
				}
			}
			if nf := b2i(fam[0]) + b2i(fam[1]) + b2i(fam[2]); nf >= 2 {
				q *= 1 - c.Combo
			}
			risk = 1 - q
			res.MaxRisk = fmax(res.MaxRisk, risk)
		}
		above = (above + 1) * b2i(risk >= c.RaiseAt) // 0 when below: no branch
		// Alerts: the open ones, and the indicators set on a day an alert
		// may open. above >= raiseDays (1 or more) implies risk >= raise_at.
		visit := opened
		raising := above >= raiseDays
		top := 0.0
		if raising {
			visit |= on
			for ks := on; ks != 0; ks &= ks - 1 {
				k := ks.first()
				top = fmax(top, c.Weights[k]*ind[k].severity)
			}
		}
		if visit != 0 { // see the loop of prevOn
			for ks := visit; ks != 0; ks &= ks - 1 {
				k := ks.first()
				if open[k] > 0 {
					if ind[k].severity == 0 {
						off[k]++
					} else {
						off[k] = 0
					}
					if risk < c.ClearBelow || off[k] >= c.ClearDays {
						res.Alerts[open[k]-1].Closed = d
						open[k] = 0
						opened &^= 1 << k
					}
					continue
				}
				if part := c.Weights[k] * ind[k].severity; raising && part > 0 && part >= c.AlertShare*top {
					res.Alerts = append(res.Alerts, Alert{ID: AlertID(student, Codes[k], d), Code: Codes[k], Opened: d, Closed: -1})
					open[k], off[k] = len(res.Alerts), 0
					opened |= 1 << k
					if res.FirstAlert < 0 {
						res.FirstAlert = d
					}
				}
			}
		}
	}
	res.Risk = risk
	res.Score = res.MaxRisk
	if drift != nil {
		res.Score = fmaxOf(drift[r0:]) // the days before r0: in.maxDrift
		if r0 > 0 {
			res.Score = fmax(maxDrift, res.Score)
		}
	}
	res.Chance = c.ChanceOf(res.Score)
	anyOpen := false
	for k := range open {
		anyOpen = anyOpen || open[k] > 0
	}
	switch {
	case risk >= c.RaiseAt || anyOpen:
		res.Level = "alert"
	case risk >= c.ClearBelow:
		res.Level = "watch"
	}
	// Reasons on the report day, strongest first.
	order := make([]int, 0, numCodes)
	for k := range ind {
		if ind[k].severity > 0 && c.Weights[k] > 0 {
			order = append(order, k)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := c.Weights[a]*ind[a].severity, c.Weights[b]*ind[b].severity
		switch {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	})
	texts := make([]string, len(order))
	for j, k := range order {
		res.Codes = append(res.Codes, Codes[k])
		texts[j] = ind[k].text
	}
	res.Reason = strings.Join(texts, "; ")
	return res
}

// sortByDay sorts events by day, stably; the pipeline sends them in date
// order already (marks aside), and a sorted timeline is left as it is.
// Otherwise, over a span of days up to maxCountingSpan (a school year is
// about 310), it places them with a counting sort, one pass to count the
// events of each day and one to place them, instead of a merge sort
// (slices.SortStableFunc: many small calls and moves, a few per cent of
// the rule's time in WebAssembly). Both are stable, so the order is the
// same. It works in sc, or in a scratch of the pool when sc is nil.
func sortByDay(events []Event, sc *scratch) {
	byDay := func(a, b Event) int { return int(a.Day - b.Day) }
	if slices.IsSortedFunc(events, byDay) {
		return
	}
	lo, hi := events[0].Day, events[0].Day
	for _, e := range events[1:] {
		lo, hi = min(lo, e.Day), max(hi, e.Day)
	}
	if int64(hi)-int64(lo) > maxCountingSpan {
		slices.SortStableFunc(events, byDay)
		return
	}
	if sc == nil {
		sc = scratchPool.Get().(*scratch)
		defer sc.release()
	}
	// at[d-lo] is where the next event of day d goes.
	sc.at = zeroed(sc.at, int(hi-lo)+2)
	at := sc.at
	for _, e := range events {
		at[e.Day-lo+1]++
	}
	for i := 1; i < len(at); i++ {
		at[i] += at[i-1]
	}
	sc.sorted = zeroed(sc.sorted, len(events))
	sorted := sc.sorted
	for _, e := range events {
		sorted[at[e.Day-lo]] = e
		at[e.Day-lo]++
	}
	copy(events, sorted)
}

// maxCountingSpan is the widest span of days sortByDay sorts by counting.
const maxCountingSpan = 4096

// family is 0 for attendance, 1 for course performance, 2 for engagement.
func family(k int) int {
	switch k {
	case AbsRate, AbsUnj, AbsTrend, AbsStreak, AbsCusum, AbsMonths, AbsDrift:
		return 0
	case MarkLow, MarkFall, CoreFail, Missing:
		return 1
	}
	return 2
}

// dayCounts are the per-day counts of a timeline as prefix sums (p[i],
// offsets from start, is the sum over the days before i) and its late
// corrections (nil unless use_corrections).
type dayCounts struct {
	n                         int
	start                     int32
	school, absAll, unj, sess []int32
	corrections               []corr
	monthStart                []int // offset of the first day of day i's month
}

// sum is the sum of p over the days [from, to], clamped to the timeline.
// An empty range is p[from] - p[from], and the clamps are imin and imax:
// no branch (see imin), about ten times a day.
func (dc *dayCounts) sum(p []int32, from, to int) int32 {
	lo := imin(from&^(from>>63), dc.n) // imax(from, 0), then at most n
	hi := imax(imin(to+1, dc.n), lo)
	return p[hi] - p[lo]
}

// unjAt is the unjustified half-days over [from, to] as known on day i.
func (dc *dayCounts) unjAt(i, from, to int) int32 {
	u := dc.sum(dc.unj, from, to)
	for _, k := range dc.corrections {
		if j := int(k.day - dc.start); j >= from && j <= to && int(k.known-dc.start) <= i {
			u--
		}
	}
	return u
}

// countIndicators sets in ind the indicators of day i that are functions
// of the counts alone (ABS_RATE, ABS_UNJ, ABS_TREND, ABS_DRIFT from the
// posteriors of drift, PLATFORM_DROP, and INACTIVE from lastSess), with
// their reasons on the report day (final), and returns their codes. It is
// Evaluate's code for them, moved out of its day loop: in WebAssembly a
// branch taken in Evaluate, a function of some 600 blocks whose values
// live in memory, costs more than in a small one (a jump through its
// dispatch loop), and these tests are most of a day's branches.
//
//go:noinline
func (c *Config) countIndicators(dc *dayCounts, ind *[numCodes]indicator, i, firstSess, lastSess int, drift []float64, final bool) codeSet {
	var on codeSet
	W := c.WindowDays
	from := i - W + 1
	// Attendance.
	if hd := dc.sum(dc.school, from, i); hd >= 9 && i >= W-1 {
		a := float64(dc.sum(dc.absAll, from, i)) / float64(hd)
		if a >= c.ChronicRate {
			ind[AbsRate].severity = sev(a, c.ChronicRate)
			on |= 1 << AbsRate
			if final {
				ind[AbsRate].text = c.say(final, "absences %s %% over %s", pct(a), c.span(W))
			}
		}
	}
	if u := dc.unjAt(i, i-c.UnjustifiedDays+1, i); int(u) >= c.UnjustifiedMin && c.UnjustifiedMin > 0 {
		ind[AbsUnj].severity = sev(float64(u), float64(c.UnjustifiedMin))
		on |= 1 << AbsUnj
		if final {
			ind[AbsUnj].text = c.say(final, "%d unjustified half-days over %s", u, c.span(c.UnjustifiedDays))
		}
	}
	if tf := i - c.TrendDays + 1; tf > c.BaselineMinDays {
		recent := float64(dc.unjAt(i, tf, i))
		baseHD := float64(dc.sum(dc.school, 0, tf-1))
		if baseHD > 0 && recent >= float64(c.TrendMin) {
			usual := float64(dc.unjAt(i, 0, tf-1)) / baseHD * float64(dc.sum(dc.school, tf, i))
			if recent >= c.TrendFactor*fmax(usual, 1) {
				ind[AbsTrend].severity = sev(recent, c.TrendFactor*fmax(usual, 1))
				on |= 1 << AbsTrend
				if final {
					ind[AbsTrend].text = c.say(final, "unjustified absences rising: %d over %s, usually %s", int(recent), c.span(c.TrendDays), num1(usual))
				}
			}
		}
	}
	if drift != nil && drift[i] >= c.DriftMin {
		var text string
		if final {
			// The last 30 days, against the student's own rate before.
			const p = 30
			recent := dc.unjAt(i, i-p+1, i)
			usual := 0.0
			if h := float64(dc.sum(dc.school, 0, i-p)); h > 0 {
				usual = float64(dc.unjAt(i, 0, i-p)) / h * float64(dc.sum(dc.school, i-p+1, i))
			}
			text = c.say(final, "%d unjustified half-days over %s (usually %s), %d this month; chance of a drift %s %%",
				recent, c.span(p), num1(usual), dc.unjAt(i, dc.monthStart[i], i), pct(drift[i]))
		}
		ind[AbsDrift] = indicator{drift[i], text}
		on |= 1 << AbsDrift
	}
	// Engagement.
	if firstSess >= 0 && from > firstSess+c.BaselineMinDays {
		baseDays := float64(from - firstSess)
		expected := float64(dc.sum(dc.sess, firstSess, from-1)) / baseDays * float64(W)
		got := float64(dc.sum(dc.sess, from, i))
		if expected >= c.DropMinExpected && got <= c.DropRatio*expected {
			ind[PlatformDrop].severity = fmin(1, 0.5+0.5*(1-got/expected))
			on |= 1 << PlatformDrop
			if final {
				ind[PlatformDrop].text = c.say(final, "platform sessions %d over %s, usually %s", int(got), c.span(W), num1(expected))
			}
		}
	}
	if lastSess >= 0 && i-lastSess >= c.InactiveDays && int(dc.sess[lastSess+1]) >= c.InactiveMinSessions {
		ind[Inactive].severity = sev(float64(i-lastSess), float64(c.InactiveDays))
		on |= 1 << Inactive
		if final {
			ind[Inactive].text = c.say(final, "no platform activity for %d days", i-lastSess)
		}
	}
	return on
}

// prefixSums turns the per-day counts absAll, unj and sess (day i at
// i+1) into prefix sums, and fills school with the prefix sums of hd (the
// school half-days of each day). Out of Evaluate, for its loop's branches.
//
//go:noinline
func prefixSums(school, absAll, unj, sess []int32, hd []int8) {
	n := len(hd)
	school, absAll, unj, sess = school[:n+1], absAll[:n+1], unj[:n+1], sess[:n+1]
	for i := range n {
		school[i+1] = int32(hd[i]) + school[i]
		absAll[i+1] += absAll[i]
		unj[i+1] += unj[i]
		sess[i+1] += sess[i]
	}
}

// monthStarts fills ms[i] with the offset of the first day of the month of
// day start+i (may be negative), and returns ms.
//
//go:noinline
func monthStarts(ms []int, start int32) []int {
	for i, dom := 0, dayOfMonth(start); i < len(ms); i++ {
		if i > 0 {
			if dom++; dom > 28 && dayOfMonth(start+int32(i)) == 1 {
				dom = 1
			}
		}
		ms[i] = i - (dom - 1)
	}
	return ms
}

// imin and imax are the builtin min and max of two ints whose difference
// does not overflow (days and day offsets), without a branch: the builtins
// compile to branches where the result is used as an index (the compiler
// keeps a conditional move off load addresses), and in WebAssembly a
// branch taken is a jump through the function's dispatch loop (and a check
// of the host's instrumentation).
func imin(a, b int) int {
	d := a - b
	return b + d&(d>>63)
}

func imax(a, b int) int {
	d := a - b
	return a - d&(d>>63)
}

// codeSet is a set of reason codes, bit k for code k.
type codeSet uint16

const allCodes codeSet = 1<<numCodes - 1

// first is the lowest code of a non-empty set.
func (s codeSet) first() int { return bits.TrailingZeros16(uint16(s)) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// termAvg is a term's averages: overall, per subject, and missing marks.
type termAvg struct {
	known    bool
	overall  float64
	subjects []subjectAvg // by name
	missing  int
}

// subjectAvg is a subject's average in a term.
type subjectAvg struct {
	name string
	avg  float64
}

// subject is the average of the subject name, if the term has marks in it.
func (t *termAvg) subject(name string) (float64, bool) {
	for _, s := range t.subjects {
		if s.name == name {
			return s.avg, true
		}
	}
	return 0, false
}

// termAverages is the averages of each term. A term has about ten
// subjects: they are found by a linear search in a slice, sorted by name
// at the end, instead of maps (hashing strings is slow in WebAssembly,
// and a map per term was most of the allocations of a call); the sums
// are the same, in the same order (marks in event order per subject,
// subjects in name order for the overall average).
func (c *Config) termAverages(marks []Event) []termAvg {
	terms := make([]termAvg, len(c.TermEnds))
	type acc struct {
		name string
		sum  float64
		n    int
	}
	subj := make([][]acc, len(terms))
	for _, m := range marks {
		t := min(max(m.Term, 0), len(terms)-1)
		terms[t].known = true
		if math.IsNaN(m.Mark) {
			terms[t].missing++
			continue
		}
		j := 0
		for j < len(subj[t]) && subj[t][j].name != m.Subject {
			j++
		}
		if j == len(subj[t]) {
			subj[t] = append(subj[t], acc{name: m.Subject})
		}
		subj[t][j].sum += m.Mark
		subj[t][j].n++
	}
	for t := range terms {
		if len(subj[t]) == 0 {
			terms[t].overall = math.NaN()
			continue
		}
		slices.SortFunc(subj[t], func(a, b acc) int { return strings.Compare(a.name, b.name) })
		terms[t].subjects = make([]subjectAvg, len(subj[t]))
		// Summed in subject order: the order of the marks would change
		// the last bit of the average (and of the risk) from one
		// timeline to another.
		var s float64
		for j, a := range subj[t] {
			terms[t].subjects[j] = subjectAvg{a.name, a.sum / float64(a.n)}
			s += terms[t].subjects[j].avg
		}
		terms[t].overall = s / float64(len(subj[t]))
	}
	return terms
}

// nextTermEnd is the first day after d on which lastTerm may change: the
// earliest end of a known term after d, or MaxInt32.
func (c *Config) nextTermEnd(terms []termAvg, d int32) int32 {
	next := int32(math.MaxInt32)
	for t := range terms {
		if terms[t].known && c.TermEnds[t] > d {
			next = min(next, c.TermEnds[t])
		}
	}
	return next
}

// lastTerm is the last term whose marks are known on day d, or -1.
func (c *Config) lastTerm(terms []termAvg, d int32) int {
	last := -1
	for t := range terms {
		if terms[t].known && c.TermEnds[t] <= d {
			last = t
		}
	}
	return last
}

func (c *Config) markIndicators(ind *[numCodes]indicator, terms []termAvg, last int) {
	if last < 0 {
		return
	}
	cur := terms[last]
	if !math.IsNaN(cur.overall) && cur.overall < c.LowAverage {
		ind[MarkLow] = indicator{math.Min(1, 0.5+2*(c.LowAverage-cur.overall)/math.Max(c.LowAverage, 1)),
			c.say(true, "average %s in T%d", num1(cur.overall), last+1)}
	}
	if last > 0 && terms[last-1].known && !math.IsNaN(cur.overall) && !math.IsNaN(terms[last-1].overall) {
		prev := terms[last-1]
		if fall := prev.overall - cur.overall; fall >= c.FallPoints {
			// Name the subject that fell most.
			best, bestFall, bestPrev, bestCur := "", 0.0, 0.0, 0.0
			for _, k := range cur.subjects { // by name
				if p, ok := prev.subject(k.name); ok && p-k.avg > bestFall {
					best, bestFall, bestPrev, bestCur = k.name, p-k.avg, p, k.avg
				}
			}
			text := c.say(true, "average %s → %s (T%d → T%d)", num1(prev.overall), num1(cur.overall), last, last+1)
			if best != "" {
				text += c.say(true, ", %s %s → %s", best, num1(bestPrev), num1(bestCur))
			}
			ind[MarkFall] = indicator{sev(fall, c.FallPoints), text}
		}
	}
	var failed []string
	for _, s := range c.CoreSubjects {
		if a, ok := cur.subject(s); ok && a < c.CoreFailMark {
			failed = append(failed, s+" "+num1(a))
		}
	}
	if len(failed) >= c.CoreFailCount && len(failed) > 0 {
		ind[CoreFail] = indicator{sev(float64(len(failed)), float64(max(c.CoreFailCount, 1))),
			c.say(true, "failing %s", strings.Join(failed, ", "))}
	}
	if cur.missing >= c.MissingMin && c.MissingMin > 0 {
		ind[Missing] = indicator{sev(float64(cur.missing), float64(c.MissingMin)),
			c.say(true, "%d marks missing in T%d", cur.missing, last+1)}
	}
}

// say formats a reason in the language of lang when on (the report
// day), and is free otherwise.
func (c *Config) say(on bool, format string, a ...any) string {
	if !on {
		return ""
	}
	return c.decimals(fmt.Sprintf(c.tr(format), a...))
}

func pct(x float64) string  { return strconv.FormatFloat(100*x, 'f', 0, 64) }
func num1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func (c *Config) span(days int) string {
	if days%7 == 0 {
		return fmt.Sprintf(c.tr("%d weeks"), days/7)
	}
	return fmt.Sprintf(c.tr("%d days"), days)
}

// schoolHalfDays is the number of school half-days of day d.
func (c *Config) schoolHalfDays(d int32) int {
	if c.NoSchool[d] {
		return 0
	}
	return c.HalfDaysWeek[weekday(d)]
}

// calendar is the school half-days of each day of a range, looked up
// once per Evaluate instead of a NoSchool map lookup per use.
type calendar struct {
	c  *Config
	lo int32
	hd []int8
	// The candidate onsets of ABS_DRIFT when haveOnsets (a Memo's
	// calendar: computed once; shared, read only).
	onsets     []int32
	haveOnsets bool
}

// days is school(d) for each d in [from, to]: a slice of the table when
// it covers them, else filled into sc.days.
func (cal *calendar) days(sc *scratch, from, to int32) []int8 {
	if i := from - cal.lo; i >= 0 && int(to-cal.lo) < len(cal.hd) {
		return cal.hd[i : to-cal.lo+1]
	}
	sc.days = zeroed(sc.days, int(to-from+1))
	for d := from; d <= to; d++ {
		sc.days[d-from] = int8(cal.school(d))
	}
	return sc.days
}

// calendarFor covers what an Evaluate from start to end looks at: the
// timeline, the history and onsets of ABS_DRIFT, and the end of the report
// day's month (a month's total of school half-days).
func (c *Config) calendarFor(sc *scratch, start, end int32) calendar {
	lo := min(start, c.HistoryFrom, c.DriftFrom) - 31 // the first month's start
	hi := max(end+31, c.DriftTo+7)
	sc.hd = zeroed(sc.hd, int(hi-lo+1))
	cal := calendar{c: c, lo: lo, hd: sc.hd}
	for i := range cal.hd {
		cal.hd[i] = int8(c.schoolHalfDays(lo + int32(i)))
	}
	return cal
}

// school is schoolHalfDays(d), from the table when d is in it.
func (cal *calendar) school(d int32) int {
	if i := d - cal.lo; i >= 0 && int(i) < len(cal.hd) {
		return int(cal.hd[i])
	}
	return cal.c.schoolHalfDays(d)
}

// corr is a late correction: the unjustified half-day of day is justified
// from day known on.
type corr struct{ day, known int32 }

// scratch is the working memory of one Evaluate, reused from call to call
// through scratchPool (or a Memo's own, the Memo being used by one
// goroutine: a sync.Pool's Get and Put were a few per cent of the rule's
// time in WebAssembly): the rule evaluates one student after another, and
// the per-day buffers were most of its allocations (the garbage collector
// of a Go rule runs inside the WebAssembly call, on the engine's time).
// Nothing of it outlives the call.
type scratch struct {
	counts      []int32
	monthStart  []int
	hd          []int8
	days        []int8 // calendar.days
	orig        []int32
	corrections []corr
	marks       []Event
	at          []int32 // sortByDay
	sorted      []Event // sortByDay
	// ABS_DRIFT
	post, lr, lam, eOn []float64
	started            []bool
	sOn                []int
	onsets             []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release returns sc to the pool, without the strings it refers to.
func (sc *scratch) release() {
	sc.forget()
	scratchPool.Put(sc)
}

// forget drops the strings sc refers to, at the end of a call.
func (sc *scratch) forget() {
	clear(sc.marks)
	clear(sc.sorted)
}

// zeroed is s resized to n zero values, reusing its array when it is large
// enough.
func zeroed[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// dayOfMonth is the day of the month (1..31) of d, days since 1970-01-01
// (the civil-from-days algorithm of H. Hinnant, exact for every int32 day).
func dayOfMonth(d int32) int {
	z := int64(d) + 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	return int(doy - (153*mp+2)/5 + 1)
}

// weekday is 0 for Monday .. 6 for Sunday; day 0 (1970-01-01) was a Thursday.
func weekday(d int32) int { return int(((d+3)%7 + 7) % 7) }

// ParseDay parses yyyy-mm-dd into days since 1970-01-01.
func ParseDay(s string) (int32, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid date %q (want yyyy-mm-dd)", s)
	}
	return int32(t.Unix() / 86400), nil
}

// FormatDay formats days since 1970-01-01 as yyyy-mm-dd.
func FormatDay(d int32) string { return time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02") }

func parseDays(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		d, err := ParseDay(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func parseDaySet(s string) (map[int32]bool, error) {
	set := map[int32]bool{}
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		a, b, isRange := strings.Cut(f, "/")
		from, err := ParseDay(a)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = ParseDay(b); err != nil {
				return nil, err
			}
		}
		if to < from || to-from > 400 {
			return nil, fmt.Errorf("invalid range %q", f)
		}
		for d := from; d <= to; d++ {
			set[d] = true
		}
	}
	return set, nil
}

func parseWeek(s string) ([7]int, error) {
	var w [7]int
	f := strings.Split(s, ",")
	if len(f) != 7 {
		return w, fmt.Errorf("want 7 comma-separated numbers, Monday to Sunday, got %q", s)
	}
	for i, x := range f {
		v, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || v < 0 || v > 2 {
			return w, fmt.Errorf("half-days %q is not 0, 1 or 2", x)
		}
		w[i] = v
	}
	return w, nil
}
