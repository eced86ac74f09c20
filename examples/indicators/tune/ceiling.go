package main

// The oracle of --ceiling: a detector that knows how `vigie gen` makes
// absences (synth/academy/sim.go, with the default profile) and sees
// only what a rule sees. For each student and school day it computes the
// posterior probability that a drift has started, from the absences
// recorded up to that day, and alerts the first day it crosses p*. It is
// (approximately) the Bayes-optimal detector for the generator's
// absences, so its curve bounds what any rule can do with them.

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vigie-edu/vigie/indicators"
	"github.com/vigie-edu/vigie/synth/academy"
)

// The generator's constants (sim.go) the profile does not hold.
const (
	sporadicRate = 0.003 // unjustified half-days outside episodes and drifts
	rampSlots    = 80    // a drift's rate reaches its full value after this many school half-days
	driftPeak    = 0.25  // its full rate, times the severity
	episodeMin   = 4     // an episode is 4 unjustified half-days, plus one more with chance episodeMore each
	episodeMore  = 0.6
	shortEpisode = 0.003
	truancySigma = 1.0 // log-normal spread of the truancy propensity
	truancyCap   = 0.95
	maxEpisode   = 160 // the episode sizes summed over
)

// oracle holds the generator's model on one school calendar; read-only
// once built.
type oracle struct {
	n        int           // school half-days (slots)
	slot     map[int32]int // half-day key (day*2, +1 for PM) -> slot
	dayFirst []int         // first slot of each school day, then n
	day      []int32       // date of each school day (days since 1970)
	month    []int         // month of each slot
	mFirst   []int         // first slot of each month, then n
	onset    []int         // school days a drift may start on
	onsetW   []float64     // their prior chances (sum 1)
	sev, v   []float64     // severity grid; chance of an episode in a drift month
	u        [3][]float64  // truancy grid per track (college, lgt, lp)
	logUW    []float64     // log of its weights
	rho      [3]float64    // drift rate per track
	// Signals of a drift (newStudent): absences with chance pa, marks pm
	// when the drift can lower a term shown before the year ends (aff: it
	// starts 30 days or more before the end of T2), the platform (see
	// platform.go); with none, absences.
	aff       []bool
	pa, pm    float64
	onsetWeek []int // school week of each onset
	weeks     []int // the onset weeks
	pl        *platform
	marksDay  int // first school day the T2 marks are known
	// open[track][i][d]: the chance that an alert on school day d is true
	// (vigie eval) for a drift of onset i: before the exit of a dropout,
	// before the end + 30 days of a drift that recovers. With window set
	// the posterior is that of a drift started and still open to a true
	// alert; without, of a drift started.
	open    [3][][]float64
	window  bool
	present float64       // 1 - the mean justified rate
	w       [][][]float64 // w[n][no][j]: see episodeW
	// Per severity and lag (slot - onset slot): log chance of an
	// unjustified and of a present half-day, and 1/chance unjustified.
	lp1, lp0, rinv [][]float64
	lq1, lq0, rq   float64 // the same outside a drift
}

func binom(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(a - b - c)
}

// episodeW is the chance, for an episode placed uniformly over a window of
// nn half-days of which the first no are observed, that the episode's
// half-days among the observed ones are one given set of j half-days:
// sum over k of P(k) C(nn-no, k-j) / C(nn, k), with the episode size
// capped at the window.
//
// An episode placed in a month the student leaves, or over a sick week,
// can have fewer than 4 half-days: sizes 1 to 3 get a small chance
// (shortEpisode each).
func episodeW(nn, no, j int) float64 {
	var s float64
	for k := 1; k <= maxEpisode; k++ {
		pk := shortEpisode
		if k >= episodeMin {
			pk = (1 - 3*shortEpisode) * (1 - episodeMore) * math.Pow(episodeMore, float64(k-episodeMin))
		}
		kk := min(k, nn)
		s += pk * binom(nn-no, kk-j) / binom(nn, kk)
	}
	return s
}

func newOracle(p academy.Profile, year int, zone string) (*oracle, error) {
	cal, err := academy.NewCalendar(year, zone)
	if err != nil {
		return nil, err
	}
	o := &oracle{n: len(cal.Slots), slot: map[int32]int{}, present: 1 - p.JustifiedRate}
	epoch := func(t time.Time) int32 { return int32(t.Unix() / 86400) }
	o.mFirst = make([]int, len(cal.Months)+1)
	for i := range o.mFirst {
		o.mFirst[i] = -1
	}
	for i, s := range cal.Slots {
		d := epoch(s.Date)
		o.slot[d*2+int32(s.Half)] = i
		if i == 0 || cal.Slots[i-1].Day != s.Day {
			o.dayFirst = append(o.dayFirst, i)
			o.day = append(o.day, d)
		}
		o.month = append(o.month, s.Month)
		if o.mFirst[s.Month] < 0 {
			o.mFirst[s.Month] = i
		}
	}
	o.dayFirst = append(o.dayFirst, o.n)
	o.mFirst[len(cal.Months)] = o.n
	for i := len(cal.Months) - 1; i >= 0; i-- {
		if o.mFirst[i] < 0 {
			o.mFirst[i] = o.mFirst[i+1]
		}
	}
	slotAt := func(t time.Time) int {
		for i, s := range cal.Slots {
			if !s.Date.Before(t) {
				return i
			}
		}
		return o.n
	}
	// A drift starts on a slot drawn uniformly from [Nov 1, Mar 15); the
	// oracle starts it on the first slot of that school day.
	lo := slotAt(time.Date(year, time.November, 1, 0, 0, 0, 0, time.UTC))
	hi := slotAt(time.Date(year+1, time.March, 15, 0, 0, 0, 0, time.UTC))
	o.pa, o.pm = p.SignalAbsences, p.SignalMarks
	t2 := cal.Periods[1].Last
	o.marksDay = len(o.day)
	for d := range o.day {
		a, b := max(o.dayFirst[d], lo), min(o.dayFirst[d+1], hi)
		if b > a {
			o.onset = append(o.onset, d)
			o.onsetW = append(o.onsetW, float64(b-a)/float64(hi-lo))
			aff := t2.After(cal.Slots[o.dayFirst[d]].Date.AddDate(0, 0, 30))
			o.aff = append(o.aff, aff)
			o.onsetWeek = append(o.onsetWeek, cal.Slots[o.dayFirst[d]].Week)
			if n := len(o.weeks); n == 0 || o.weeks[n-1] != cal.Slots[o.dayFirst[d]].Week {
				o.weeks = append(o.weeks, cal.Slots[o.dayFirst[d]].Week)
			}
		}
		if o.marksDay == len(o.day) && !cal.Slots[o.dayFirst[d]].Date.Before(t2) {
			o.marksDay = d
		}
	}
	o.pl = newPlatform(p, cal, o)
	for k := range 4 {
		s := 0.6 + 0.4*(float64(k)+0.5)/4
		o.sev = append(o.sev, s)
		o.v = append(o.v, 0.55+0.4*s)
	}
	// Truancy: base rate of the track (newWorld) times a log-normal of mean 1.
	var zs []float64
	var ws float64
	for z := -4.0; z <= 4.5+1e-9; z += 0.25 {
		zs = append(zs, z)
		ws += math.Exp(-z * z / 2)
	}
	for _, z := range zs {
		o.logUW = append(o.logUW, -z*z/2-math.Log(ws))
	}
	for t := academy.College; t <= academy.LP; t++ {
		extra := p.DriftRate.Of(t) * p.SignalAbsences * 0.30 * 0.85
		base := math.Max(0, (p.Unjustified4.Of(t)-extra)/(1-p.DriftRate.Of(t)+1e-9)) / 0.97
		for _, z := range zs {
			o.u[t] = append(o.u[t], math.Min(truancyCap, base*math.Exp(truancySigma*z-truancySigma*truancySigma/2)))
		}
		o.rho[t] = p.DriftRate.Of(t)
	}
	maxN := 0
	for m := 0; m+1 < len(o.mFirst); m++ {
		maxN = max(maxN, o.mFirst[m+1]-o.mFirst[m])
	}
	o.w = make([][][]float64, maxN+1)
	for nn := 1; nn <= maxN; nn++ {
		o.w[nn] = make([][]float64, nn+1)
		for no := 0; no <= nn; no++ {
			o.w[nn][no] = make([]float64, no+1)
			for j := 0; j <= no; j++ {
				o.w[nn][no][j] = episodeW(nn, no, j)
			}
		}
	}
	// Exit (dropouts: 28 to 111 days after the onset, at most at slot
	// n-40) and end (the others: 42 to 83 days) as sim.go draws them.
	firstOn := func(t time.Time) int { // first slot on or after t
		for i, s := range cal.Slots {
			if !s.Date.Before(t) {
				return i
			}
		}
		return o.n
	}
	lastDay := epoch(cal.Last)
	for t := academy.College; t <= academy.LP; t++ {
		pd := p.DropoutGivenDrift.Of(t)
		for _, od := range o.onset {
			day0 := cal.Slots[o.dayFirst[od]].Date
			var exits, ends []int32
			for delay := 28; delay < 28+84; delay++ {
				exits = append(exits, epoch(cal.Slots[min(firstOn(day0.AddDate(0, 0, delay)), o.n-40)].Date))
			}
			for l := 42; l < 84; l++ {
				e := lastDay
				if s := firstOn(day0.AddDate(0, 0, l)); s < o.n {
					e = epoch(cal.Slots[s].Date)
				}
				ends = append(ends, e+30)
			}
			row := make([]float64, len(o.day))
			for d, day := range o.day {
				var a, b float64
				for _, x := range exits {
					if x > day {
						a++
					}
				}
				for _, x := range ends {
					if x > day {
						b++
					}
				}
				row[d] = pd*a/float64(len(exits)) + (1-pd)*b/float64(len(ends))
			}
			o.open[t] = append(o.open[t], row)
		}
	}
	o.lq1, o.lq0, o.rq = math.Log(sporadicRate), math.Log(o.present-sporadicRate), 1/sporadicRate
	for _, s := range o.sev {
		var l1, l0, r []float64
		for lag := 0; lag <= o.n; lag++ {
			pu := sporadicRate + s*driftPeak*math.Min(1, float64(lag)/rampSlots)
			l1 = append(l1, math.Log(pu))
			l0 = append(l0, math.Log(o.present-pu))
			r = append(r, 1/pu)
		}
		o.lp1, o.lp0, o.rinv = append(o.lp1, l1), append(o.lp0, l0), append(o.rinv, r)
	}
	return o, nil
}

func trackIndex(t string) int {
	switch t {
	case "lgt":
		return 1
	case "lp":
		return 2
	}
	return 0
}

// marksLogRatio is the log of the chance of a student's T1 and T2 marks
// (pairs, one per subject marked in both) if the drift lowers the T2 marks
// (by 5 to 8 points, all subjects) against if it does not; either way a
// bad term (3 to 5 points, all subjects) may lower T1 or T2. The change of
// a subject's mark has a spread of 1.6*sqrt(2) (the noise of two marks;
// the student's level cancels out). A mark of 2 or less may be a typo
// (decimal slip: the mark rounded, /10), with chance typoRate; its
// rounded value counts then (a mass 10 times that of a mark's 0.1 step).
func marksLogRatio(pairs [][2]float64) float64 {
	if len(pairs) == 0 {
		return 0
	}
	const sd, typoRate = 1.6 * math.Sqrt2, 0.002
	g := func(x float64) float64 { z := x / sd; return math.Exp(-z*z/2) / (sd * math.Sqrt(2*math.Pi)) }
	logLik := func(mu float64) float64 {
		var l float64
		for _, m := range pairs {
			p := (1 - 2*typoRate) * g(m[1]-m[0]-mu)
			if m[1] <= 2 {
				p += typoRate * 10 * g(10*m[1]-m[0]-mu)
			}
			if m[0] <= 2 {
				p += typoRate * 10 * g(m[1]-10*m[0]-mu)
			}
			l += math.Log(p + 1e-300)
		}
		return l
	}
	// The term effects (T2 - T1): no bad term in T1 or T2 (0.92), a bad T1
	// (0.04), a bad T2 (0.04).
	mix := func(shift float64) float64 {
		ls := []float64{math.Log(0.92) + logLik(shift)}
		for k := range 5 {
			bd := 3 + 2*(float64(k)+0.5)/5
			ls = append(ls, math.Log(0.04/5)+logLik(shift+bd), math.Log(0.04/5)+logLik(shift-bd))
		}
		return logSumExp(ls)
	}
	var ls []float64
	for k := range 5 {
		ls = append(ls, math.Log(0.2)+mix(-(5+3*(float64(k)+0.5)/5)))
	}
	return logSumExp(ls) - mix(0)
}

// marksPairs returns the T1 and T2 marks of each subject marked in both.
func marksPairs(ev []indicators.Event) [][2]float64 {
	t1 := map[string]float64{}
	for _, e := range ev {
		if e.Kind == indicators.Mark && e.Term == 0 && !math.IsNaN(e.Mark) {
			t1[e.Subject] = e.Mark
		}
	}
	var ps [][2]float64
	for _, e := range ev {
		if e.Kind == indicators.Mark && e.Term == 1 && !math.IsNaN(e.Mark) {
			if m, ok := t1[e.Subject]; ok {
				ps = append(ps, [2]float64{m, e.Mark})
			}
		}
	}
	return ps
}

// hyp is one drift hypothesis (onset, severity) once its onset has passed.
type hyp struct {
	d0, m0, k int
	i         int // onset index
	aff       bool
	logW      float64   // log prior
	acc       float64   // log-likelihood of its finished months from the onset on
	f         float64   // this month: log-likelihood of the half-days outside an episode
	e         []float64 // elementary symmetric sums of 1/p over the unjustified half-days of the window
	a0, nobs  int       // this month's episode window starts at a0; observed half-days in it
}

// An episode's half-day is recorded as a late arrival (retard) with chance
// 0.15, else as an unjustified absence (injustifie); a sporadic or drift
// half-day always as an unjustified absence.
var lateEp, injEp = math.Log(0.15), 0.85

// shift multiplies the polynomial of coefficients e by x: a half-day that
// must belong to the episode.
func shift(e []float64) []float64 {
	e = append(e, 0)
	copy(e[1:], e[:len(e)-1])
	e[0] = 0
	return e
}

// addR adds a root r to the elementary symmetric sums e.
func addR(e []float64, r float64) []float64 {
	e = append(e, 0)
	for j := len(e) - 1; j >= 1; j-- {
		e[j] += r * e[j-1]
	}
	return e
}

// monthFactor is the log of the chance of this month's observed half-days
// beyond the sporadic ones: no episode (1-v; impossible after a late
// arrival, e[0] = 0), or an episode (v) that covers some of the
// unjustified ones.
func monthFactor(v float64, e, w []float64) float64 {
	var x float64
	for j, ej := range e {
		x += ej * w[j]
	}
	return math.Log((1-v)*e[0] + v*x)
}

func logSumExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	var s float64
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}

// oracleWork is one goroutine's scratch space.
type oracleWork struct {
	unj, late, jus []bool
	hyps           []hyp
	buf, buf2      []float64
	mult1, mult0   []float64
	plat           platState
	prefix         []float64
	q              []float64
}

// observed is what the oracle reads of a student: half-day keys (day*2, +1
// for PM) of the unjustified absences as first recorded, of those among
// them recorded as late arrivals (retard), of the justified ones, and the
// T1 and T2 marks of each subject (marksPairs; nil: marks unused), the
// dates of the platform sessions.
type observed struct {
	Unj, Late, Jus []int32
	Marks          [][2]float64
	Sessions       []int32 // dates of the platform sessions (nil: platform unused)
}

// posterior fills post[d] with the posterior chance, given the absences
// recorded up to school day d (and the marks, from the day the T2 marks are
// known), that the student's drift has started by d. It stops after the first day
// the posterior reaches stop (the rest of post is left NaN), and, unless
// all is set, does not compute it before the first unjustified half-day
// or the marks (left NaN).
func (o *oracle) posterior(wk *oracleWork, track int, ob observed, stop float64, all bool, post []float64) {
	unj, jus, marks := ob.Unj, ob.Jus, ob.Marks
	if len(wk.unj) != o.n {
		wk.unj, wk.late, wk.jus = make([]bool, o.n), make([]bool, o.n), make([]bool, o.n)
	}
	clear(wk.unj)
	clear(wk.late)
	clear(wk.jus)
	for _, h := range unj {
		if s, ok := o.slot[h]; ok {
			wk.unj[s] = true
		}
	}
	for _, h := range ob.Late {
		if s, ok := o.slot[h]; ok && wk.unj[s] {
			wk.late[s] = true
		}
	}
	for _, h := range jus {
		if s, ok := o.slot[h]; ok && !wk.unj[s] {
			wk.jus[s] = true
		}
	}
	for i := range post {
		post[i] = math.NaN()
	}
	us, rho := o.u[track], o.rho[track]
	// The marks' likelihood ratio, drift against none, from the T2 marks on.
	ratio := math.Exp(marksLogRatio(marks))
	ng := len(us)
	if cap(wk.prefix) < ng {
		wk.prefix = make([]float64, ng)
	}
	prefix := wk.prefix[:ng]
	clear(prefix)
	wk.q = wk.q[:0]
	for range len(o.mFirst) {
		wk.q = append(wk.q, 0)
	}
	hyps := wk.hyps[:0]
	// The month under way, without a drift.
	mc := o.month[0]
	wk.q[mc] = logSumExp(o.logUW)
	var f0 float64
	lateMonth := false // a late arrival this month: an episode before any onset today
	e0 := []float64{1}
	nobs0 := 0
	// Before the first unjustified half-day (and without marks or
	// sessions read) the posterior is at most the share of drifters
	// without the absence signal, below 0.02 on every track
	// (TestOracleNoAbsences checks it): it is not computed there.
	from := len(o.day)
	if len(unj) > 0 {
		first := unj[0]
		for _, h := range unj {
			first = min(first, h)
		}
		for d, day := range o.day {
			if day >= first/2 {
				from = d
				break
			}
		}
	}
	if len(marks) > 0 {
		from = min(from, o.marksDay)
	}
	if all {
		from = 0
	}
	if ob.Sessions != nil {
		from = 0 // the platform alone can raise the posterior
		o.pl.reset(&wk.plat, ob.Sessions)
	} else {
		o.pl.prior(&wk.plat)
	}
	if len(wk.mult1) != len(o.onset) {
		wk.mult1, wk.mult0 = make([]float64, len(o.onset)), make([]float64, len(o.onset))
	}
	next := 0 // next onset to activate
	for d := range o.day {
		a := o.dayFirst[d]
		if m := o.month[a]; m != mc {
			nn := o.mFirst[mc+1] - o.mFirst[mc]
			w := o.w[nn][nobs0]
			var x float64
			for j, ej := range e0 {
				x += ej * w[j]
			}
			for g, u := range us {
				prefix[g] += f0 + math.Log((1-u)*e0[0]+u*x)
			}
			for i := range hyps {
				h := &hyps[i]
				nh := o.mFirst[mc+1] - h.a0
				h.acc += h.f + monthFactor(o.v[h.k], h.e, o.w[nh][h.nobs])
				h.f, h.e, h.a0, h.nobs = 0, append(h.e[:0], 1), o.mFirst[m], 0
			}
			mc = m
			wk.buf = wk.buf[:0]
			for g := range us {
				wk.buf = append(wk.buf, o.logUW[g]+prefix[g])
			}
			wk.q[mc] = logSumExp(wk.buf)
			f0, e0, nobs0, lateMonth = 0, append(e0[:0], 1), 0, false
		}
		// Drifts starting today: the month so far had no episode.
		for next < len(o.onset) && o.onset[next] == d {
			for k := range o.sev {
				var e []float64
				if len(hyps) < cap(hyps) {
					e = hyps[:len(hyps)+1][len(hyps)].e[:0]
				}
				lw := math.Log(rho * o.onsetW[next] / float64(len(o.sev)))
				if lateMonth { // the onset month has no episode before the onset
					lw = math.Inf(-1)
				}
				hyps = append(hyps, hyp{d0: a, m0: mc, k: k, i: next, aff: o.aff[next], logW: lw, f: f0, e: append(e, 1), a0: a})
			}
			next++
		}
		for s := a; s < o.dayFirst[d+1]; s++ {
			nobs0++
			switch {
			case wk.late[s]: // an episode's
				f0 += lateEp
				e0 = shift(e0)
				lateMonth = true
			case wk.unj[s]:
				f0 += o.lq1
				e0 = addR(e0, o.rq*injEp)
			case !wk.jus[s]:
				f0 += o.lq0
			}
			for i := range hyps {
				h := &hyps[i]
				h.nobs++
				lag := s - h.d0
				switch {
				case wk.late[s]:
					h.f += lateEp
					h.e = shift(h.e)
				case wk.unj[s]:
					h.f += o.lp1[h.k][lag]
					h.e = addR(h.e, o.rinv[h.k][lag]*injEp)
				case !wk.jus[s]:
					h.f += o.lp0[h.k][lag]
				}
			}
		}
		if d < from {
			continue
		}
		// Posterior, relative to the no-drift likelihood.
		nn := o.mFirst[mc+1] - o.mFirst[mc]
		w := o.w[nn][nobs0]
		var x float64
		for j, ej := range e0 {
			x += ej * w[j]
		}
		wk.buf = wk.buf[:0]
		for g, u := range us {
			wk.buf = append(wk.buf, o.logUW[g]+prefix[g]+f0+math.Log((1-u)*e0[0]+u*x))
		}
		l0 := logSumExp(wk.buf)
		// The signals of a drift of onset i, given the marks (known from
		// marksDay) and the platform sessions of the weeks read: weight of
		// the absence signal (mult1) and of none (mult0).
		if ob.Sessions != nil {
			o.pl.update(&wk.plat, o.pl.complete[d], o.weeks)
		}
		lm := 1.0
		if d >= o.marksDay {
			lm = ratio
		}
		pa, ps := o.pa, &wk.plat
		for i := range o.onset {
			m := 0.0
			if o.aff[i] {
				m = o.pm
			}
			lp1, lp0 := ps.lp1[o.onsetWeek[i]], ps.stay-ps.lc[o.onsetWeek[i]]
			// Platform signal kept: absences with chance pa; not kept:
			// absences also when the marks do not show.
			wk.mult1[i] = lp1*pa*(m*lm+1-m) + lp0*(pa*m*lm+1-m)
			wk.mult0[i] = lp1*(1-pa)*(m*lm+1-m) + lp0*(1-pa)*m*lm
		}
		// Onsets later this month (no episode yet this month) and later.
		var curAfter, later, a0After float64
		for i := next; i < len(o.onset); i++ {
			if o.month[o.dayFirst[o.onset[i]]] == mc {
				curAfter += o.onsetW[i] * wk.mult1[i]
			} else {
				later += o.onsetW[i] * wk.mult1[i]
			}
			a0After += o.onsetW[i] * wk.mult0[i]
		}
		var m0, m0open float64
		open := o.open[track]
		for i := range next {
			m0 += o.onsetW[i] * wk.mult0[i]
			m0open += o.onsetW[i] * wk.mult0[i] * open[i][d]
		}
		wk.buf, wk.buf2 = wk.buf[:0], wk.buf2[:0]
		for i := range hyps {
			h := &hyps[i]
			x := h.logW + wk.q[h.m0] + h.acc + h.f + monthFactor(o.v[h.k], h.e, o.w[o.mFirst[mc+1]-h.a0][h.nobs]) - l0
			x += math.Log(wk.mult1[h.i])
			wk.buf = append(wk.buf, x)
			if o.window {
				wk.buf2 = append(wk.buf2, x+math.Log(open[h.i][d]))
			}
		}
		started := math.Exp(logSumExp(wk.buf))
		if lateMonth {
			curAfter = 0
		}
		notYet := rho * (curAfter*math.Exp(wk.q[mc]+f0-l0) + later + a0After)
		// A student who does not drift: 1 (the platform's likelihoods are
		// relative to this one).
		z := (1 - rho) + notYet + started + rho*m0
		post[d] = (started + rho*m0) / z
		if o.window {
			post[d] = (math.Exp(logSumExp(wk.buf2)) + rho*m0open) / z
		}
		if post[d] >= stop {
			break
		}
	}
	wk.hyps = hyps
}

// path is a student's posterior from school day from on (NaN where not
// computed; after the posterior reaches the stop value it is taken to stay
// there).
type path struct {
	from int
	p    []float32
}

// oracleAlerts fills res with the oracle's alerts at threshold p: an alert
// opens the first day the posterior reaches p; with rearm, it closes when
// the posterior falls below p/2 and the next crossing opens another.
func oracleAlerts(o *oracle, res []indicators.Result, paths []path, p float64, rearm bool) []indicators.Result {
	for i, pa := range paths {
		res[i].Alerts = res[i].Alerts[:0]
		open := false
		for k, x := range pa.p {
			switch {
			case math.IsNaN(float64(x)):
			case !open && float64(x) >= p:
				res[i].Alerts = append(res[i].Alerts, indicators.Alert{Code: "ORACLE", Opened: o.day[pa.from+k], Closed: -1})
				open = true
			case open && float64(x) < p/2 && rearm:
				open = false
			}
			if open && !rearm {
				break
			}
		}
	}
	return res
}

// ceiling runs the oracle over every student and prints its curve,
// counted as `vigie eval` counts (count).
func ceiling(studs []student, marks, platform, window, miss bool) error {
	o, err := newOracle(academy.DefaultProfile(), 2025, "C")
	if err != nil {
		return err
	}
	o.window = window
	start := time.Now()
	nd := len(o.day)
	paths := make([]path, len(studs))
	var wg sync.WaitGroup
	nw := runtime.GOMAXPROCS(0)
	for k := range nw {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &oracleWork{}
			post := make([]float64, nd)
			for i := k; i < len(studs); i += nw {
				s := &studs[i]
				ob := observed{Unj: s.Unj, Late: s.Late, Jus: s.Jus}
				if marks {
					ob.Marks = marksPairs(s.Events)
				}
				if platform {
					ob.Sessions = []int32{}
					for _, e := range s.Events {
						if e.Kind == indicators.Activity {
							ob.Sessions = append(ob.Sessions, e.Day)
						}
					}
				}
				o.posterior(wk, trackIndex(s.Track), ob, 0.999, false, post)
				from, to := nd, 0
				for d, p := range post {
					if !math.IsNaN(p) {
						from, to = min(from, d), d+1
					}
				}
				if to > from {
					paths[i].from = from
					for _, p := range post[from:to] {
						paths[i].p = append(paths[i].p, float32(p))
					}
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("oracle posterior over %d students in %s\n", len(studs), time.Since(start).Round(time.Second))
	calibration(o, studs, paths)
	evidence(o, studs)
	res := make([]indicators.Result, len(studs))
	if ceilingCurve != nil {
		ps := []float64{0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}
		for _, p := range ps {
			*ceilingCurve = append(*ceilingCurve, point{p, count(studs, oracleAlerts(o, res, paths, p, true), false)})
		}
		return nil
	}
	for mode := range 3 {
		rearm := mode > 0
		alertAt := func(p float64) quality {
			res := oracleAlerts(o, res, paths, p, rearm)
			if mode == 2 {
				perfectPlatform(studs, res)
			}
			return count(studs, res, false)
		}
		switch mode {
		case 0:
			fmt.Println("one alert per student, the first day the posterior reaches p*:")
		case 1:
			fmt.Println("\nalerts re-armed when the posterior falls below p*/2:")
		case 2:
			fmt.Println("\nthe same, and every drifter with the platform signal (ground truth) alerted on the day its drift starts, without a false alert:")
		}
		fmt.Printf("%-7s %-7s %-9s %-6s %-6s %s\n", "p*", "recall", "precision", "lead", "false", "alerted")
		for _, p := range []float64{0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99} {
			q := alertAt(p)
			fmt.Printf("%-7.2f %-7.3f %-9.3f %-6.0f %-6.2f %d\n", p, q.Recall, q.Precision, q.MedianLeadDays, q.FalsePer1000, q.Alerted)
		}
		// The best precision at recall >= 0.85, and the best recall at
		// precision >= 0.6, over a fine sweep.
		var atR, atP quality
		var pR, pP float64
		for i := 1; i < 200; i++ {
			p := 0.05 + 0.95*float64(i)/200
			q := alertAt(p)
			if q.Recall >= 0.85 && q.Precision > atR.Precision {
				atR, pR = q, p
			}
			if q.Precision >= 0.6 && q.Recall > atP.Recall {
				atP, pP = q, p
			}
		}
		fmt.Printf("best precision at recall >= 0.85: p* %.3f  %s\n", pR, atR)
		fmt.Printf("best recall at precision >= 0.6:  p* %.3f  %s\n", pP, atP)
	}
	if miss {
		fmt.Printf("p* 0.5: %s\n", count(studs, oracleAlerts(o, res, paths, 0.5, false), true))
	}
	return nil
}

// perfectPlatform replaces the alerts of every drifter whose drift shows on
// the platform (ground truth) by one true alert on the day the drift
// starts: a bound on what reading the platform could add to the oracle.
func perfectPlatform(studs []student, res []indicators.Result) {
	for i, s := range studs {
		if s.Drifts && strings.Contains(s.Signals, "platform") {
			res[i].Alerts = append(res[i].Alerts[:0], indicators.Alert{Code: "PLATFORM", Opened: s.TrueFrom, Closed: -1})
		}
	}
}

// calibration prints, over every student and school day the posterior was
// computed, the share of drifts started by that day (with window: and for
// which an alert that day would be true) per band of the posterior: for a
// right likelihood it matches the mean posterior.
func calibration(o *oracle, studs []student, paths []path) {
	bands := []float64{0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0001}
	n := make([]int, len(bands)-1)
	sum, started := make([]float64, len(n)), make([]int, len(n))
	for i, pa := range paths {
		for k, x := range pa.p {
			if math.IsNaN(float64(x)) {
				continue
			}
			b := 0
			for b+1 < len(n) && float64(x) >= bands[b+1] {
				b++
			}
			n[b]++
			sum[b] += float64(x)
			day, st := o.day[pa.from+k], &studs[i]
			if st.Drifts && day >= st.TrueFrom && (!o.window || day < st.TrueTo) {
				started[b]++
			}
		}
	}
	fmt.Println("calibration (student-days): posterior band, days, mean posterior, share with the event")
	for b := range n {
		if n[b] > 0 {
			fmt.Printf("  [%.2f, %.2f)  %9d  %.3f  %.3f\n", bands[b], min(1, bands[b+1]), n[b], sum[b]/float64(n[b]), float64(started[b])/float64(n[b]))
		}
	}
}

// evidence prints what the dropouts' data show before they leave: the
// signals of their drift (ground truth) that can show before the exit day,
// and the unjustified half-days recorded from the drift's start to the
// exit.
func evidence(o *oracle, studs []student) {
	t2 := o.day[o.marksDay]
	var drop, abs, marks, plat, any int
	var unjBy [6]int // 0..4, 5+
	for _, s := range studs {
		if !s.Dropout {
			continue
		}
		drop++
		a := strings.Contains(s.Signals, "absences")
		m := strings.Contains(s.Signals, "marks") && s.Out > t2
		p := strings.Contains(s.Signals, "platform")
		if a {
			abs++
			k := 0
			for _, h := range s.Unj {
				if d := h / 2; d >= s.TrueFrom && d < s.Out {
					k++
				}
			}
			unjBy[min(k, 5)]++
		}
		if m {
			marks++
		}
		if p {
			plat++
		}
		if a || m || p {
			any++
		}
	}
	fmt.Printf("dropouts %d: absence signal %d (%.3f), marks signal and still there when the T2 marks are known %d, platform signal %d; any of them %d (%.3f)\n",
		drop, abs, float64(abs)/float64(drop), marks, plat, any, float64(any)/float64(drop))
	fmt.Printf("  with the absence signal, unjustified half-days from the drift's start to the exit: 0: %d, 1: %d, 2: %d, 3: %d, 4: %d, 5+: %d\n",
		unjBy[0], unjBy[1], unjBy[2], unjBy[3], unjBy[4], unjBy[5])
}
