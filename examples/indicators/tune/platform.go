package main

// The oracle's reading of the platform sessions (--platform): how
// synth/academy/xapi.go draws them. A student has an activity (sessions
// a school week, log-normal), may have a lull (3 to 7 weeks without any,
// chance 0.15), may leave during the year (transfer, chance 0.02, sessions
// stop); a drift with the platform signal divides the activity by 20 from
// the week after its onset, and the signal is kept only for a student
// whose activity times the onset week reaches 12.

import (
	"math"
	"time"

	"github.com/vigie-edu/vigie/synth/academy"
)

const (
	platformDrop   = 0.05 // activity left to a drift with the platform signal
	platformSignal = 0.65 // chance of the platform signal, when it can show
	lullRate       = 0.15
	transferRate   = 0.02
)

type platform struct {
	weeks    int
	week     map[int32]int // date -> school week
	complete []int         // per school day: complete school weeks at its end
	lam      []float64     // activity grid
	logLam   []float64
	logW     []float64    // its log weights
	ea, eb   [][8]float64 // exp(l*k), exp(platformDrop*l*k)
	nStart   int          // lull starts
	trFrom   int          // transfers leave from this week (1 October)
	trTo     int          // to this one (1 June), excluded
}

func newPlatform(p academy.Profile, cal *academy.Calendar, o *oracle) *platform {
	pl := &platform{weeks: cal.Weeks, week: map[int32]int{}, nStart: max(1, cal.Weeks-3)}
	for _, s := range cal.Slots {
		pl.week[int32(s.Date.Unix()/86400)] = s.Week
	}
	for d := range o.day {
		w := pl.week[o.day[d]]
		if d+1 < len(o.day) && pl.week[o.day[d+1]] == w {
			pl.complete = append(pl.complete, w)
		} else {
			pl.complete = append(pl.complete, w+1)
		}
	}
	var ws float64
	for z := -3.6; z <= 3.6+1e-9; z += 0.3 {
		pl.lam = append(pl.lam, p.SessionsPerWeek*math.Exp(0.8*z-0.32))
		pl.logW = append(pl.logW, -z*z/2)
		ws += math.Exp(-z * z / 2)
	}
	for g, l := range pl.lam {
		pl.logW[g] -= math.Log(ws)
		pl.logLam = append(pl.logLam, math.Log(l))
		var a, b [8]float64
		for k := range 8 {
			a[k], b[k] = math.Exp(l*float64(k)), math.Exp(platformDrop*l*float64(k))
		}
		pl.ea, pl.eb = append(pl.ea, a), append(pl.eb, b)
	}
	weekOn := func(t time.Time) int {
		for _, s := range cal.Slots {
			if !s.Date.Before(t) {
				return s.Week
			}
		}
		return cal.Weeks
	}
	pl.trFrom, pl.trTo = weekOn(time.Date(cal.Year, time.October, 1, 0, 0, 0, 0, time.UTC)), weekOn(time.Date(cal.Year+1, time.June, 1, 0, 0, 0, 0, time.UTC))
	return pl
}

// platState is one student's sessions and what the oracle makes of them.
type platState struct {
	c      []int // sessions per school week
	cum    []int // sessions before each week
	t      int   // complete weeks read
	window [][2]int
	hist   [][8][8]float64 // per drop week r (0..t): lulls read, by weeks before r and from r
	// Per onset week: platformSignal times the chance of the sessions
	// read with the signal kept (lp1) and with it keepable but no drop
	// yet (lc), and the chance of the sessions of a drifter without the
	// signal (stay), all relative to a student who does not drift.
	lp1, lc []float64
	stay    float64
}

func (pl *platform) alloc(st *platState) {
	if len(st.c) != pl.weeks {
		st.c, st.cum = make([]int, pl.weeks), make([]int, pl.weeks+1)
		st.lp1, st.lc = make([]float64, pl.weeks+1), make([]float64, pl.weeks+1)
		st.hist = make([][8][8]float64, pl.weeks+1)
	}
}

func (pl *platform) reset(st *platState, days []int32) {
	pl.alloc(st)
	clear(st.c)
	for _, d := range days {
		if w, ok := pl.week[d]; ok {
			st.c[w]++
		}
	}
	for w, c := range st.c {
		st.cum[w+1] = st.cum[w] + c
	}
	st.t = -1
}

// prior fills lp1 and lc for no session read.
func (pl *platform) prior(st *platState) {
	pl.alloc(st)
	for wk := range st.lp1 {
		var c float64
		for g, l := range pl.lam {
			if l*float64(wk) >= 12 {
				c += math.Exp(pl.logW[g])
			}
		}
		st.lp1[wk], st.lc[wk] = platformSignal*c, platformSignal*c
	}
	st.stay = 1
}

// update reads the first t complete weeks; onsetWeeks are the weeks a
// drift may start in.
func (pl *platform) update(st *platState, t int, onsetWeeks []int) {
	if t == st.t {
		return
	}
	st.t = t
	sum := func(a, b int) int { return st.cum[b] - st.cum[a] } // sessions in weeks [a, b)
	ct := sum(0, t)
	// Lulls: start and length; the part read must be without sessions.
	st.window = st.window[:0]
	future := 0
	for l0 := range pl.nStart {
		for n := 3; n <= 7; n++ {
			if l0 >= t {
				future++
				continue
			}
			end := min(l0+n, t)
			if sum(l0, end) == 0 {
				st.window = append(st.window, [2]int{l0, end})
			}
		}
	}
	histFor := func(r int) *[8][8]float64 {
		h := &st.hist[r]
		*h = [8][8]float64{}
		for _, w := range st.window {
			a := max(0, min(w[1], r)-w[0])
			h[a][w[1]-w[0]-a]++
		}
		return h
	}
	lullW := lullRate / float64(pl.nStart*5)
	// lullMix is the chance of the lull part given activity g and a drop
	// from week r: no lull, a lull not read yet, or one over weeks without
	// sessions (their Poisson terms exp(-l) are taken back).
	lullMix := func(g int, h *[8][8]float64) float64 {
		s := float64(future)
		ea, eb := &pl.ea[g], &pl.eb[g]
		for a := range 8 {
			for b := range 8 - a {
				if x := h[a][b]; x > 0 {
					s += x * ea[a] * eb[b]
				}
			}
		}
		return 1 - lullRate + lullW*s
	}
	hT := histFor(t)
	// A student who does not drift (who may leave: no session after), and
	// a drifter without the platform signal (who does not).
	trSpan := float64(max(1, pl.trTo-pl.trFrom))
	var l0, stay float64
	for g, l := range pl.lam {
		ll := pl.logLam[g]
		base := math.Exp(pl.logW[g] + float64(ct)*ll - l*float64(t))
		mix := lullMix(g, hT)
		// Leaving in week x: no session from x on (the lulls before x
		// are left out); leaving after the weeks read: as staying.
		var tr float64
		for x := pl.trFrom; x < pl.trTo; x++ {
			if x >= t {
				tr += float64(pl.trTo-x) * base * mix
				break
			}
			if sum(x, t) == 0 {
				tr += math.Exp(pl.logW[g] + float64(sum(0, x))*ll - l*float64(x))
			}
		}
		stay += base * mix
		l0 += (1-transferRate)*base*mix + transferRate*tr/trSpan
	}
	st.stay = stay / l0
	for _, wk := range onsetWeeks {
		r := wk + 1
		var lc, l1 float64
		var hr *[8][8]float64
		if r < t {
			hr = histFor(r)
		}
		cr := sum(0, min(r, t))
		for g, l := range pl.lam {
			if l*float64(wk) < 12 {
				continue
			}
			ll := pl.logLam[g]
			lc += math.Exp(pl.logW[g]+float64(ct)*ll-l*float64(t)) * lullMix(g, hT)
			if r < t {
				b1 := float64(cr)*ll - l*float64(r) + float64(ct-cr)*(ll+math.Log(platformDrop)) - platformDrop*l*float64(t-r)
				l1 += math.Exp(pl.logW[g]+b1) * lullMix(g, hr)
			}
		}
		if r >= t {
			l1 = lc
		}
		st.lp1[wk], st.lc[wk] = platformSignal*l1/l0, platformSignal*lc/l0
	}
}
