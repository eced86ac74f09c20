package indicators

import (
	"math"
	"slices"
	"sync"
)

// driftModel is the ABS_DRIFT model: the posterior probability, day by
// day, that a student's drift has started, from the unjustified half-days
// per calendar month. Without a drift a month has, with the student's own
// chance of an episode (drift_episode_prior, shrunk toward the student's
// months before the onset), an episode of episode_min unjustified
// half-days plus one more with chance episode_more each, placed uniformly
// in the month, and otherwise sporadic ones (sporadic_rate per school
// half-day). With a drift started on a candidate onset (each school week
// from drift_from to drift_to, equally likely), every month from the onset
// has an episode with chance drift_episode and a rate of unjustified
// half-days rising from 0 to drift_rate over drift_ramp_half_days school
// half-days. The prior chance of a drift is drift_prior.
type driftModel struct {
	c     *Config
	thin  [][]float64 // thin[j][x]: chance of x half-days of an episode in the first j/fGrid of its month
	fGrid int
}

const driftXMax = 64

// thinTables caches the episode tables by (episode_min, episode_more).
var thinTables sync.Map

func (c *Config) newDriftModel() *driftModel {
	m := &driftModel{c: c, fGrid: 40}
	key := [2]float64{float64(c.EpisodeMin), c.EpisodeMore}
	if t, ok := thinTables.Load(key); ok {
		m.thin = t.([][]float64)
		return m
	}
	defer func() { thinTables.Store(key, m.thin) }()
	kMax := 100                   // the chance of a longer episode is below 1e-15 with the defaults
	pk := make([]float64, kMax+1) // episode size
	for k := c.EpisodeMin; k <= kMax; k++ {
		pk[k] = (1 - c.EpisodeMore) * math.Pow(c.EpisodeMore, float64(k-c.EpisodeMin))
	}
	m.thin = make([][]float64, m.fGrid+1)
	for j := range m.thin {
		f := float64(j) / float64(m.fGrid)
		m.thin[j] = make([]float64, driftXMax+1)
		for k := max(c.EpisodeMin, 0); k <= kMax; k++ {
			if pk[k] < 1e-15 {
				continue
			}
			// Binomial(k, f) chances of 0..min(k, driftXMax), by recurrence.
			switch {
			case f == 0:
				m.thin[j][0] += pk[k]
				continue
			case f == 1:
				if k <= driftXMax {
					m.thin[j][k] += pk[k]
				}
				continue
			}
			b := math.Pow(1-f, float64(k))
			for x := 0; x <= min(k, driftXMax); x++ {
				if x > 0 {
					b *= float64(k-x+1) / float64(x) * f / (1 - f)
				}
				m.thin[j][x] += pk[k] * b
			}
		}
	}
	return m
}

// thinAt is the row of thin for share f of a month's school half-days.
func (m *driftModel) thinAt(f float64) []float64 {
	return m.thin[min(m.fGrid, max(0, int(math.Round(f*float64(m.fGrid)))))]
}

// partsOf is the two parts of the chance of x unjustified half-days so
// far in a month (th = thinAt(f), share f of its school half-days
// elapsed): without an episode, Poisson(mu); with one (thinned to f), plus
// Poisson(mu) others. th is looked up once per day for all onsets.
func partsOf(x int, th []float64, mu float64) (none, episode float64) {
	x = imin(x, driftXMax)
	py := expf(-mu) // Poisson chances of 0..x, by recurrence
	episode += py * th[x]
	for y := 1; y <= x; y++ {
		py *= mu / float64(y)
		episode += py * th[x-y]
	}
	return py, episode
}

// driftState is the state of the ABS_DRIFT replay before day d.
type driftState struct {
	d                       int32
	lr, lam, eOn            []float64
	started                 []bool
	sOn                     []int
	S, hits, months, mTotal int
	mNext                   int32
	x, h                    int
	prev                    float64
}

func (s *driftState) bytes() int { return 8*(3*len(s.lr)+len(s.sOn)) + len(s.started) + 96 }

// mix is the chance of a month with an episode with chance e.
func mix(none, episode, e float64) float64 {
	return fmax((1-e)*none+e*episode, 1e-300)
}

// partsMemo remembers, within one day of the replay (same x and th), the
// last drift likelihood computed and the last no-drift one, for the next
// onset. Onsets whose ramp was complete on every school day of the month
// so far have bit-identical lam (the same additions from 0), and onsets
// of the same month the same eOn: from spring on most onsets reuse the
// previous one's values instead of a math.Exp and a loop each. Each value
// is what the direct computation gives, bit for bit (the same function of
// the same inputs). The checks are inlined, the computations are not.
type partsMemo struct {
	x        int
	th       []float64
	mu0, e   float64 // sporadic half-days expected so far, drift_episode
	a0, b0   float64 // partsOf(x, th, mu0)
	lam, eOn uint64  // the bits of the last lam and eOn, or noBits
	drifted  float64 // mix(partsOf(x, th, lam+mu0), e)
	normal   float64 // mix(a0, b0, eOn)
}

// noBits is no float64 computed here: a signalling NaN (arithmetic only
// makes quiet ones), the lam and eOn of a partsMemo before its first
// computation.
const noBits = 0x7ff0_dead_0000_beef

// reset makes p a new partsMemo for x, th, mu0, e, a0, b0. Field by
// field: a composite literal of the 96-byte struct is built and copied
// with memory.fill and memory.copy in WebAssembly, which wazero runs as
// calls to memmove, once a day.
func (p *partsMemo) reset(x int, th []float64, mu0, e, a0, b0 float64) {
	p.x, p.th, p.mu0, p.e, p.a0, p.b0 = x, th, mu0, e, a0, b0
	p.lam, p.eOn = noBits, noBits
}

// drift is mix(partsOf(x, th, lam+mu0), e).
func (p *partsMemo) drift(lam float64) float64 {
	if math.Float64bits(lam) == p.lam {
		return p.drifted
	}
	return p.newDrift(lam)
}

func (p *partsMemo) newDrift(lam float64) float64 {
	a1, b1 := partsOf(p.x, p.th, lam+p.mu0)
	p.lam, p.drifted = math.Float64bits(lam), mix(a1, b1, p.e)
	return p.drifted
}

// none is mix(a0, b0, eOn).
func (p *partsMemo) none(eOn float64) float64 {
	if math.Float64bits(eOn) == p.eOn {
		return p.normal
	}
	return p.newNone(eOn)
}

//go:noinline
func (p *partsMemo) newNone(eOn float64) float64 {
	p.eOn, p.normal = math.Float64bits(eOn), mix(p.a0, p.b0, eOn)
	return p.normal
}

// rampLam adds a school day of hd half-days to the drift's expected
// half-days of the month, lam[k] (the onsets of sOn), and to lamSame: it is
// lam[k] += rate × min(1, float64(S-sOn[k])/ramp) × hd for each k, bit for
// bit, written for the ramp's two sides. The first nFull onsets are
// complete (their share is 1 or more, so min(1, share) is 1 and the term
// rate × 1 × hd, the same for all of them and for lamSame); on the others
// min(1, share) is the share itself (less than 1, or NaN, which min
// returns too). A function of its own, called once a day, so that its loop
// keeps its values in WebAssembly locals (in posteriors they live in
// memory).
//
//go:noinline
func rampLam(lam []float64, sOn []int, nFull int, lamSame float64, S int, rate, ramp float64, hd int) float64 {
	inc := rate * 1 * float64(hd)
	lamSame += inc
	lam = lam[:len(sOn)]
	for k := range nFull {
		lam[k] += inc
	}
	for k := nFull; k < len(sOn); k++ {
		lam[k] += rate * (float64(S-sOn[k]) / ramp) * float64(hd)
	}
	return lamSame
}

// sum is the sum over the started onsets (lr, lam, eOn from kLo; the first
// same have lamSame as lam) of min(lr[k] × drift(lam[k]) / none(eOn[k]),
// 1e300), in onset order, leaving out those whose lr is 0: the numerator
// of a day's posterior.
//
// Without a branch per onset but the memo's (each taken one is a jump
// through the function's dispatch loop in WebAssembly): the onsets whose
// lr is 0 add +0 instead of nothing (num is +0 or more, or NaN: the terms
// are products and quotients of lr, 0 or more, and of mix, 1e-300 or more,
// so num + 0 is num), and their likelihoods are computed (the memo's
// values are the same whichever onsets asked first); min(z, 1e300) is
// capped(z); the same onsets ask drift(lamSame) once.
//
//go:noinline
func (p *partsMemo) sum(lr, lam, eOn []float64, same int, lamSame float64) float64 {
	lam, eOn = lam[:len(lr)], eOn[:len(lr)]
	num := 0.0
	if same > 0 {
		d := p.drift(lamSame)
		for k, l := range lr[:same] {
			num += keep(l != 0, capped(l*d/p.none(eOn[k])))
		}
	}
	for k := same; k < len(lr); k++ {
		num += keep(lr[k] != 0, capped(lr[k]*p.drift(lam[k])/p.none(eOn[k])))
	}
	return num
}

// capped is min(z, 1e300), by comparing bits: for a z whose sign bit is
// clear, 1e300 < z exactly when its bits are above 1e300's and at most
// +Inf's (a NaN's are above +Inf's); for any other z 1e300 < z is false
// and its bits are above +Inf's. No branch, as in sum.
func capped(z float64) float64 {
	const lim, inf = 0x7e37e43c8800759c, 0x7ff0000000000000 // the bits of 1e300 and +Inf
	b := math.Float64bits(z)
	m := -(b2u(b > lim) & b2u(b <= inf))
	return math.Float64frombits(b ^ (b^lim)&m)
}

// keep is z when ok, else +0, without a branch.
func keep(ok bool, z float64) float64 {
	return math.Float64frombits(math.Float64bits(z) & -b2u(ok))
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// monthEnd multiplies each started onset's lr by its likelihood ratio
// for the month just complete (same arguments as sum), capped at 1e300.
//
//go:noinline
func (p *partsMemo) monthEnd(lr, lam, eOn []float64, same int, lamSame float64) {
	lam, eOn = lam[:len(lr)], eOn[:len(lr)]
	if same > 0 {
		d := p.drift(lamSame)
		for k, l := range lr[:same] {
			lr[k] = capped(l * d / p.none(eOn[k]))
		}
	}
	for k := same; k < len(lr); k++ {
		lr[k] = capped(lr[k] * p.drift(lam[k]) / p.none(eOn[k]))
	}
}

// driftOnsets appends to dst the candidate onsets: the Monday of each
// school week in [drift_from, drift_to].
func (c *Config) driftOnsets(dst []int32, cal *calendar) []int32 {
	for d := c.DriftFrom; d <= c.DriftTo; d++ {
		if weekday(d) != 0 {
			continue
		}
		h := 0
		for k := int32(0); k < 5; k++ {
			h += cal.school(d + k)
		}
		if h > 0 {
			dst = append(dst, d)
		}
	}
	return dst
}

// firstPositive is the index of the first value of s above 0, or len(s).
// A loop of its own: posteriors is large, and in WebAssembly a branch
// costs more in a large function.
//
//go:noinline
func firstPositive(s []int32) int {
	for i, v := range s {
		if v > 0 {
			return i
		}
	}
	return len(s)
}

// onsetAt is onsets[k], or MaxInt32 past the last one.
func onsetAt(onsets []int32, k int) int32 {
	if k < len(onsets) {
		return onsets[k]
	}
	return math.MaxInt32
}

// posteriors returns, for each day from start to start+n-1, the posterior
// probability that a drift has started, from the unjustified half-days of
// each day, unjFrom[d-from] with from = min(history_from, start), and the
// school half-days of the calendar. (The unjustified half-days of the
// current and the previous month, for the reason, are counted by the
// caller.)
//
// With in, the replay resumes from in (the state before day in.d, taken by
// an earlier call on a timeline with the same days before in.d); days
// before in.d are left at 0 in the result. With snap, the state before the
// last day is copied into it.
func (m *driftModel) posteriors(sc *scratch, start int32, n int, unjFrom []int32, cal *calendar, in, snap *driftState) []float64 {
	c := m.c
	sc.post = zeroed(sc.post, n)
	post := sc.post
	from := min(c.HistoryFrom, start)
	end := start + int32(n) - 1
	unj := func(d int32) int { return int(unjFrom[d-from]) }
	// Candidate onsets: a Memo's calendar has them, once for all calls.
	onsets := cal.onsets
	if !cal.haveOnsets {
		onsets = c.driftOnsets(sc.onsets[:0], cal)
		sc.onsets = onsets
	}
	K := len(onsets)
	if K == 0 {
		return post
	}
	monthTotal := func(d int32) (first, next int32, total int) {
		first = d - int32(dayOfMonth(d)-1)
		next = first + 31 // in the next month: months have 28 to 31 days
		next -= int32(dayOfMonth(next) - 1)
		for x := first; x < next; x++ {
			total += cal.school(x)
		}
		return first, next, total
	}
	sc.lr, sc.lam, sc.eOn = zeroed(sc.lr, K), zeroed(sc.lam, K), zeroed(sc.eOn, K)
	lr := sc.lr   // likelihood ratio of the complete months from each onset's month
	lam := sc.lam // drift's expected half-days so far in the current month, per onset
	eOn := sc.eOn // the student's episode chance as of each onset's month
	for k := range lr {
		lr[k] = 1
	}
	sc.started = zeroed(sc.started, K)
	started := sc.started
	S := 0 // school half-days since from
	sc.sOn = zeroed(sc.sOn, K)
	sOn := sc.sOn
	hits, months := 0, 0 // complete months with an episode-sized count, and complete school months
	var mNext int32
	var mTotal int
	d0 := from
	// Before the first unjustified half-day every onset's likelihood ratio
	// is at most 1, so the posterior is at most drift_prior: it is left at
	// 0 there (below drift_min), and on a day without school nor absence
	// it is the day before's.
	first := from + int32(firstPositive(unjFrom[:end-from+1]))
	prev := 0.0
	x, h := 0, 0 // current month's unjustified and school half-days so far
	if in != nil {
		d0 = in.d
		copy(lr, in.lr)
		copy(lam, in.lam)
		copy(eOn, in.eOn)
		copy(started, in.started)
		copy(sOn, in.sOn)
		S, hits, months, mNext, mTotal, x, h, prev = in.S, in.hits, in.months, in.mNext, in.mTotal, in.x, in.h, in.prev
	} else {
		_, mNext, mTotal = monthTotal(from)
	}
	// Onsets start in date order, so the started ones are a run
	// onsets[kLo:kHi] (those before the replay's first day never start):
	// the loops over onsets visit that run, and the next onset to start is
	// onsets[next], instead of all K every day.
	next := 0
	for next < K && onsets[next] < d0 {
		next++
	}
	kLo, kHi := next, next
	for k := range K {
		if started[k] {
			kLo, kHi = min(kLo, k), max(kHi, k+1)
		}
	}
	// The ramp: an onset's rate is complete (its share of the ramp,
	// float64(S-sOn[k])/ramp, is 1 or more) once S is far enough past its
	// start; S only grows and sOn grows with k, so the complete ones are a
	// run onsets[kLo:kFull] that only grows. Those already complete on
	// the first school day of a month, onsets[kLo:kSame], add the same
	// amount every school day of the month from the same 0: their lam is
	// bit for bit one value, lamSame, kept once instead of in lam[k] (see
	// lamOf), and the daily update visits only onsets[kSame:kHi].
	ramp := fmax(c.DriftRampHalfDays, 1)
	kFull := kLo
	full := func() { // advances kFull to the current S
		for kFull < kHi && float64(S-sOn[kFull])/ramp >= 1 {
			kFull++
		}
	}
	full()
	kSame, lamSame := kLo, 0.0 // none on a resumed replay: lam[k] holds them all
	eStudent := func() float64 {
		return (c.EpisodePrior*c.EpisodePriorMonths + float64(hits)) / (c.EpisodePriorMonths + float64(months))
	}
	var pm partsMemo
	nextOn := onsetAt(onsets, next)
	hds := cal.days(sc, from, end) // cal.school(d) for d in [from, end]
	snapDay := int32(math.MaxInt32)
	if snap != nil {
		snapDay = end
	}
	for d := d0; d <= end; d++ {
		// The snapshot, a month's end and an onset's start: one test a
		// day for the three (ev, the next day with one of them, is at
		// least d: a branch costs more in this large function).
		if ev := min(snapDay, mNext, nextOn); d == ev {
			if snap != nil && d == end {
				for k := kLo; k < kSame; k++ {
					lam[k] = lamSame
				}
				*snap = driftState{d: d, lr: slices.Clone(lr), lam: slices.Clone(lam), eOn: slices.Clone(eOn), started: slices.Clone(started), sOn: slices.Clone(sOn),
					S: S, hits: hits, months: months, mNext: mNext, mTotal: mTotal, x: x, h: h, prev: prev}
			}
			if d == mNext {
				// The previous month is complete.
				if mTotal > 0 {
					th := m.thinAt(1)
					a0, b0 := partsOf(x, th, c.SporadicRate*float64(h))
					pm.reset(x, th, c.SporadicRate*float64(h), c.DriftEpisode, a0, b0)
					pm.monthEnd(lr[kLo:kHi], lam[kLo:kHi], eOn[kLo:kHi], kSame-kLo, lamSame)
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
				full()
				kSame, lamSame = kFull, 0
			}
			if d == nextOn { // onsets are distinct days: one at most
				k := next
				started[k], sOn[k], eOn[k] = true, S, eStudent()
				kHi = k + 1 // k == kHi: the run grows by one
				next++
				nextOn = onsetAt(onsets, next)
			}
		}
		hd := int(hds[d-from])
		if hd > 0 {
			full()
			lamSame = rampLam(lam[kSame:kHi], sOn[kSame:kHi], kFull-kSame, lamSame, S, c.DriftRate, ramp, hd)
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
		th := m.thinAt(f)
		a0, b0 := partsOf(x, th, c.SporadicRate*float64(h))
		pm.reset(x, th, c.SporadicRate*float64(h), c.DriftEpisode, a0, b0)
		num, nOn = pm.sum(lr[kLo:kHi], lam[kLo:kHi], eOn[kLo:kHi], kSame-kLo, lamSame), kHi-kLo
		pi := c.DriftPrior / float64(K)
		prev = pi * num / ((1 - c.DriftPrior) + pi*(num+float64(K-nOn)))
		post[d-start] = prev
	}
	return post
}
