package academy

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Platform logs: requests per digital platform, school and minute, with
// status classes and latency, and incidents injected into them (the ground
// truth of platform_incidents.csv).
//
// Traffic. A school's rate of requests to a platform, per minute, is its
// number of students / 100 times the platform's peak rate times a profile
// of the local time of day (hourly knots, interpolated per minute) that
// depends on the kind of day: school day, Wednesday (lessons in the
// morning only), Saturday, Sunday or public holiday, and school holidays.
// A day has a level drawn per platform (σ 8 %) and per school (σ 10 %);
// the requests of a minute are Poisson. The vie scolaire platform has a
// spike in the first five minutes of each lesson hour (attendance is taken
// then). A minute without requests has no row.
//
// Statuses. 4xx are about 3 % of requests; 5xx about 0.2 %, with a
// per-minute rate drawn lognormally (σ 0.6), so that a few minutes have a
// handful of errors without any incident. Latency: a per-platform median
// and p95 that rise by up to 30 % at peak load, with noise that shrinks
// with the number of requests.
//
// Benign events (drawBenign) are not incidents: short 5xx and latency
// blips, a school's quiet day.
//
// Incidents, drawn from the seed alone, none in the first week (the
// detectors need a week of history): per platform, outages (90-100 % of
// requests answered 5xx, 15-120 min, users retrying: requests +30 %),
// error bursts (4-40 % 5xx, 10-60 min) and slowdowns (p95 latency ×2.5-8,
// median ×1.5-4, 20-120 min); per school, network cuts (no request from
// the school to any platform, 30-240 min). They start during the day:
// 07:30-18:00 on school days, 09:00-20:00 otherwise (local time).

// PlatformSpec is one digital platform.
type PlatformSpec struct {
	ID   string // ent, vie_scolaire, maths
	Name string
	// Peak is the requests per minute per 100 students at the busiest
	// hour of a school day.
	Peak     float64
	P50, P95 float64 // usual latency, ms
	profile  [numDayKinds][24]float64
	spikes   bool // attendance spikes at each lesson hour
}

// Day kinds of the traffic profiles.
const (
	dkSchool = iota
	dkWednesday
	dkSaturday
	dkSunday // and public holidays
	dkHoliday
	numDayKinds
)

// 0     1     2     3     4     5     6     7     8     9    10    11    12    13    14    15    16    17    18    19    20    21    22    23
var (
	entSchool = [24]float64{0.03, 0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.35, 0.85, 0.95, 0.9, 0.95, 0.55, 0.6, 0.9, 0.95, 0.85, 0.75, 0.7, 0.65, 0.55, 0.35, 0.15, 0.06}
	entWed    = [24]float64{0.03, 0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.35, 0.85, 0.95, 0.9, 0.9, 0.45, 0.3, 0.3, 0.3, 0.3, 0.35, 0.4, 0.4, 0.35, 0.25, 0.12, 0.05}
	entSat    = [24]float64{0.03, 0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.04, 0.08, 0.14, 0.18, 0.2, 0.15, 0.14, 0.16, 0.18, 0.18, 0.18, 0.17, 0.15, 0.13, 0.1, 0.06, 0.04}
	entSun    = [24]float64{0.03, 0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.03, 0.06, 0.1, 0.14, 0.16, 0.12, 0.12, 0.16, 0.22, 0.28, 0.34, 0.38, 0.4, 0.38, 0.28, 0.14, 0.05}
	entHol    = [24]float64{0.01, 0.01, 0.005, 0.005, 0.005, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.08, 0.06, 0.06, 0.07, 0.08, 0.08, 0.08, 0.08, 0.08, 0.07, 0.05, 0.03, 0.02}

	vsSchool = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.1, 0.45, 0.8, 0.7, 0.65, 0.7, 0.45, 0.5, 0.7, 0.7, 0.65, 0.7, 0.85, 0.9, 0.8, 0.5, 0.2, 0.06}
	vsWed    = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.1, 0.45, 0.8, 0.7, 0.65, 0.65, 0.4, 0.3, 0.3, 0.3, 0.3, 0.35, 0.5, 0.6, 0.55, 0.35, 0.15, 0.05}
	vsSat    = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.1, 0.15, 0.18, 0.18, 0.14, 0.12, 0.12, 0.14, 0.15, 0.16, 0.18, 0.2, 0.18, 0.12, 0.06, 0.03}
	vsSun    = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.03, 0.06, 0.1, 0.12, 0.12, 0.1, 0.1, 0.12, 0.16, 0.2, 0.26, 0.34, 0.42, 0.42, 0.3, 0.12, 0.04}
	vsHol    = [24]float64{0.01, 0.005, 0.005, 0.005, 0.005, 0.005, 0.01, 0.02, 0.03, 0.05, 0.06, 0.06, 0.05, 0.05, 0.05, 0.05, 0.05, 0.06, 0.06, 0.07, 0.06, 0.04, 0.02, 0.01}

	mathSchool = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.03, 0.1, 0.6, 0.75, 0.7, 0.7, 0.3, 0.35, 0.7, 0.75, 0.6, 0.7, 0.9, 0.95, 0.85, 0.55, 0.2, 0.05}
	mathWed    = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.03, 0.1, 0.6, 0.75, 0.7, 0.65, 0.3, 0.35, 0.55, 0.6, 0.6, 0.6, 0.65, 0.7, 0.65, 0.45, 0.18, 0.05}
	mathSat    = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.03, 0.08, 0.18, 0.25, 0.25, 0.15, 0.15, 0.2, 0.25, 0.25, 0.22, 0.2, 0.2, 0.18, 0.12, 0.06, 0.03}
	mathSun    = [24]float64{0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.12, 0.18, 0.2, 0.12, 0.12, 0.2, 0.3, 0.38, 0.45, 0.5, 0.55, 0.5, 0.35, 0.15, 0.04}
	mathHol    = [24]float64{0.01, 0.005, 0.005, 0.005, 0.005, 0.005, 0.005, 0.01, 0.03, 0.05, 0.07, 0.07, 0.05, 0.05, 0.06, 0.07, 0.08, 0.08, 0.08, 0.08, 0.07, 0.05, 0.02, 0.01}
)

// Platforms are the platforms of the logs, in output order.
var Platforms = []PlatformSpec{
	{ID: "ent", Name: "ENT", Peak: 8, P50: 120, P95: 420, profile: [numDayKinds][24]float64{entSchool, entWed, entSat, entSun, entHol}},
	{ID: "vie_scolaire", Name: "vie scolaire", Peak: 5, P50: 90, P95: 350, spikes: true, profile: [numDayKinds][24]float64{vsSchool, vsWed, vsSat, vsSun, vsHol}},
	{ID: "maths", Name: "maths platform", Peak: 4, P50: 150, P95: 600, profile: [numDayKinds][24]float64{mathSchool, mathWed, mathSat, mathSun, mathHol}},
}

// Kinds of injected incidents.
const (
	IncidentOutage   = "outage"   // a platform answers (almost) every request 5xx
	IncidentErrors   = "errors"   // a partial burst of 5xx
	IncidentSlowdown = "slowdown" // latency multiplied
	IncidentNetwork  = "network"  // a school sends no request to any platform
)

// PlatformIncident is one injected incident: Platform or School is "all"
// when every platform or school is affected. End is exclusive.
type PlatformIncident struct {
	ID         string
	Kind       string
	Platform   string
	School     string
	Start, End time.Time // UTC, minutes
	// Severity: the share of requests answered 5xx (outage, errors), the
	// factor of the p95 latency (slowdown), 1 (network).
	Severity float64
}

// PlatformRow is one row of the logs: a platform, a school and a minute
// with at least one request.
type PlatformRow struct {
	Minute                 time.Time // UTC, start of the minute
	Date                   string    // local day, YYYY-MM-DD
	Platform, School       string
	Requests               int
	S2xx, S4xx, S5xx       int
	LatencyP50, LatencyP95 float64 // ms
}

// PlatformLogs generates the platform logs of a term. Every series
// (platform, school) draws from a stream of its own, so the rows of one
// series do not depend on the others.
type PlatformLogs struct {
	Days      int       // number of days
	First     time.Time // first local day
	Incidents []PlatformIncident
	cal       *Calendar
	lay       *Layout
	size      []float64   // students per school / 100
	level     [][]float64 // per platform, per day: traffic level
	kind      []int       // day kind per day
	holiday   []bool      // per day
	dates     []string    // per day
	utc0      []time.Time // per day: UTC time of local midnight
	seed      uint64
	series    []*seriesGen // platform-major
	byPlat    [][]*PlatformIncident
	bySchool  [][]*PlatformIncident
	byPlatB   [][]*PlatformIncident // benign events
	bySchoolB [][]*PlatformIncident
	warmup    int
	NumSchool int
}

// PlatformDays is the default span of the logs: the first term (T1),
// from the first day of the school year to the end of November.
func PlatformDays(cal *Calendar) int {
	return int(cal.Periods[0].Last.Sub(cal.First).Hours()/24) + 1
}

// NewPlatformLogs prepares the logs of days days from the first day of
// the school year (0: PlatformDays) and draws the incidents.
func NewPlatformLogs(cal *Calendar, lay *Layout, seed uint64, days int) *PlatformLogs {
	if days <= 0 {
		days = PlatformDays(cal)
	}
	p := &PlatformLogs{Days: days, First: cal.First, cal: cal, lay: lay, seed: seed, warmup: 7, NumSchool: len(lay.Schools)}
	p.size = make([]float64, len(lay.Schools))
	for _, d := range lay.Divisions {
		p.size[d.School] += float64(d.Count) / 100
	}
	for d := range days {
		t := cal.First.AddDate(0, 0, d)
		k := dkSchool
		switch {
		case t.After(cal.Last) || isVacation(cal, t):
			k = dkHoliday
		case cal.HolidayOn(t) != "" || t.Weekday() == time.Sunday:
			k = dkSunday
		case t.Weekday() == time.Saturday:
			k = dkSaturday
		case t.Weekday() == time.Wednesday:
			k = dkWednesday
		}
		p.kind = append(p.kind, k)
		p.holiday = append(p.holiday, k == dkHoliday)
		p.dates = append(p.dates, day(t))
		p.utc0 = append(p.utc0, localMidnightUTC(t))
	}
	p.level = make([][]float64, len(Platforms))
	for pi := range Platforms {
		r := rand.New(rand.NewPCG(seed^0x6a09e667f3bcc908, uint64(pi)+1))
		for range days {
			p.level[pi] = append(p.level[pi], math.Exp(0.08*r.NormFloat64()))
		}
	}
	p.drawIncidents()
	for pi := range Platforms {
		for si := range lay.Schools {
			p.series = append(p.series, p.newSeries(pi, si))
		}
	}
	return p
}

// isVacation reports whether t is in school holidays (several days), not a
// public holiday alone.
func isVacation(cal *Calendar, t time.Time) bool {
	for _, h := range cal.Holidays {
		if h.Last.Sub(h.First) >= 24*time.Hour && !t.Before(h.First) && !t.After(h.Last) {
			return true
		}
	}
	return false
}

// localMidnightUTC is midnight of local day t in Europe/Paris, in UTC
// (UTC+1, UTC+2 from the last Sunday of March to the last Sunday of
// October).
func localMidnightUTC(t time.Time) time.Time {
	m := date(t.Year(), t.Month(), t.Day())
	return m.Add(-time.Duration(parisOffset(m)) * time.Hour)
}

// parisOffset is the offset of Europe/Paris from UTC, in hours, at UTC time t.
func parisOffset(t time.Time) int {
	y := t.Year()
	if !t.Before(lastSundayUTC(y, time.March)) && t.Before(lastSundayUTC(y, time.October)) {
		return 2
	}
	return 1
}

// lastSundayUTC is 01:00 UTC on the last Sunday of month m of year y.
func lastSundayUTC(y int, m time.Month) time.Time {
	t := time.Date(y, m+1, 1, 1, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	for t.Weekday() != time.Sunday {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

func (p *PlatformLogs) drawIncidents() {
	r := rand.New(rand.NewPCG(p.seed^0xbb67ae8584caa73b, 19))
	weeks := float64(p.Days) / 7
	when := func(minDur, maxDur int) (time.Time, time.Time) {
		d := p.warmup + r.IntN(max(1, p.Days-p.warmup))
		from, to := 9*60, 20*60
		if k := p.kind[d]; k == dkSchool || k == dkWednesday {
			from, to = 7*60+30, 18*60
		}
		start := p.utc0[d].Add(time.Duration(from+r.IntN(to-from)) * time.Minute)
		return start, start.Add(time.Duration(minDur+r.IntN(maxDur-minDur+1)) * time.Minute)
	}
	add := func(kind, plat, school string, n int, minDur, maxDur int, sev func() float64) {
		for range n {
			s, e := when(minDur, maxDur)
			p.Incidents = append(p.Incidents, PlatformIncident{Kind: kind, Platform: plat, School: school, Start: s, End: e, Severity: sev()})
		}
	}
	// Per platform and term of 13 weeks: about 2 outages, 3 error bursts
	// and 3 slowdowns; per school, one network cut every 4 terms or so.
	count := func(perWeek float64) int {
		n := 0
		for x := r.Float64(); x < perWeek*weeks && n < 1000; x += r.ExpFloat64() {
			n++
		}
		return n
	}
	for _, pl := range Platforms {
		add(IncidentOutage, pl.ID, "all", count(2.0/13), 15, 120, func() float64 { return 0.9 + 0.1*r.Float64() })
		add(IncidentErrors, pl.ID, "all", count(3.0/13), 10, 60, func() float64 { return 0.04 + 0.36*r.Float64() })
		add(IncidentSlowdown, pl.ID, "all", count(3.0/13), 20, 120, func() float64 { return 2.5 + 5.5*r.Float64() })
	}
	for _, sc := range p.lay.Schools {
		add(IncidentNetwork, "all", sc.ID, count(0.5/13), 30, 240, func() float64 { return 1 })
	}
	p.drawBenign(weeks)
	sortIncidents(p.Incidents)
	p.byPlat = make([][]*PlatformIncident, len(Platforms))
	p.bySchool = make([][]*PlatformIncident, len(p.lay.Schools))
	for i := range p.Incidents {
		in := &p.Incidents[i]
		in.ID = fmt.Sprintf("INC%03d", i+1)
		for pi, pl := range Platforms {
			if in.Platform == pl.ID {
				p.byPlat[pi] = append(p.byPlat[pi], in)
			}
		}
		for si, sc := range p.lay.Schools {
			if in.School == sc.ID {
				p.bySchool[si] = append(p.bySchool[si], in)
			}
		}
	}
}

// Benign events, not incidents and not in the ground truth, that a
// detector must not report: 5xx blips (1-2 min at 3-15 %, a deployment
// restarting), latency blips (1-2 min, p95 ×2-4) and a school's quiet day
// (its traffic ×0.3-0.6 to every platform, an outing or a mock exam).
const (
	benignBlip    = "blip"
	benignLatency = "latency_blip"
	benignQuiet   = "quiet_day"
)

// drawBenign draws the benign events from a stream of their own (the
// incidents do not depend on them).
func (p *PlatformLogs) drawBenign(weeks float64) {
	r := rand.New(rand.NewPCG(p.seed^0xa54ff53a5f1d36f1, 23))
	count := func(perWeek float64) int {
		n := 0
		for x := r.Float64(); x < perWeek*weeks && n < 1000; x += r.ExpFloat64() {
			n++
		}
		return n
	}
	at := func(minutes int) (time.Time, time.Time) {
		d := r.IntN(p.Days)
		start := p.utc0[d].Add(time.Duration(7*60+r.IntN(15*60)) * time.Minute)
		return start, start.Add(time.Duration(minutes) * time.Minute)
	}
	p.byPlatB = make([][]*PlatformIncident, len(Platforms))
	p.bySchoolB = make([][]*PlatformIncident, len(p.lay.Schools))
	for pi, pl := range Platforms {
		for range count(1) {
			s, e := at(1 + r.IntN(2))
			p.byPlatB[pi] = append(p.byPlatB[pi], &PlatformIncident{Kind: benignBlip, Platform: pl.ID, School: "all", Start: s, End: e, Severity: 0.03 + 0.12*r.Float64()})
		}
		for range count(1.5) {
			s, e := at(1 + r.IntN(2))
			p.byPlatB[pi] = append(p.byPlatB[pi], &PlatformIncident{Kind: benignLatency, Platform: pl.ID, School: "all", Start: s, End: e, Severity: 2 + 2*r.Float64()})
		}
	}
	for si, sc := range p.lay.Schools {
		for range count(0.3) {
			d := r.IntN(p.Days)
			p.bySchoolB[si] = append(p.bySchoolB[si], &PlatformIncident{Kind: benignQuiet, Platform: "all", School: sc.ID, Start: p.utc0[d], End: p.utc0[d].Add(24 * time.Hour), Severity: 0.3 + 0.3*r.Float64()})
		}
	}
}

func sortIncidents(in []PlatformIncident) {
	for i := 1; i < len(in); i++ {
		for j := i; j > 0 && (in[j].Start.Before(in[j-1].Start) || (in[j].Start.Equal(in[j-1].Start) && in[j].Kind+in[j].Platform+in[j].School < in[j-1].Kind+in[j-1].Platform+in[j-1].School)); j-- {
			in[j], in[j-1] = in[j-1], in[j]
		}
	}
}

// seriesGen is the generator of one (platform, school) series.
type seriesGen struct {
	p          *PlatformLogs
	pi, si     int
	r          *rand.Rand
	incs       []*PlatformIncident
	rate, load [25 * 60]float64 // of the current day
	loadDay    int
}

func (p *PlatformLogs) newSeries(pi, si int) *seriesGen {
	h := fnv.New64a()
	h.Write([]byte(Platforms[pi].ID + "/" + p.lay.Schools[si].ID))
	g := &seriesGen{p: p, pi: pi, si: si, r: rand.New(rand.NewPCG(p.seed^0x3c6ef372fe94f82b, h.Sum64())), loadDay: -1}
	g.incs = append(append(g.incs, p.byPlat[pi]...), p.bySchool[si]...)
	g.incs = append(append(g.incs, p.byPlatB[pi]...), p.bySchoolB[si]...)
	return g
}

// prepare computes the rates of day d.
func (g *seriesGen) prepare(d int) {
	pl := &Platforms[g.pi]
	level := math.Exp(0.1*g.r.NormFloat64()) * g.p.level[g.pi][d]
	prof := &pl.profile[g.p.kind[d]]
	base := g.p.size[g.si] * pl.Peak * level
	for m := range 25 * 60 {
		h := min(m/60, 23)
		f := float64(m%60) / 60
		v := prof[h]*(1-f) + prof[(h+1)%24]*f
		if pl.spikes && m%60 < 5 && h >= 8 && h <= 16 && (g.p.kind[d] == dkSchool || (g.p.kind[d] == dkWednesday && h < 12)) {
			v *= 2.5
		}
		g.rate[m] = base * v
		g.load[m] = v
	}
	g.loadDay = d
}

// row fills r with minute m (local minute of day) of day d; it reports
// false when the minute has no request.
func (g *seriesGen) row(d, m int, r *PlatformRow) bool {
	if g.loadDay != d {
		g.prepare(d)
	}
	pl := &Platforms[g.pi]
	t := g.p.utc0[d].Add(time.Duration(m) * time.Minute)
	lambda := g.rate[m]
	share5, slow50, slow95 := math.Exp(math.Log(0.002)+0.6*g.r.NormFloat64()), 1.0, 1.0
	noise50, noise95 := g.r.NormFloat64(), g.r.NormFloat64()
	u4 := g.r.Float64()
	for _, in := range g.incs {
		if t.Before(in.Start) || !t.Before(in.End) {
			continue
		}
		switch in.Kind {
		case IncidentNetwork:
			lambda = 0
		case IncidentOutage:
			lambda *= 1.3
			share5 = in.Severity
		case IncidentErrors:
			share5 = max(share5, in.Severity)
		case IncidentSlowdown, benignLatency:
			slow95 = in.Severity
			slow50 = 1 + (in.Severity-1)*0.45
		case benignBlip:
			share5 = max(share5, in.Severity)
		case benignQuiet:
			lambda *= in.Severity
		}
	}
	n := poisson(g.r, lambda)
	if n == 0 {
		return false
	}
	share5 = min(share5, 1)
	e5 := binomial(g.r, n, share5)
	e4 := binomial(g.r, n-e5, 0.03*(0.7+0.6*u4))
	load := 1 + 0.3*min(1, g.load[m])
	sn := 1 / math.Sqrt(float64(n))
	p50 := pl.P50 * load * slow50 * math.Exp((0.08+0.3*sn)*noise50)
	p95 := math.Max(p50*1.2, pl.P95*load*slow95*math.Exp((0.1+0.6*sn)*noise95))
	*r = PlatformRow{Minute: t, Date: g.p.dates[d], Platform: pl.ID, School: g.p.lay.Schools[g.si].ID,
		Requests: n, S2xx: n - e5 - e4, S4xx: e4, S5xx: e5, LatencyP50: math.Round(p50), LatencyP95: math.Round(p95)}
	return true
}

// Each calls fn for every row, minute by minute (then platform, school),
// in event-time order. The row is reused between calls.
func (p *PlatformLogs) Each(fn func(r *PlatformRow) error) error {
	return p.each(-1, fn)
}

// EachOf is Each for the rows of platform Platforms[pi] only: the same
// rows as Each gives for it.
func (p *PlatformLogs) EachOf(pi int, fn func(r *PlatformRow) error) error {
	return p.each(pi, fn)
}

func (p *PlatformLogs) each(pi int, fn func(r *PlatformRow) error) error {
	var r PlatformRow
	for d := range p.Days {
		mins := 24 * 60
		if d+1 < p.Days {
			mins = int(p.utc0[d+1].Sub(p.utc0[d]).Minutes()) // 23 or 25 hours on a change of time
		}
		for m := range mins {
			for _, g := range p.series {
				if pi >= 0 && g.pi != pi {
					continue
				}
				if g.row(d, m, &r) {
					if err := fn(&r); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// PlatformLogsHeader is the header of platform_logs.csv.
const PlatformLogsHeader = "minute,date,platform,school_id,requests,status_2xx,status_4xx,status_5xx,latency_p50_ms,latency_p95_ms\n"

// AppendCSV appends r as a line of platform_logs.csv.
func (r *PlatformRow) AppendCSV(b []byte) []byte {
	b = r.Minute.AppendFormat(b, "2006-01-02T15:04:05Z")
	b = append(b, ',')
	b = append(b, r.Date...)
	b = append(b, ',')
	b = append(b, r.Platform...)
	b = append(b, ',')
	b = append(b, r.School...)
	for _, v := range []int{r.Requests, r.S2xx, r.S4xx, r.S5xx, int(r.LatencyP50), int(r.LatencyP95)} {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(v), 10)
	}
	return append(b, '\n')
}

// IncidentsCSV is platform_incidents.csv, the ground truth.
func (p *PlatformLogs) IncidentsCSV() []byte {
	b := []byte("incident_id,kind,platform,school_id,start,end,severity\n")
	for _, in := range p.Incidents {
		b = csvRow(b, in.ID, in.Kind, in.Platform, in.School, in.Start.Format(time.RFC3339), in.End.Format(time.RFC3339), strconv.FormatFloat(in.Severity, 'f', 3, 64))
	}
	return b
}

// binomial draws from Binomial(n, p): Bernoulli trials up to 40, else
// Poisson (sim.go) for small n·p, else a rounded normal.
func binomial(r *rand.Rand, n int, p float64) int {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case n <= 40:
		k := 0
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return k
	case float64(n)*p < 10:
		return min(n, poisson(r, float64(n)*p))
	}
	mu := float64(n) * p
	return min(n, max(0, int(math.Round(mu+math.Sqrt(mu*(1-p))*r.NormFloat64()))))
}

// platform writes platform_logs.csv and platform_incidents.csv.
func (g *generation) platform() error {
	p := NewPlatformLogs(g.w.cal, g.w.lay, g.opt.Seed, g.opt.PlatformDays)
	o, err := g.create("platform_incidents.csv")
	if err != nil {
		return err
	}
	if err := o.write(p.IncidentsCSV()); err != nil {
		return err
	}
	o.rows--
	if o, err = g.create("platform_logs.csv"); err != nil {
		return err
	}
	b := []byte(PlatformLogsHeader)
	err = p.Each(func(r *PlatformRow) error {
		b = r.AppendCSV(b)
		if len(b) < 1<<20 {
			return nil
		}
		err := o.write(b)
		b = b[:0]
		return err
	})
	if err == nil {
		err = o.write(b)
	}
	o.rows--
	return err
}
