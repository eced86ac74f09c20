// Package health detects incidents in a digital platform's logs: requests,
// 5xx answers and p95 latency per school and minute. It is the logic of
// the platform_health rule (examples/rules/platform_health), plain Go so
// that it runs natively too, for the evaluation against the generator's
// ground truth (health_test.go) — the rule and the evaluation run the same
// code.
//
// Detect reads one platform's rows and replays them minute by minute:
//
//   - errors (ERRORS, OUTAGE when at least 80 % of the last minute's
//     requests failed when it opened): the
//     platform's 5xx rate is above a threshold over both a short (3 min)
//     and a long (15 min) window — the multi-window burn-rate alert of
//     Google's SRE workbook, with an error budget equal to the platform's
//     usual rate (the median of its last 7 days, at least 0.5 %) — with a
//     minimum number of errors so that a quiet night cannot page;
//   - slowdown (SLOW): the median over 5 min of the minute p95 latency is
//     at least twice its seasonal baseline;
//   - silence (NET for one school, DOWN for the whole platform): a run of
//     minutes without any request while the seasonal baseline, scaled by
//     the series' level over the hour before the run (observed / expected,
//     0.05 to 1.5), expected at least 20 requests over the run (Poisson:
//     e^-20 by chance), at a time of day when at least one request a
//     minute is expected (a silent night is normal);
//
// The seasonal baseline is robust, in the spirit of Twitter's S-H-ESD: the
// median, over the previous 4 weeks, of the same 10-minute slot on days of
// the same kind (the same day of the week; school holidays apart, from the
// calendar), falling back to days of the same broad kind (school day,
// Wednesday, Saturday, Sunday, holiday) when fewer than two such days
// exist (for latency, any day when there is none: the first day of the
// holidays). An incident clears after 10 quiet minutes (hysteresis).
//
// Only complete minutes are read: a minute is complete once a row of a
// later minute has been seen, so that evaluated row by row (emit =
// "per_row") or once at the end, the incidents are the same and their ids,
// made of the platform, the code, the school and the opening minute, are
// stable.
package health

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Row is one row of the logs: a school's requests to the platform in one
// minute.
type Row struct {
	Minute   int64 // Unix seconds, UTC, start of the minute
	School   string
	Requests int64
	S5xx     int64
	P95      float64 // ms; NaN if unknown
	Holiday  bool    // the local day is a school holiday or a public holiday
}

// Incident is an incident detected.
type Incident struct {
	ID       string
	Code     string // OUTAGE, ERRORS, SLOW, DOWN, NET
	Platform string
	School   string // "" for the whole platform
	Opened   int64  // Unix seconds: the minute after the last one read when it opened
	Cleared  int64  // Unix seconds; 0 while open
	Reason   string
}

// Config are the detection parameters.
type Config struct {
	UTCOffsetHours int  // standard offset of local time
	EUSummerTime   bool // one more hour from the last Sunday of March to the last Sunday of October
	LookbackDays   int  // days of history of the seasonal baseline
	ErrShort       int  // minutes
	ErrLong        int  // minutes
	ErrFactor      float64
	ErrMinRate     float64 // the lowest 5xx rate that opens an incident
	ErrFloor       float64 // the lowest usual rate (budget)
	ErrMinErrors   int64   // errors in the long window
	LatWindow      int     // minutes
	LatFactor      float64
	LatMinRequests int64   // requests in the window
	SilenceMin     float64 // expected requests over a silent run
	LevelMinutes   int     // minutes before a silent run that scale its expectation
	SilenceMinRate float64 // requests per minute expected now, below which silence is normal
	Quiet          int     // minutes without the condition before an incident clears
}

// Default is the configuration tuned on seed 1 (docs/platform-health.md).
var Default = Config{
	UTCOffsetHours: 1, EUSummerTime: true, LookbackDays: 28,
	ErrShort: 3, ErrLong: 15, ErrFactor: 10, ErrMinRate: 0.02, ErrFloor: 0.005, ErrMinErrors: 10,
	LatWindow: 5, LatFactor: 2, LatMinRequests: 50,
	SilenceMin: 20, LevelMinutes: 60, SilenceMinRate: 1, Quiet: 10,
}

const slotMin = 10 // minutes of a baseline slot
const slots = 24 * 60 / slotMin

// series is one sequence of minutes: the platform's total or a school's.
type series struct {
	school string
	req    []int32
	e5     []int32
	p95    []float64 // the platform's only: request-weighted mean of the schools' p95
	exp    []float32 // requests expected per minute by the baseline (NaN: none)
	// Per local day and slot: requests, and the median of the minute p95.
	slotReq map[int64]*[slots]float64
	slotLat map[int64]*[slots]float64
}

// detector is the state of Detect.
type detector struct {
	cfg      Config
	platform string
	t0       int64 // first minute, Unix seconds
	n        int   // complete minutes
	holiday  map[int64]bool
	total    *series
	schools  []*series
	out      []*Incident
	// per day: the baselines of each series (slot → expected requests per
	// minute; slot → p95)
	day      int64
	expReq   map[*series]*[slots]float64
	expLat   *[slots]float64
	usualErr float64 // the budget: the usual rate, at least ErrFloor
	usualRaw float64 // the usual rate measured, NaN without history
	// the year local last converted in, and its summer time
	yearFrom, yearTo, summerFrom, summerTo int64
	slot                                   []uint8 // per minute: its slot of the local day
}

// Detect replays rows (in any order; the rows of one school and minute are
// summed) and returns the incidents of platform, in order of opening.
func Detect(cfg Config, platform string, rows []Row) []Incident {
	return DetectFunc(cfg, platform, len(rows), func(i int, r *Row) bool { *r = rows[i]; return true })
}

// DetectFunc is Detect over n rows read by row, which fills r with row i
// or reports false to skip it: the rows are read twice and never held,
// which keeps a WebAssembly rule's memory to the series.
func DetectFunc(cfg Config, platform string, n int, row func(i int, r *Row) bool) []Incident {
	d := &detector{cfg: cfg, platform: platform, holiday: map[int64]bool{}, day: math.MinInt64}
	var r Row
	t0, t1, any := int64(0), int64(0), false
	for i := range n {
		if !row(i, &r) {
			continue
		}
		if !any {
			t0, t1, any = r.Minute, r.Minute, true
		}
		t0, t1 = min(t0, r.Minute), max(t1, r.Minute)
	}
	if !any {
		return nil
	}
	d.t0 = t0 - t0%60
	// The newest minute may still receive rows: it is not read.
	d.n = int((t1 - t1%60 - d.t0) / 60)
	d.total = d.newSeries("")
	bySchool := map[string]*series{}
	wsum := make([]float64, d.n)
	for j := range n {
		if !row(j, &r) {
			continue
		}
		i := int((r.Minute - r.Minute%60 - d.t0) / 60)
		if r.Holiday {
			d.holiday[d.localDay(r.Minute)] = true
		}
		if i >= d.n {
			continue
		}
		s := bySchool[r.School]
		if s == nil {
			s = d.newSeries(r.School)
			bySchool[r.School] = s
		}
		s.req[i] += int32(r.Requests)
		s.e5[i] += int32(r.S5xx)
		d.total.req[i] += int32(r.Requests)
		d.total.e5[i] += int32(r.S5xx)
		if !math.IsNaN(r.P95) && r.Requests > 0 {
			d.total.p95[i] += r.P95 * float64(r.Requests)
			wsum[i] += float64(r.Requests)
		}
	}
	for i := range d.n {
		if wsum[i] > 0 {
			d.total.p95[i] /= wsum[i]
		} else {
			d.total.p95[i] = math.NaN()
		}
	}
	for _, k := range slices.Sorted(mapsKeys(bySchool)) {
		d.schools = append(d.schools, bySchool[k])
	}
	d.run()
	out := make([]Incident, len(d.out))
	for i, in := range d.out {
		out[i] = *in
	}
	return out
}

func mapsKeys(m map[string]*series) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (d *detector) newSeries(school string) *series {
	s := &series{school: school, req: make([]int32, d.n), e5: make([]int32, d.n), exp: make([]float32, d.n),
		slotReq: map[int64]*[slots]float64{}, slotLat: map[int64]*[slots]float64{}}
	if school == "" {
		s.p95 = make([]float64, d.n)
	}
	return s
}

// local returns the local time of t (Unix seconds) as seconds since the
// epoch.
func (d *detector) local(t int64) int64 {
	off := int64(d.cfg.UTCOffsetHours) * 3600
	if d.cfg.EUSummerTime {
		if t < d.yearFrom || t >= d.yearTo { // the bounds of summer time, per year
			y := time.Unix(t, 0).UTC().Year()
			d.yearFrom, d.yearTo = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
			d.summerFrom, d.summerTo = lastSunday(y, time.March), lastSunday(y, time.October)
		}
		if t >= d.summerFrom && t < d.summerTo {
			off += 3600
		}
	}
	return t + off
}

func (d *detector) localDay(t int64) int64 { return floorDiv(d.local(t), 86400) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// lastSunday is 01:00 UTC on the last Sunday of month m of year y.
func lastSunday(y int, m time.Month) int64 {
	t := time.Date(y, m+1, 1, 1, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	for t.Weekday() != time.Sunday {
		t = t.AddDate(0, 0, -1)
	}
	return t.Unix()
}

// kind is a day's category for the baseline: its weekday 0-6 (Sunday 0), 7
// for a holiday; broad gives 10 school day, 3 Wednesday, 6 Saturday, 0
// Sunday, 7 holiday.
func (d *detector) kind(day int64) int {
	if d.holiday[day] {
		return 7
	}
	return int((day%7 + 7 + 4) % 7) // 1970-01-01 was a Thursday
}

func broad(k int) int {
	switch k {
	case 1, 2, 4, 5:
		return 10
	}
	return k
}

// baseline returns, per slot, the median of the values of the days before
// day (within the lookback) of the same kind, or of the same broad kind
// when fewer than two, or, with anyKind, of every day when there are none
// (latency: the first day of the holidays has no day of its kind before
// it, and latency depends less on the kind of day than traffic does); NaN
// when there are none.
func (d *detector) baseline(day int64, per map[int64]*[slots]float64, anyKind bool) *[slots]float64 {
	k := d.kind(day)
	var same, wide, all []*[slots]float64
	for p := day - int64(d.cfg.LookbackDays); p < day; p++ {
		v := per[p]
		if v == nil {
			continue
		}
		pk := d.kind(p)
		if pk == k {
			same = append(same, v)
		}
		if broad(pk) == broad(k) {
			wide = append(wide, v)
		}
		all = append(all, v)
	}
	if len(same) < 2 {
		same = wide
	}
	if len(same) == 0 && anyKind {
		same = all
	}
	var b [slots]float64
	vals := make([]float64, 0, len(same))
	for s := range slots {
		vals = vals[:0]
		for _, v := range same {
			if x := v[s]; !math.IsNaN(x) {
				vals = append(vals, x)
			}
		}
		b[s] = median(vals)
	}
	return &b
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// open is an incident being tracked, with the minutes its condition has
// been false.
type open struct {
	inc   *Incident
	quiet int
}

// run replays the minutes.
func (d *detector) run() {
	cfg := d.cfg
	var errInc, latInc, downInc *open
	netInc := make([]*open, len(d.schools))
	silent := make([]int, len(d.schools)+1)        // minutes of the current silent run
	silentExp := make([]float64, len(d.schools)+1) // requests expected over it
	all := append([]*series{d.total}, d.schools...)
	dayStart := 0
	d.slot = make([]uint8, d.n)
	for i := range d.n {
		t := d.t0 + int64(i)*60
		loc := d.local(t)
		day, slot := floorDiv(loc, 86400), int((loc%86400+86400)%86400/60/slotMin)
		d.slot[i] = uint8(slot)
		if day != d.day {
			// Close the day before: its slots feed the baselines.
			if d.day != math.MinInt64 {
				for _, s := range all {
					d.closeDay(s, d.day, dayStart, i)
				}
			}
			d.day, dayStart = day, i
			d.expReq = map[*series]*[slots]float64{}
			for _, s := range all {
				d.expReq[s] = d.baseline(day, s.slotReq, false)
			}
			d.expLat = d.baseline(day, d.total.slotLat, true)
			d.usualRaw = d.usualErrorRate(i)
			d.usualErr = d.usualRaw
			if math.IsNaN(d.usualErr) || d.usualErr < cfg.ErrFloor {
				d.usualErr = cfg.ErrFloor
			}
		}
		at := t + 60 // the minute is known once it has ended

		// Errors: short and long windows above the threshold.
		thr := max(cfg.ErrMinRate, cfg.ErrFactor*d.usualErr)
		nS, eS := window(d.total, i, cfg.ErrShort)
		nL, eL := window(d.total, i, cfg.ErrLong)
		rateS, rateL := ratio(eS, nS), ratio(eL, nL)
		firing := rateS >= thr && rateL >= thr && eL >= cfg.ErrMinErrors
		switch {
		case errInc == nil && firing:
			code, what := "ERRORS", "5xx rate"
			if ratio(int64(d.total.e5[i]), int64(d.total.req[i])) >= 0.8 {
				code, what = "OUTAGE", "outage: 5xx rate"
			}
			errInc = d.openInc(code, "", at, fmt.Sprintf("%s %s in the last minute, %s over %d min on %s, usual %s (%d of %d requests)",
				what, pct(ratio(int64(d.total.e5[i]), int64(d.total.req[i]))), pct(rateS), cfg.ErrShort, d.platform, d.usual(), eS, nS))
		case errInc != nil:
			d.tick(&errInc, rateS >= thr/2, at)
		}

		// Slowdown: the median p95 over the window against the baseline.
		if base := d.expLat[slot]; !math.IsNaN(base) && base > 0 {
			lat, n := medianP95(d.total, i, cfg.LatWindow)
			slow := n >= cfg.LatMinRequests && lat >= cfg.LatFactor*base
			switch {
			case latInc == nil && slow:
				latInc = d.openInc("SLOW", "", at, fmt.Sprintf("p95 latency %.0f ms over %d min on %s, usual %.0f ms", lat, cfg.LatWindow, d.platform, base))
			case latInc != nil:
				d.tick(&latInc, n >= cfg.LatMinRequests && lat >= (1+(cfg.LatFactor-1)/2)*base, at)
			}
		} else if latInc != nil {
			d.tick(&latInc, false, at)
		}

		// Silence: the platform's, then each school's.
		for k, s := range all {
			exp := d.expReq[s][slot]
			s.exp[i] = float32(exp / slotMin)
			if s.req[i] > 0 || math.IsNaN(exp) {
				silent[k], silentExp[k] = 0, 0
			} else {
				silent[k]++
				silentExp[k] += exp / slotMin
			}
			firing := false
			if silent[k] > 0 && silentExp[k] >= cfg.SilenceMin && exp/slotMin >= cfg.SilenceMinRate {
				// Scaled by the series' level over the hour before the
				// run: a school that is quiet today (an outing, a mock
				// exam) is expected to send fewer requests.
				firing = silentExp[k]*level(s, i-silent[k]+1, cfg.LevelMinutes) >= cfg.SilenceMin
			}
			inc := &downInc
			if k > 0 {
				inc = &netInc[k-1]
			}
			switch {
			case *inc == nil && firing:
				since := time.Unix(t-int64(silent[k]-1)*60, 0).UTC().Format("15:04Z")
				if k == 0 {
					*inc = d.openInc("DOWN", "", at, fmt.Sprintf("no request to %s since %s (%d min), about %.0f expected", d.platform, since, silent[k], silentExp[k]))
				} else {
					*inc = d.openInc("NET", s.school, at, fmt.Sprintf("no request from school %s to %s since %s (%d min), about %.0f expected", s.school, d.platform, since, silent[k], silentExp[k]))
				}
			case *inc != nil:
				d.tick(inc, s.req[i] == 0, at)
			}
		}
	}
}

// usual is the usual 5xx rate for a reason: measured, or "unknown" (the
// budget is then ErrFloor).
func (d *detector) usual() string {
	if math.IsNaN(d.usualRaw) {
		return "not known yet"
	}
	return pct(d.usualRaw)
}

// tick counts a minute of an open incident: cond says whether its
// condition still holds; after Quiet minutes without it, it clears at the
// first of them.
func (d *detector) tick(o **open, cond bool, at int64) {
	if cond {
		(*o).quiet = 0
		return
	}
	(*o).quiet++
	if (*o).quiet >= d.cfg.Quiet {
		(*o).inc.Cleared = at - int64(d.cfg.Quiet-1)*60
		*o = nil
	}
}

func (d *detector) openInc(code, school string, at int64, reason string) *open {
	id := "ph-" + d.platform + "-" + code
	if school != "" {
		id += "-" + school
	}
	id += "-" + time.Unix(at, 0).UTC().Format("20060102T1504Z")
	in := &Incident{ID: id, Code: code, Platform: d.platform, School: school, Opened: at, Reason: reason}
	d.out = append(d.out, in)
	return &open{inc: in}
}

// closeDay records the slots of minutes [from, to) of day.
func (d *detector) closeDay(s *series, day int64, from, to int) {
	var req, lat [slots]float64
	var cnt [slots]int
	lats := make([][]float64, slots)
	for i := from; i < to; i++ {
		sl := int(d.slot[i])
		req[sl] += float64(s.req[i])
		cnt[sl]++
		if s == d.total && !math.IsNaN(s.p95[i]) && s.req[i] > 0 {
			lats[sl] = append(lats[sl], s.p95[i])
		}
	}
	for sl := range slots {
		if cnt[sl] < slotMin {
			req[sl] = math.NaN() // a slot seen in part (the first day) is no sample
		}
		lat[sl] = median(lats[sl])
	}
	s.slotReq[day] = &req
	if s == d.total {
		s.slotLat[day] = &lat
	}
	// Keep the lookback only.
	for k := range s.slotReq {
		if k < day-int64(d.cfg.LookbackDays) {
			delete(s.slotReq, k)
			delete(s.slotLat, k)
		}
	}
}

// usualErrorRate is the median of the daily 5xx rates of the 7 days before
// minute i (days with at least 1000 requests), NaN without any.
func (d *detector) usualErrorRate(i int) float64 {
	var rates []float64
	for k := 1; k <= 7; k++ {
		end := i - (k-1)*1440 - 1
		if end-1439 < 0 {
			break
		}
		if n, e := window(d.total, end, 1440); n >= 1000 {
			rates = append(rates, float64(e)/float64(n))
		}
	}
	return median(rates)
}

// level is the ratio of the requests observed to those expected over the
// w minutes before minute i, between 0.05 and 1.5; 1 when fewer than 20
// were expected.
func level(s *series, i, w int) float64 {
	var obs, exp float64
	for j := max(0, i-w); j < i; j++ {
		if e := float64(s.exp[j]); !math.IsNaN(e) {
			obs += float64(s.req[j])
			exp += e
		}
	}
	if exp < 20 {
		return 1
	}
	return min(1.5, max(0.05, obs/exp))
}

// window sums requests and 5xx over the w minutes ending at i.
func window(s *series, i, w int) (n, e int64) {
	for j := max(0, i-w+1); j <= i; j++ {
		n += int64(s.req[j])
		e += int64(s.e5[j])
	}
	return n, e
}

// medianP95 is the median of the minute p95 over the w minutes ending at
// i, and the requests over them.
func medianP95(s *series, i, w int) (float64, int64) {
	var buf [16]float64
	v := buf[:0]
	var n int64
	for j := max(0, i-w+1); j <= i; j++ {
		n += int64(s.req[j])
		if !math.IsNaN(s.p95[j]) && s.req[j] > 0 {
			v = append(v, s.p95[j])
		}
	}
	return median(v), n
}

func ratio(e, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(e) / float64(n)
}

// pct formats a rate as a percentage, with one decimal below 10 %.
func pct(r float64) string {
	if r < 0.01 {
		return strings.Replace(fmt.Sprintf("%.2f %%", 100*r), "0 %", " %", 1)
	}
	if r < 0.1 {
		return strings.Replace(fmt.Sprintf("%.1f %%", 100*r), ".0 %", " %", 1)
	}
	return fmt.Sprintf("%.0f %%", 100*r)
}
