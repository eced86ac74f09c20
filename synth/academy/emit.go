package academy

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Text streams a worker fills, in file order.
const (
	sTables     = 0 // + 2*table (CSV) or 2*table+1 (JSON Lines)
	sXAPI       = 2 * 5
	sORUsers    = sXAPI + 1
	sORRoles    = sXAPI + 2
	sOREnroll   = sXAPI + 3
	sORResults  = sXAPI + 4
	sPNNotes    = sXAPI + 5
	sPNAbsences = sXAPI + 6
	sEval       = sXAPI + 7
	numStreams  = sXAPI + 8
)

// worker generates students; one per goroutine.
type worker struct {
	w         *world
	opt       *Options
	pcg, xpcg rand.PCG
	r, xr     *rand.Rand
	epcg      rand.PCG // national evaluations (evaluations.go)
	er        *rand.Rand
	st        student
	abs, corr []uint8
	batches   [5]*batch
	text      [numStreams][]byte
	scratch   []byte
}

func newWorker(w *world, opt *Options) *worker {
	k := &worker{w: w, opt: opt, abs: make([]uint8, len(w.cal.Slots)), corr: make([]uint8, len(w.cal.Slots))}
	k.r, k.xr = rand.New(&k.pcg), rand.New(&k.xpcg)
	k.er = rand.New(&k.epcg)
	for i, t := range tables {
		k.batches[i] = newBatch(t)
	}
	return k
}

// Streams of a student: one for its traits and school data, one for its
// platform activity, so that choosing outputs never changes the data.
func (k *worker) seedStudent(i int) {
	k.pcg.Seed(k.w.seed, uint64(i))
	k.xpcg.Seed(k.w.seed^0x9e3779b97f4a7c15, uint64(i))
}

// student generates student i and appends its rows.
func (k *worker) student(i int) {
	k.seedStudent(i)
	w, r, st := k.w, k.r, &k.st
	w.newStudent(r, i, st)
	k.batches[0].s(st.id).s(st.school).s(st.class).s(st.level).i(st.birthYear).end()
	w.absences(r, st, k.abs, k.corr)
	k.absenceRows()
	k.gradeRows()
	if k.opt.has(FormatXAPI) {
		k.xapi()
	}
	k.groundTruth()
	if k.opt.has(FormatEvaluations) {
		k.evaluations(i)
	}
	if k.opt.has(FormatOneRoster) {
		k.roster()
	}
}

func (w *world) exitDate(st *student) string {
	if st.exitSlot >= len(w.cal.Slots) {
		return ""
	}
	return w.slotDay[st.exitSlot]
}

func (k *worker) absenceRows() {
	w, st, r := k.w, &k.st, k.r
	ab, att := k.batches[2], k.batches[1]
	pn := k.opt.has(FormatPronote)
	n, seq := st.exitSlot, 0
	var monthAbs, monthUnj int
	m := 0
	flush := func(m int) {
		hd := min(w.mFirst[m+1], n) - w.mFirst[m]
		if hd > 0 {
			att.s(st.id).s(st.class).s(w.months[m]).i(hd).i(monthAbs).i(monthUnj).end()
		}
		monthAbs, monthUnj = 0, 0
	}
	for s := 0; s < n; s++ {
		for s >= w.mFirst[m+1] {
			flush(m)
			m++
		}
		a := k.abs[s]
		if a == 0 {
			continue
		}
		slot := &w.cal.Slots[s]
		seq++
		id := st.id + "-A" + strconv.Itoa(seq)
		hour := 8
		if slot.Half == PM {
			hour = 13
		}
		rec := w.stamp(s, hour, r.IntN(50)+5, 0)
		ab.s(id).s(st.id).s(st.class).s(w.slotDay[s]).s(slot.Half.String()).b(justified(a)).s(reasons[a]).s(rec).s("").end()
		final, finalRec := a, rec
		if c := k.corr[s]; c != 0 {
			seq++
			later := slot.Date.AddDate(0, 0, 2+r.IntN(19))
			finalRec = stampDate(later, 17, r.IntN(60), 0)
			ab.s(st.id + "-A" + strconv.Itoa(seq)).s(st.id).s(st.class).s(w.slotDay[s]).s(slot.Half.String()).
				b(true).s(reasons[c]).s(finalRec).s(id).end()
			final = c
			if len(st.noise) == 0 || st.noise[len(st.noise)-1] != "late_correction" {
				st.noise = append(st.noise, "late_correction")
			}
		}
		monthAbs++
		if !justified(final) {
			monthUnj++
		}
		if pn {
			b := k.text[sPNAbsences]
			b = k.pnPerson(b)
			b = append(b, w.slotDMY[s]...)
			b = append(b, ';')
			if slot.Half == AM {
				b = append(b, "Matin;"...)
			} else {
				b = append(b, "Après-midi;"...)
			}
			if justified(final) {
				b = append(b, "Oui;"...)
			} else {
				b = append(b, "Non;"...)
			}
			b = append(b, reasonLabels[final]...)
			b = append(b, ';')
			b = append(b, finalRec[8:10]...) // dd/mm/yyyy HH:MM
			b = append(b, '/')
			b = append(b, finalRec[5:7]...)
			b = append(b, '/')
			b = append(b, finalRec[:4]...)
			b = append(b, ' ')
			b = append(b, finalRec[11:16]...)
			k.text[sPNAbsences] = append(b, '\r', '\n')
		}
	}
	for ; m < len(w.cal.Months); m++ {
		flush(m)
	}
}

// pnPerson appends the first columns of a Pronote-style row.
func (k *worker) pnPerson(b []byte) []byte {
	st := &k.st
	b = append(b, st.id...)
	b = append(b, ';')
	b = append(b, st.family...)
	b = append(b, ';')
	b = append(b, st.given...)
	b = append(b, ';')
	b = append(b, k.w.lay.Divisions[st.div].Name...)
	return append(b, ';')
}

func (k *worker) gradeRows() {
	w, st, r, p := k.w, &k.st, k.r, &k.w.p
	g := k.batches[3]
	subs := subjects[st.track]
	for per := range w.cal.Periods {
		if !w.periodShown(st, per) {
			continue
		}
		a, b := w.pFirst[per], min(w.pLast[per]+1, st.exitSlot)
		absent := 0
		for s := a; s < b; s++ {
			if k.abs[s] != 0 {
				absent++
			}
		}
		termAbs := float64(absent) / float64(max(1, b-a))
		effect := 0.0
		if st.badTerm == per {
			effect -= st.badDrop
		}
		if st.signals&SigMarks != 0 && w.periodAffected(st, per) {
			effect -= st.decline
		}
		pname := w.cal.Periods[per].Name
		for si, sub := range subs {
			u := r.Float64()
			noise := 1.6 * r.NormFloat64()
			scaleDraw := r.Float64()
			typo := r.Float64() < p.TypoRate
			status, mark := StatusOK, math.NaN()
			switch {
			case u < p.AbsentFromTestRate+0.8*termAbs:
				status = StatusAbsent
			case u < p.AbsentFromTestRate+0.8*termAbs+p.ExemptRate:
				status = StatusExempt
			case u < p.AbsentFromTestRate+0.8*termAbs+p.ExemptRate+p.NotGradedRate:
				status = StatusNotGraded
			default:
				mark = math.Round(clamp(st.ability+st.subjOff[si]+effect+noise, 0, 20)*10) / 10
				if typo {
					mark = math.Round(mark) / 10 // 14.5 typed 1.5: a decimal slip
					st.noise = append(st.noise, "typo")
				}
			}
			g.s(st.id).s(sub.Code).s(pname).f(mark).s(status).end()
			if k.opt.has(FormatOneRoster) {
				k.result(sub.Code, per, status, mark)
			}
			if k.opt.has(FormatPronote) {
				k.pronoteNote(sub, per, status, mark, scaleDraw)
			}
		}
	}
}

func (k *worker) pronoteNote(sub Subject, per int, status string, mark, scaleDraw float64) {
	w, p := k.w, &k.w.p
	b := k.pnPerson(k.text[sPNNotes])
	b = append(b, sub.Pronote...)
	b = append(b, ';')
	b = append(b, "Trimestre "...)
	b = append(b, byte('1'+per))
	b = append(b, ';')
	b = append(b, w.pEndDMY[per]...)
	b = append(b, ';')
	scale := 20
	if scaleDraw < p.OtherScaleRate {
		scale = 10
		if scaleDraw < p.OtherScaleRate/2 {
			scale = 40
		}
	}
	switch status {
	case StatusAbsent:
		b = append(b, "Abs"...)
	case StatusExempt:
		b = append(b, "Disp"...)
	case StatusNotGraded:
		b = append(b, "N.Not"...)
	default:
		v := mark * float64(scale) / 20
		start := len(b)
		b = strconv.AppendFloat(b, math.Round(v*100)/100, 'f', -1, 64)
		for i := start; i < len(b); i++ {
			if b[i] == '.' {
				b[i] = ','
			}
		}
	}
	b = append(b, ';')
	b = strconv.AppendInt(b, int64(scale), 10)
	b = append(b, ";1\r\n"...)
	k.text[sPNNotes] = b
}

func (k *worker) groundTruth() {
	w, st := k.w, &k.st
	start, end := "", ""
	if st.drifts {
		start = w.slotDay[st.driftSlot]
		if st.driftEnd < len(w.cal.Slots) {
			end = w.slotDay[st.driftEnd]
		} else {
			end = day(w.cal.Last)
		}
	}
	noise := ""
	for i, n := range st.noise {
		if i > 0 && st.noise[i-1] == n {
			continue
		}
		if noise != "" {
			noise += ";"
		}
		noise += n
	}
	k.batches[4].s(st.id).s(st.school).s(st.track.String()).b(st.drifts).s(start).s(end).s(signalNames(st.signals)).
		s(st.outcome).s(w.exitDate(st)).s(noise).end()
}

// stamp returns an RFC 3339 local time (Europe/Paris) on the day of slot s.
func (w *world) stamp(s, h, m, sec int) string { return stampDate(w.cal.Slots[s].Date, h, m, sec) }

// stampDate formats a local time in Europe/Paris with its UTC offset
// (summer time from the last Sunday of March to the last Sunday of
// October, switching at midnight: close enough for synthetic data).
func stampDate(d time.Time, h, m, sec int) string {
	var b [25]byte
	return string(appendStamp(b[:0], d, h, m, sec))
}

func appendStamp(b []byte, d time.Time, h, m, sec int) []byte {
	b = d.AppendFormat(b, "2006-01-02T")
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, m)
	b = append(b, ':')
	b = append2(b, sec)
	y := d.Year()
	lastSun := func(mo time.Month) time.Time {
		t := date(y, mo+1, 1).AddDate(0, 0, -1)
		return t.AddDate(0, 0, -int(t.Weekday()))
	}
	if !d.Before(lastSun(time.March)) && d.Before(lastSun(time.October)) {
		return append(b, "+02:00"...)
	}
	return append(b, "+01:00"...)
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

// appendUUID appends a version 4 UUID made of the 16 bytes.
func appendUUID(b []byte, u [16]byte) []byte {
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

func randUUID(r *rand.Rand) [16]byte {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], r.Uint64())
	binary.LittleEndian.PutUint64(u[8:], r.Uint64())
	return u
}
