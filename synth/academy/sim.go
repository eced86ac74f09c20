package academy

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Reason codes of an absent half-day. The first five are justified.
var reasons = []string{"", "maladie", "rdv_medical", "familial", "transport", "convocation", "injustifie", "retard"}

// Pronote-style labels of the reasons.
var reasonLabels = []string{"", "Maladie", "Rendez-vous médical", "Raison familiale", "Problème de transport",
	"Convocation", "Non justifié", "Retard non justifié"}

const (
	rMaladie  = 1
	rFamilial = 3
	rInjust   = 6
	rRetard   = 7
)

func justified(r uint8) bool { return r >= 1 && r <= 5 }

// Outcomes of the year.
const (
	Stays    = "stays"
	Dropout  = "dropout"
	Transfer = "transfer"
)

// Signals of a drift, as listed in the ground truth.
const (
	SigAbsences = 1 << iota
	SigMarks
	SigPlatform
)

// Grade statuses.
const (
	StatusOK        = "ok"
	StatusAbsent    = "absent"
	StatusExempt    = "exempt"
	StatusNotGraded = "not_graded"
)

// student is one generated student: visible facts and the hidden traits
// that drive the data.
type student struct {
	idx                 int
	id, class, school   string
	div                 int
	track               Track
	level               string
	given, family       string
	birthYear           int
	ability             float64
	subjOff             [6]float64
	absRate             float64 // justified sporadic absence, per half-day
	truancy             float64 // chance of a month with >= 4 unjustified half-days
	activity            float64 // platform sessions per week
	drifts              bool
	driftSlot, driftEnd int // drift effects on [driftSlot, driftEnd)
	severity            float64
	decline             float64 // marks lost while drifting
	signals             int
	outcome             string
	exitSlot            int // first slot not enrolled (len(slots): stays)
	badTerm             int // -1: none
	badDrop             float64
	lullWeek, lullLen   int
	sickDay, sickLen    int // -1: none
	noise               []string
	registration        [16]byte
}

// world is what every student of a run shares; read-only once built.
type world struct {
	p        Profile
	cal      *Calendar
	lay      *Layout
	seed     uint64
	evalDays []int    // school days of the national evaluations (evaluations.go)
	slotDay  []string // ISO date of each slot
	slotDMY  []string // dd/mm/yyyy of each slot
	months   []string // 2025-09
	mFirst   []int    // first slot of each month
	pFirst   []int    // first slot of each period
	pLast    []int    // last slot of each period
	wFirst   []int    // first slot of each week
	dayFirst []int    // first slot of each school day
	pEndDMY  []string // date of the term's evaluations, dd/mm/yyyy
	pEndISO  []string
	baseU    [numTracks]float64
	driftMin int // first slot a drift may start at
	driftMax int
	dateMod  string
}

func newWorld(p Profile, cal *Calendar, lay *Layout, seed uint64) *world {
	w := &world{p: p, cal: cal, lay: lay, seed: seed}
	w.dateMod = day(cal.First.AddDate(0, 0, -3)) + "T00:00:00.000Z"
	for _, m := range cal.Months {
		w.months = append(w.months, m.Format("2006-01"))
	}
	w.mFirst = make([]int, len(cal.Months)+1)
	w.pFirst = make([]int, len(cal.Periods))
	w.pLast = make([]int, len(cal.Periods))
	w.wFirst = make([]int, cal.Weeks+1)
	for i := range w.mFirst {
		w.mFirst[i] = -1
	}
	for i := range w.pFirst {
		w.pFirst[i] = -1
	}
	for i, s := range cal.Slots {
		w.slotDay = append(w.slotDay, day(s.Date))
		w.slotDMY = append(w.slotDMY, s.Date.Format("02/01/2006"))
		if w.mFirst[s.Month] < 0 {
			w.mFirst[s.Month] = i
		}
		if w.pFirst[s.Period] < 0 {
			w.pFirst[s.Period] = i
		}
		w.pLast[s.Period] = i
		if i == 0 || cal.Slots[i-1].Week != s.Week {
			w.wFirst[s.Week] = i
		}
		if i == 0 || cal.Slots[i-1].Day != s.Day {
			w.dayFirst = append(w.dayFirst, i)
		}
	}
	n := len(cal.Slots)
	w.mFirst[len(cal.Months)] = n
	for i := len(cal.Months) - 1; i >= 0; i-- { // months without lessons
		if w.mFirst[i] < 0 {
			w.mFirst[i] = w.mFirst[i+1]
		}
	}
	w.wFirst[cal.Weeks] = n
	w.dayFirst = append(w.dayFirst, n)
	for i, per := range cal.Periods {
		d := per.Last.AddDate(0, 0, -7)
		w.pEndDMY = append(w.pEndDMY, d.Format("02/01/2006"))
		w.pEndISO = append(w.pEndISO, day(d))
		_ = i
	}
	w.driftMin = w.slotAt(date(cal.Year, time.November, 1))
	w.driftMax = w.slotAt(date(cal.Year+1, time.March, 15))
	// Drifting students with the absence signal add months of >= 4
	// unjustified half-days; take their expected share off the base rate
	// so that the population rate stays near the profile's (approximate:
	// about a third of the year drifting, most months an episode).
	for t := College; t < numTracks; t++ {
		extra := p.DriftRate.Of(t) * p.SignalAbsences * 0.30 * 0.85
		w.baseU[t] = math.Max(0, (p.Unjustified4.Of(t)-extra)/(1-p.DriftRate.Of(t)+1e-9)) / 0.97
	}
	return w
}

// slotAt returns the index of the first slot on or after d.
func (w *world) slotAt(d time.Time) int {
	for i, s := range w.cal.Slots {
		if !s.Date.Before(d) {
			return i
		}
	}
	return len(w.cal.Slots)
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// newStudent draws the hidden traits of student i. Every draw comes from
// the student's own stream, so students are independent of each other.
func (w *world) newStudent(r *rand.Rand, i int, st *student) {
	p, lay := &w.p, w.lay
	n := len(w.cal.Slots)
	div := lay.DivisionOf(i)
	d := lay.Divisions[div]
	sc := lay.Schools[d.School]
	*st = student{idx: i, id: lay.StudentID(i), class: d.ID, school: sc.ID, div: div, track: sc.Track, level: d.Level,
		noise: st.noise[:0], exitSlot: n, badTerm: -1, sickDay: -1, outcome: Stays, driftSlot: n, driftEnd: n}
	st.given = givenNames[r.IntN(len(givenNames))]
	st.family = familyNames[r.IntN(len(familyNames))]
	st.birthYear = w.cal.Year - levelAge[d.Level]
	switch u := r.Float64(); {
	case u < 0.08 || (st.track == LP && u < 0.25):
		st.birthYear-- // repeated a year
	case u > 0.98:
		st.birthYear++ // skipped one
	}
	st.ability = clamp(12+3*r.NormFloat64(), 3, 18.5)
	if st.track == LP {
		st.ability -= 1
	}
	for k := range st.subjOff {
		st.subjOff[k] = 1.5 * r.NormFloat64()
	}
	// Justified absences: most students rarely, a few often (health).
	switch u := r.Float64(); {
	case u < 0.7:
		st.absRate = p.JustifiedRate * 0.6 * r.Float64() * 2
	case u < 0.92:
		st.absRate = p.JustifiedRate * (1 + r.Float64())
	default:
		st.absRate = p.JustifiedRate * (2 + 2*r.Float64())
	}
	// Truancy: a heavy-tailed propensity (log-normal, mean 1) times the base.
	const sigma = 1.0
	st.truancy = math.Min(0.95, w.baseU[st.track]*math.Exp(sigma*r.NormFloat64()-sigma*sigma/2))
	st.activity = p.SessionsPerWeek * math.Exp(0.8*r.NormFloat64()-0.32)
	binary.LittleEndian.PutUint64(st.registration[:8], r.Uint64())
	binary.LittleEndian.PutUint64(st.registration[8:], r.Uint64())

	// Drift toward dropout.
	if r.Float64() < p.DriftRate.Of(st.track) && w.driftMax > w.driftMin {
		st.drifts = true
		st.driftSlot = w.driftMin + r.IntN(w.driftMax-w.driftMin)
		st.severity = 0.6 + 0.4*r.Float64()
		st.decline = 5 + 3*r.Float64()
		day0 := w.cal.Slots[st.driftSlot].Date
		if r.Float64() < p.DropoutGivenDrift.Of(st.track) {
			st.outcome = Dropout
			exit := w.slotAt(day0.AddDate(0, 0, 28+r.IntN(84)))
			st.exitSlot = min(exit, n-40)
			st.driftEnd = st.exitSlot
		} else {
			st.driftEnd = min(n, w.slotAt(day0.AddDate(0, 0, 42+r.IntN(42))))
		}
		if r.Float64() < p.SignalAbsences {
			st.signals |= SigAbsences
		}
		if r.Float64() < p.SignalMarks {
			st.signals |= SigMarks
		}
		if r.Float64() < p.SignalPlatform {
			st.signals |= SigPlatform
		}
		// Keep only the signals the data can show.
		if st.signals&SigMarks != 0 && !w.marksAffected(st) {
			st.signals &^= SigMarks
		}
		if st.signals&SigPlatform != 0 {
			wk := w.cal.Slots[st.driftSlot].Week
			if st.activity*float64(wk) < 12 || st.exitSlot < n && w.cal.Slots[st.exitSlot].Week-wk < 4 {
				st.signals &^= SigPlatform
			}
		}
		if st.signals == 0 {
			st.signals = SigAbsences
		}
	} else if r.Float64() < p.TransferRate {
		st.outcome = Transfer
		a, b := w.slotAt(date(w.cal.Year, time.October, 1)), w.slotAt(date(w.cal.Year+1, time.June, 1))
		st.exitSlot = a + r.IntN(max(1, b-a))
		st.noise = append(st.noise, "transfer")
	}
	// Confounders, for anyone.
	if r.Float64() < p.SickWeekRate {
		st.sickDay = r.IntN(len(w.dayFirst) - 1)
		st.sickLen = 3 + r.IntN(3)
		if w.dayFirst[st.sickDay] < st.exitSlot {
			st.noise = append(st.noise, "sick_week")
		}
	}
	if r.Float64() < p.BadTermRate {
		st.badTerm = r.IntN(len(w.cal.Periods))
		st.badDrop = 3 + 2*r.Float64()
		st.noise = append(st.noise, "bad_term")
	}
	if r.Float64() < p.PlatformLullRate {
		st.lullWeek = r.IntN(max(1, w.cal.Weeks-3))
		st.lullLen = 3 + r.IntN(5)
		st.noise = append(st.noise, "platform_lull")
	}
}

// periodShown reports whether a student has marks for period k: enrolled
// past the middle of the term.
func (w *world) periodShown(st *student, k int) bool { return st.exitSlot > (w.pFirst[k]+w.pLast[k])/2 }

// periodAffected reports whether the drift lowers the marks of period k:
// the term ends at least 30 days after the drift starts and the drift
// lasts into the term's last month.
func (w *world) periodAffected(st *student, k int) bool {
	if !st.drifts {
		return false
	}
	start := w.cal.Slots[st.driftSlot].Date.AddDate(0, 0, 30)
	return w.cal.Periods[k].Last.After(start) && st.driftEnd > w.pFirst[k]
}

func (w *world) marksAffected(st *student) bool {
	for k := range w.cal.Periods {
		if k > 0 && w.periodShown(st, k) && w.periodAffected(st, k) {
			return true
		}
	}
	return false
}

// signalNames lists signals as written in the ground truth.
func signalNames(s int) string {
	var parts []string
	if s&SigAbsences != 0 {
		parts = append(parts, "absences")
	}
	if s&SigMarks != 0 {
		parts = append(parts, "marks")
	}
	if s&SigPlatform != 0 {
		parts = append(parts, "platform")
	}
	return strings.Join(parts, ";")
}

// absences fills abs (one reason code per slot, 0 = present) and corr
// (the reason a later correction gives, 0 = none).
func (w *world) absences(r *rand.Rand, st *student, abs, corr []uint8) {
	p := &w.p
	for i := range abs {
		abs[i], corr[i] = 0, 0
	}
	n := st.exitSlot
	// A sick week: consecutive school days, justified.
	if st.sickDay >= 0 {
		from := w.dayFirst[st.sickDay]
		to := w.dayFirst[min(st.sickDay+st.sickLen, len(w.dayFirst)-1)]
		for s := from; s < min(to, n); s++ {
			abs[s] = rMaladie
		}
	}
	absSig := st.signals&SigAbsences != 0
	// Months with an episode of unjustified absences.
	for m := range w.cal.Months {
		a, b := w.mFirst[m], min(w.mFirst[m+1], n)
		if b <= a {
			continue
		}
		u := st.truancy
		if absSig && st.driftSlot < b && st.driftEnd > a {
			u = math.Max(u, 0.55+0.4*st.severity)
			a = max(a, st.driftSlot) // the episode comes after the drift starts
		}
		if r.Float64() >= u {
			continue
		}
		k := 4
		for r.Float64() < 0.6 {
			k++
		}
		for range k * 3 {
			if k == 0 {
				break
			}
			s := a + r.IntN(b-a)
			if abs[s] == 0 {
				abs[s] = rInjust
				if r.Float64() < 0.15 {
					abs[s] = rRetard
				}
				k--
			}
		}
	}
	// Sporadic absences, half-day by half-day.
	for s := 0; s < n; s++ {
		x := r.Float64()
		if abs[s] != 0 {
			continue
		}
		pu := 0.003
		if absSig && s >= st.driftSlot && s < st.driftEnd {
			ramp := float64(s-st.driftSlot) / 80 // about 8 weeks to the full rate
			pu += st.severity * 0.25 * math.Min(1, ramp)
		}
		switch {
		case x < st.absRate:
			abs[s] = uint8(1 + r.IntN(5))
			if abs[s] > 3 && r.Float64() < 0.5 {
				abs[s] = rMaladie
			}
		case x < st.absRate+pu:
			abs[s] = rInjust
		}
	}
	// Late corrections: an unjustified record justified later.
	for s := 0; s < n; s++ {
		if (abs[s] == rInjust) && r.Float64() < p.LateCorrectionRate {
			corr[s] = uint8(rMaladie + 2*r.IntN(2)) // maladie or familial
		}
	}
}
