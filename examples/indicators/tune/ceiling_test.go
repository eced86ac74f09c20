package main

import (
	"math"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/synth/academy"
)

func testOracle(t *testing.T) *oracle {
	t.Helper()
	o, err := newOracle(academy.DefaultProfile(), 2025, "C")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func key(t *testing.T, o *oracle, date string, pm bool) int32 {
	t.Helper()
	d, err := time.Parse("2006-01-02", date)
	if err != nil {
		t.Fatal(err)
	}
	k := int32(d.Unix()/86400) * 2
	if pm {
		k++
	}
	if _, ok := o.slot[k]; !ok {
		t.Fatalf("%s is not a school half-day", date)
	}
	return k
}

// schoolHalfDays returns the keys of the school half-days from one date to
// another (inclusive), every step-th.
func schoolHalfDays(o *oracle, from, to string, step int) []int32 {
	a, _ := time.Parse("2006-01-02", from)
	b, _ := time.Parse("2006-01-02", to)
	var ks []int32
	for s := range o.n {
		d := int64(o.day[dayOfSlot(o, s)])
		if d >= a.Unix()/86400 && d <= b.Unix()/86400 && s%step == 0 {
			ks = append(ks, int32(d)*2+int32(s-o.dayFirst[dayOfSlot(o, s)]))
		}
	}
	return ks
}

func dayOfSlot(o *oracle, s int) int {
	for d := range o.day {
		if o.dayFirst[d+1] > s {
			return d
		}
	}
	return -1
}

func oracleRun(o *oracle, track int, unj []int32) []float64 { return oracleMarks(o, track, unj, nil) }

func oracleMarks(o *oracle, track int, unj []int32, marks [][2]float64) []float64 {
	post := make([]float64, len(o.day))
	o.posterior(&oracleWork{}, track, observed{Unj: unj, Marks: marks}, 2, true, post)
	return post
}

// T2 marks 8 points below T1 in every subject, and no absence: a drift
// (marks only) from the day the T2 marks are known; the same marks as T1,
// or a T2 mark that is a typo, stay below 0.02.
func TestOracleMarks(t *testing.T) {
	o := testOracle(t)
	var fall, same, typo [][2]float64
	for k := range 9 {
		m := 10 + float64(k%4)
		fall = append(fall, [2]float64{m, m - 8})
		same = append(same, [2]float64{m, m + 0.3*float64(k%3-1)})
		typo = append(typo, [2]float64{m, m + 0.3*float64(k%3-1)})
	}
	typo[0][1] = 1.0 // 10 typed 1.0
	d := o.marksDay
	pf, ps, pt := oracleMarks(o, 2, nil, fall), oracleMarks(o, 2, nil, same), oracleMarks(o, 2, nil, typo)
	if pf[d-1] > 0.02 || pf[d] < 0.5 {
		t.Errorf("marks 8 points down: posterior %v the day before the T2 marks, %v on the day", pf[d-1], pf[d])
	}
	if ps[d] > 0.02 || pt[d] > 0.02 {
		t.Errorf("posterior %v with the same marks, %v with a typo", ps[d], pt[d])
	}
}

func dayIndex(t *testing.T, o *oracle, date string) int {
	k := key(t, o, date, false)
	for d, x := range o.day {
		if x == k/2 {
			return d
		}
	}
	t.Fatalf("no day %s", date)
	return 0
}

// The episode sizes' chances over a fully observed window sum to 1.
func TestEpisodeW(t *testing.T) {
	o := testOracle(t)
	for nn := 1; nn < len(o.w); nn++ {
		var s float64
		for j := 0; j <= nn; j++ {
			s += binom(nn, j) * o.w[nn][nn][j]
		}
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("window %d: chances sum to %v", nn, s)
		}
	}
}

// A student without any unjustified absence stays below the smallest p*
// the ceiling reports (the oracle skips the days before the first one).
func TestOracleNoAbsences(t *testing.T) {
	o := testOracle(t)
	for track := range 3 {
		for d, p := range oracleRun(o, track, nil) {
			if !(p >= 0 && p < 0.02) {
				t.Fatalf("track %d, day %d: posterior %v without absences", track, d, p)
			}
		}
	}
}

// A drift as the generator makes it: an episode of 5 unjustified
// half-days in December, then one half-day in four from January, is near
// certain by the end of March; nothing before it is.
func TestOracleClearDrift(t *testing.T) {
	o := testOracle(t)
	unj := []int32{key(t, o, "2025-12-02", false), key(t, o, "2025-12-04", true), key(t, o, "2025-12-08", false),
		key(t, o, "2025-12-11", true), key(t, o, "2025-12-15", false)}
	unj = append(unj, schoolHalfDays(o, "2026-01-05", "2026-06-30", 4)...)
	post := oracleRun(o, 1, unj)
	if p := post[dayIndex(t, o, "2025-11-28")]; p > 0.02 {
		t.Errorf("posterior %v before any absence", p)
	}
	if p := post[dayIndex(t, o, "2025-12-19")]; p > 0.5 {
		t.Errorf("posterior %v after one episode", p)
	}
	if p := post[dayIndex(t, o, "2026-03-24")]; p < 0.98 {
		t.Errorf("posterior %v after eleven weeks of a drift", p)
	}
}

// One more unjustified half-day raises the posterior that day; absences
// after a day do not change it (no look-ahead).
func TestOracleMonotoneCausal(t *testing.T) {
	o := testOracle(t)
	base := []int32{key(t, o, "2026-01-12", false), key(t, o, "2026-01-13", true), key(t, o, "2026-01-15", false),
		key(t, o, "2026-01-16", false), key(t, o, "2026-01-19", true)}
	more := append(append([]int32{}, base...), key(t, o, "2026-01-20", false))
	later := append(append([]int32{}, more...), key(t, o, "2026-02-02", false), key(t, o, "2026-02-03", false))
	p0, p1, p2 := oracleRun(o, 2, base), oracleRun(o, 2, more), oracleRun(o, 2, later)
	d := dayIndex(t, o, "2026-01-20")
	if !(p1[d] > p0[d]) {
		t.Errorf("posterior %v with one more unjustified half-day, %v without", p1[d], p0[d])
	}
	for i := range dayIndex(t, o, "2026-02-02") {
		if p1[i] != p2[i] {
			t.Fatalf("day %d: posterior %v changed to %v by later absences", i, p1[i], p2[i])
		}
	}
	if e := dayIndex(t, o, "2026-02-03"); !(p2[e] > p1[e]) {
		t.Errorf("posterior %v with two more later, %v without", p2[e], p1[e])
	}
	if p0[d] < 0.01 || p0[d] > 0.9 {
		t.Logf("posterior of a 5 half-day episode in an LP: %v", p0[d])
	}
}

// sessions returns one platform session a school day from one date to
// another, skipping the weeks from skipFrom to skipTo.
func sessions(o *oracle, from, to, skipFrom, skipTo string) []int32 {
	p := func(s string) int32 { t, _ := time.Parse("2006-01-02", s); return int32(t.Unix() / 86400) }
	var ds []int32
	for _, d := range o.day {
		if d >= p(from) && d <= p(to) && (d < p(skipFrom) || d > p(skipTo)) {
			ds = append(ds, d)
		}
	}
	return ds
}

// An active student (a session every school day) who stops in January
// for good becomes a possible drift (without absences, a transfer
// explains it better); one who stops for three weeks and comes back (a
// lull) does not.
func TestOraclePlatform(t *testing.T) {
	o := testOracle(t)
	run := func(ses []int32) []float64 {
		post := make([]float64, len(o.day))
		o.posterior(&oracleWork{}, 1, observed{Sessions: ses}, 2, true, post)
		return post
	}
	stop := run(sessions(o, "2025-09-01", "2026-07-03", "2026-01-05", "2026-07-03"))
	lull := run(sessions(o, "2025-09-01", "2026-07-03", "2026-01-05", "2026-01-23"))
	if p := stop[dayIndex(t, o, "2025-12-19")]; p > 0.02 {
		t.Errorf("posterior %v before the silence", p)
	}
	d := dayIndex(t, o, "2026-03-27")
	if stop[d] < 0.02 || stop[d] < 10*lull[d] || lull[d] > 0.01 {
		t.Errorf("posterior %v after 9 school weeks without a session, %v after a lull of 3 weeks", stop[d], lull[d])
	}
}
