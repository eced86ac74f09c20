package indicators

// The code of Evaluate before its speed-ups (commit 83f6a16), kept as the
// reference that TestEvaluateMatchesReference compares it with, bit for bit.

import (
	"math"
	"slices"
	"strings"
	"time"
)

// evaluateRef is Evaluate as of commit 83f6a16, before the speed-ups: the
// reference the optimised code must match bit for bit.
//
// It replays a student's timeline day by day, up to the report day,
// and returns its state on that day and every alert opened on the way.
// events may be in any order; Evaluate sorts them.
func (c *Config) evaluateRef(student string, events []Event) Result {
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
	slices.SortStableFunc(events, func(a, b Event) int { return int(a.Day - b.Day) })
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
	// Per-day counts, offsets from start; prefix sums p[i] = sum of days < i.
	school := make([]int32, n+1)
	absAll := make([]int32, n+1)
	unj := make([]int32, n+1)
	sess := make([]int32, n+1)
	type corr struct{ day, known int32 }
	var corrections []corr
	var marks []Event
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
	for i := 0; i < n; i++ {
		d := start + int32(i)
		if !c.NoSchool[d] {
			school[i+1] = int32(c.HalfDaysWeek[weekday(d)])
		}
		school[i+1] += school[i]
		absAll[i+1] += absAll[i]
		unj[i+1] += unj[i]
		sess[i+1] += sess[i]
	}
	sum := func(p []int32, from, to int) int32 { // days [from, to], clamped
		from, to = max(from, 0), min(to, n-1)
		if to < from {
			return 0
		}
		return p[to+1] - p[from]
	}
	unjAt := func(i, from, to int) int32 { // unjustified over [from,to] as known on day i
		u := sum(unj, from, to)
		if !c.UseCorrections {
			return u
		}
		for _, k := range corrections {
			if j := int(k.day - start); j >= from && j <= to && int(k.known-start) <= i {
				u--
			}
		}
		return u
	}
	// Calendar months: monthStart[i] is the offset of the first day of
	// day i's month (may be negative).
	monthStart := make([]int, n)
	for i := range n {
		t := time.Unix(int64(start+int32(i))*86400, 0).UTC()
		monthStart[i] = i - (t.Day() - 1)
	}
	var drift []float64
	if c.DriftMin > 0 {
		// Unjustified half-days as first recorded (a correction is noise
		// to the model) and school half-days, by day.
		orig := map[int32]int{}
		for _, e := range events {
			if e.Kind == Absence && !e.Justified {
				orig[e.Day]++
			}
		}
		drift = c.newDriftModel().posteriorsRef(start, n, func(d int32) int { return orig[d] }, c.schoolHalfDays)
	}
	terms := c.termAveragesRef(marks)
	firstSess := -1
	for i := 0; i < n; i++ {
		if sess[i+1] > sess[i] {
			firstSess = i
			break
		}
	}

	W := c.WindowDays
	var ind [numCodes]indicator
	open := [numCodes]int{} // index+1 in res.Alerts of the open alert
	above := 0              // consecutive days with risk >= raise_at
	cusum := 0.0            // ABS_CUSUM statistic
	off := [numCodes]int{}  // days the indicator of an open alert has been off
	lastSess := -1
	var risk float64
	markTerm, markInd := -1, [numCodes]indicator{}
	for i := 0; i < n; i++ {
		d := start + int32(i)
		final := i == n-1 // reasons are written for the report day only
		if sess[i+1] > sess[i] {
			lastSess = i
		}
		ind = [numCodes]indicator{}
		from := i - W + 1
		// Attendance.
		if hd := sum(school, from, i); hd >= 9 && i >= W-1 {
			a := float64(sum(absAll, from, i)) / float64(hd)
			if a >= c.ChronicRate {
				ind[AbsRate] = indicator{sev(a, c.ChronicRate), c.say(final, "absences %s %% over %s", pct(a), c.span(W))}
			}
		}
		if u := unjAt(i, i-c.UnjustifiedDays+1, i); int(u) >= c.UnjustifiedMin && c.UnjustifiedMin > 0 {
			ind[AbsUnj] = indicator{sev(float64(u), float64(c.UnjustifiedMin)),
				c.say(final, "%d unjustified half-days over %s", u, c.span(c.UnjustifiedDays))}
		}
		if tf := i - c.TrendDays + 1; tf > c.BaselineMinDays {
			recent := float64(unjAt(i, tf, i))
			baseHD := float64(sum(school, 0, tf-1))
			if baseHD > 0 && recent >= float64(c.TrendMin) {
				usual := float64(unjAt(i, 0, tf-1)) / baseHD * float64(sum(school, tf, i))
				if recent >= c.TrendFactor*math.Max(usual, 1) {
					ind[AbsTrend] = indicator{sev(recent, c.TrendFactor*math.Max(usual, 1)),
						c.say(final, "unjustified absences rising: %d over %s, usually %s", int(recent), c.span(c.TrendDays), num1(usual))}
				}
			}
		}
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
				ind[AbsStreak] = indicator{sev(float64(streak), float64(c.StreakWeeks)),
					c.say(final, "unjustified absences %d weeks in a row (%d half-days)", streak, total)}
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
				l1 := math.Max(c.CusumRate, 1.5*l0)
				x := float64(sum(unj, i, i))
				cusum = math.Max(0, cusum+x*math.Log(l1/l0)+(float64(h)-x)*math.Log((1-l1)/(1-l0)))
			}
			if cusum >= c.CusumMin {
				ind[AbsCusum] = indicator{sev(cusum, c.CusumMin),
					c.say(final, "unjustified absences well above the student's usual rate (score %s)", num1(cusum))}
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
					ms = monthStartOfRef(start, me)
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
					s0 := monthStartOfRef(start, me)
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
					ind[AbsMonths] = indicator{sev(float64(total), float64(c.MonthsMin*c.MonthMinHalfDays)),
						c.say(final, "unjustified absences %d months running (%d half-days), usually %s %% of months", hit, total, pct(usual))}
				}
			}
		}
		if drift != nil && drift[i] >= c.DriftMin {
			var text string
			if final {
				// The last 30 days, against the student's own rate before.
				const p = 30
				recent := unjAt(i, i-p+1, i)
				usual := 0.0
				if h := float64(sum(school, 0, i-p)); h > 0 {
					usual = float64(unjAt(i, 0, i-p)) / h * float64(sum(school, i-p+1, i))
				}
				text = c.say(final, "%d unjustified half-days over %s (usually %s), %d this month; chance of a drift %s %%",
					recent, c.span(p), num1(usual), unjAt(i, monthStart[i], i), pct(drift[i]))
			}
			ind[AbsDrift] = indicator{drift[i], text}
		}
		// Course performance: the last term whose marks are known.
		if lt := c.lastTermRef(terms, d); lt != markTerm {
			markTerm, markInd = lt, [numCodes]indicator{}
			c.markIndicatorsRef(&markInd, terms, lt)
		}
		for _, k := range []int{MarkLow, MarkFall, CoreFail, Missing} {
			ind[k] = markInd[k]
		}
		// Engagement.
		if firstSess >= 0 && from > firstSess+c.BaselineMinDays {
			baseDays := float64(from - firstSess)
			expected := float64(sum(sess, firstSess, from-1)) / baseDays * float64(W)
			got := float64(sum(sess, from, i))
			if expected >= c.DropMinExpected && got <= c.DropRatio*expected {
				ind[PlatformDrop] = indicator{math.Min(1, 0.5+0.5*(1-got/expected)),
					c.say(final, "platform sessions %d over %s, usually %s", int(got), c.span(W), num1(expected))}
			}
		}
		if lastSess >= 0 && i-lastSess >= c.InactiveDays && int(sess[lastSess+1]) >= c.InactiveMinSessions {
			ind[Inactive] = indicator{sev(float64(i-lastSess), float64(c.InactiveDays)),
				c.say(final, "no platform activity for %d days", i-lastSess)}
		}
		// Risk.
		q := 1.0
		var fam [3]bool // attendance, marks, engagement
		for k := range ind {
			q *= 1 - c.Weights[k]*ind[k].severity
			if ind[k].severity > 0 && c.Weights[k] > 0 {
				fam[family(k)] = true
			}
		}
		if nf := b2i(fam[0]) + b2i(fam[1]) + b2i(fam[2]); nf >= 2 {
			q *= 1 - c.Combo
		}
		risk = 1 - q
		res.MaxRisk = math.Max(res.MaxRisk, risk)
		if risk >= c.RaiseAt {
			above++
		} else {
			above = 0
		}
		// Alerts.
		top := 0.0
		for k := range ind {
			top = math.Max(top, c.Weights[k]*ind[k].severity)
		}
		for k := range ind {
			if open[k] > 0 {
				if ind[k].severity == 0 {
					off[k]++
				} else {
					off[k] = 0
				}
				if risk < c.ClearBelow || off[k] >= c.ClearDays {
					res.Alerts[open[k]-1].Closed = d
					open[k] = 0
				}
				continue
			}
			if part := c.Weights[k] * ind[k].severity; risk >= c.RaiseAt && above >= max(c.RaiseDays, 1) && part > 0 && part >= c.AlertShare*top {
				res.Alerts = append(res.Alerts, Alert{ID: AlertID(student, Codes[k], d), Code: Codes[k], Opened: d, Closed: -1})
				open[k], off[k] = len(res.Alerts), 0
				if res.FirstAlert < 0 {
					res.FirstAlert = d
				}
			}
		}
	}
	res.Risk = risk
	res.Score = res.MaxRisk
	if drift != nil {
		res.Score = slices.Max(drift)
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

// parts are the two parts of the chance of x unjustified half-days so
// far in a month (share f of its school half-days elapsed): without an
// episode, Poisson(mu); with one (thinned to f), plus Poisson(mu) others.
func (m *driftModel) partsRef(x int, f, mu float64) (none, episode float64) {
	x = min(x, driftXMax)
	th := m.thin[min(m.fGrid, max(0, int(math.Round(f*float64(m.fGrid)))))]
	py := math.Exp(-mu) // Poisson chances of 0..x, by recurrence
	for y := 0; y <= x; y++ {
		if y > 0 {
			py *= mu / float64(y)
		}
		episode += py * th[x-y]
	}
	return py, episode
}

// posteriors returns, for each day from start to start+n-1, the posterior
// probability that a drift has started, from the unjustified half-days
// unj(day) and school half-days school(day) of each day. It also returns,
// for the reason, the unjustified half-days of the current and the
// previous month on each day is not needed: the caller counts them.
func (m *driftModel) posteriorsRef(start int32, n int, unj, school func(d int32) int) []float64 {
	c := m.c
	post := make([]float64, n)
	from := min(c.HistoryFrom, start)
	end := start + int32(n) - 1
	// Candidate onsets: the Monday of each school week in [drift_from, drift_to].
	var onsets []int32
	for d := c.DriftFrom; d <= c.DriftTo; d++ {
		if weekday(d) != 0 {
			continue
		}
		h := 0
		for k := int32(0); k < 5; k++ {
			h += school(d + k)
		}
		if h > 0 {
			onsets = append(onsets, d)
		}
	}
	K := len(onsets)
	if K == 0 {
		return post
	}
	monthTotal := func(d int32) (first, next int32, total int) {
		t := time.Unix(int64(d)*86400, 0).UTC()
		first = d - int32(t.Day()-1)
		next = int32(time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400)
		for x := first; x < next; x++ {
			total += school(x)
		}
		return first, next, total
	}
	lr := make([]float64, K)  // likelihood ratio of the complete months from each onset's month
	lam := make([]float64, K) // drift's expected half-days so far in the current month, per onset
	eOn := make([]float64, K) // the student's episode chance as of each onset's month
	for k := range lr {
		lr[k] = 1
	}
	started := make([]bool, K)
	S := 0 // school half-days since from
	sOn := make([]int, K)
	hits, months := 0, 0 // complete months with an episode-sized count, and complete school months
	_, mNext, mTotal := monthTotal(from)
	// Before the first unjustified half-day every onset's likelihood ratio
	// is at most 1, so the posterior is at most drift_prior: it is left at
	// 0 there (below drift_min), and on a day without school nor absence
	// it is the day before's.
	first := end + 1
	for d := from; d <= end; d++ {
		if unj(d) > 0 {
			first = d
			break
		}
	}
	prev := 0.0
	x, h := 0, 0 // current month's unjustified and school half-days so far
	eStudent := func() float64 {
		return (c.EpisodePrior*c.EpisodePriorMonths + float64(hits)) / (c.EpisodePriorMonths + float64(months))
	}
	for d := from; d <= end; d++ {
		if d == mNext {
			// The previous month is complete.
			if mTotal > 0 {
				a0, b0 := m.partsRef(x, 1, c.SporadicRate*float64(h))
				for k := range K {
					if started[k] {
						a1, b1 := m.partsRef(x, 1, lam[k]+c.SporadicRate*float64(h))
						lr[k] = math.Min(lr[k]*mix(a1, b1, c.DriftEpisode)/mix(a0, b0, eOn[k]), 1e300)
					}
				}
				if mTotal >= 16 {
					months++
					if x >= c.EpisodeMin {
						hits++
					}
				}
			}
			_, mNext, mTotal = monthTotal(d)
			x, h = 0, 0
			clear(lam)
		}
		for k, o := range onsets {
			if o == d {
				started[k], sOn[k], eOn[k] = true, S, eStudent()
			}
		}
		hd := school(d)
		if hd > 0 {
			for k := range K {
				if started[k] {
					lam[k] += c.DriftRate * math.Min(1, float64(S-sOn[k])/math.Max(c.DriftRampHalfDays, 1)) * float64(hd)
				}
			}
			S += hd
			h += hd
		}
		ud := unj(d)
		x += ud
		if d < start {
			continue
		}
		if d < first || (hd == 0 && ud == 0) {
			post[d-start] = prev
			continue
		}
		f := 1.0
		if mTotal > 0 {
			f = float64(h) / float64(mTotal)
		}
		num, nOn := 0.0, 0
		a0, b0 := m.partsRef(x, f, c.SporadicRate*float64(h))
		for k := range K {
			if !started[k] || lr[k] == 0 {
				nOn += b2i(started[k])
				continue
			}
			nOn++
			a1, b1 := m.partsRef(x, f, lam[k]+c.SporadicRate*float64(h))
			num += math.Min(lr[k]*mix(a1, b1, c.DriftEpisode)/mix(a0, b0, eOn[k]), 1e300)
		}
		pi := c.DriftPrior / float64(K)
		prev = pi * num / ((1 - c.DriftPrior) + pi*(num+float64(K-nOn)))
		post[d-start] = prev
	}
	return post
}

// monthStartOfRef is monthStartOf as of commit 83f6a16.
func monthStartOfRef(start int32, i int) int {
	t := time.Unix(int64(start+int32(i))*86400, 0).UTC()
	return i - (t.Day() - 1)
}

// termAvgRef, termAveragesRef, lastTermRef, markIndicatorsRef and
// sortedKeysRef are the term averages with a map per term, before
// termAverages kept the subjects in a slice.
type termAvgRef struct {
	known    bool
	overall  float64
	subjects map[string]float64
	missing  int
}

func (c *Config) termAveragesRef(marks []Event) []termAvgRef {
	terms := make([]termAvgRef, len(c.TermEnds))
	type acc struct {
		sum float64
		n   int
	}
	subj := make([]map[string]acc, len(terms))
	for _, m := range marks {
		t := min(max(m.Term, 0), len(terms)-1)
		terms[t].known = true
		if math.IsNaN(m.Mark) {
			terms[t].missing++
			continue
		}
		if subj[t] == nil {
			subj[t] = map[string]acc{}
		}
		a := subj[t][m.Subject] // by value: no allocation per subject
		a.sum += m.Mark
		a.n++
		subj[t][m.Subject] = a
	}
	for t := range terms {
		if len(subj[t]) == 0 {
			terms[t].overall = math.NaN()
			continue
		}
		terms[t].subjects = map[string]float64{}
		for k, a := range subj[t] {
			terms[t].subjects[k] = a.sum / float64(a.n)
		}
		// Summed in subject order: a map's order would change the last
		// bit of the average (and of the risk) from one call to the next.
		var s float64
		for _, k := range sortedKeysRef(terms[t].subjects) {
			s += terms[t].subjects[k]
		}
		terms[t].overall = s / float64(len(subj[t]))
	}
	return terms
}

// lastTerm is the last term whose marks are known on day d, or -1.
func (c *Config) lastTermRef(terms []termAvgRef, d int32) int {
	last := -1
	for t := range terms {
		if terms[t].known && c.TermEnds[t] <= d {
			last = t
		}
	}
	return last
}

func (c *Config) markIndicatorsRef(ind *[numCodes]indicator, terms []termAvgRef, last int) {
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
			best, bestFall := "", 0.0
			for _, k := range sortedKeysRef(cur.subjects) {
				if p, ok := prev.subjects[k]; ok && p-cur.subjects[k] > bestFall {
					best, bestFall = k, p-cur.subjects[k]
				}
			}
			text := c.say(true, "average %s → %s (T%d → T%d)", num1(prev.overall), num1(cur.overall), last, last+1)
			if best != "" {
				text += c.say(true, ", %s %s → %s", best, num1(prev.subjects[best]), num1(cur.subjects[best]))
			}
			ind[MarkFall] = indicator{sev(fall, c.FallPoints), text}
		}
	}
	var failed []string
	for _, s := range c.CoreSubjects {
		if a, ok := cur.subjects[s]; ok && a < c.CoreFailMark {
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

func sortedKeysRef(m map[string]float64) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}
