package academy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Primary schools (écoles) of the academy, their CP and CE1 pupils, the
// pupils' national evaluations and the enrolments and departures of the
// year. Everything comes from one stream of the seed of its own, so that
// the secondary schools, the students and every earlier file are the same
// with or without it.
//
// An école has 8 to 60 pupils per level, in classes of at most
// primaryClassSize; écoles are grouped by département into circonscriptions
// of about primaryPerCirc. A pupil's evaluation score out of 100 follows
// their ability and their école's; a class enters each domain in one
// sitting of the evaluation days, as in the collèges. During the year a
// pupil leaves with probability primaryLeave, on a school day drawn
// uniformly; an école receives arrivals, about primaryArrive of its size.
//
// The projection of each école's enrolment (CP and CE1, made in the
// spring) is the rentrée enrolment within a few percent, except in the
// écoles where an event the projection missed moved it (new housing, a
// closing employer): those are the ground truth of the flags, written to
// primary_truth.csv with their reason.
const (
	primaryClassSize = 24
	primaryPerCirc   = 8
	primaryLeave     = 0.05
	primaryArrive    = 0.05
	// primaryShiftShare is the share of écoles whose projection missed an
	// event; the shift is 15 to 30 % of the enrolment, up or down.
	primaryShiftShare = 0.08
)

// primaryLevels are the levels with national evaluations in primary.
var primaryLevels = [2]string{"CP", "CE1"}

// primarySchool is one generated école.
type primarySchool struct {
	id, name, dept, circ string
	effect               float64
	projected            int
	shift                string // ground truth: why the projection missed, "" if it did not
	rentree, arr, dep    int
}

// pupil is one CP or CE1 pupil.
type pupil struct {
	id, class, level string
	school           int
	ability          float64
	arrive, leave    int // school-day indexes: enrolled on [arrive, leave)
}

// primaryWorld is the generated primary half of the academy.
type primaryWorld struct {
	schools  []primarySchool
	pupils   []pupil
	days     []string // school days (ISO dates)
	dayFirst []int    // slot of each school day's first half-day
}

// primarySchoolCount is the number of écoles generated for an academy of
// students secondary students: one per 150 students, at least 4.
func primarySchoolCount(students int) int { return max(4, students/150) }

// newPrimary generates the écoles and their pupils.
func (w *world) newPrimary() *primaryWorld {
	r := rand.New(rand.NewPCG(w.seed^0x9e3779b97f4a7c15, 0xec01e))
	pw := &primaryWorld{}
	for s := range w.cal.Slots {
		if len(pw.days) == 0 || pw.days[len(pw.days)-1] != w.slotDay[s] {
			pw.days = append(pw.days, w.slotDay[s])
			pw.dayFirst = append(pw.dayFirst, s)
		}
	}
	depts := []int{75, 92, 93, 94, 77, 78, 91, 95}
	n := primarySchoolCount(w.lay.Students)
	perDept := make([]int, len(depts))
	serial := 5000
	for i := range n {
		d := i % len(depts)
		serial += 1 + r.IntN(20)
		sc := primarySchool{
			id:     uai(depts[d], serial),
			name:   "École " + schoolNames[r.IntN(len(schoolNames))],
			dept:   fmt.Sprintf("%03d", depts[d]),
			circ:   fmt.Sprintf("%03d-C%02d", depts[d], perDept[d]/primaryPerCirc+1),
			effect: 4 * r.NormFloat64(),
		}
		perDept[d]++
		pw.schools = append(pw.schools, sc)
		for _, lv := range primaryLevels {
			m := 8 + int(52*math.Pow(r.Float64(), 1.5))
			classes := (m + primaryClassSize - 1) / primaryClassSize
			for k := range m {
				p := pupil{
					level: lv, school: i,
					class: fmt.Sprintf("%s-%s%c", sc.id, lv, 'A'+k%classes), ability: r.NormFloat64(),
					leave: len(pw.days),
				}
				if r.Float64() < primaryLeave {
					p.leave = 1 + r.IntN(len(pw.days)-1)
				}
				pw.pupils = append(pw.pupils, p)
			}
		}
	}
	// Arrivals during the year, after the rentrée pupils so that their
	// ids follow.
	for i := range pw.schools {
		size := 0
		for _, p := range pw.pupils {
			if p.school == i {
				size++
			}
		}
		pw.schools[i].rentree = size
		k := 0
		for range size {
			if r.Float64() < primaryArrive {
				k++
			}
		}
		for range k {
			lv := primaryLevels[r.IntN(2)]
			p := pupil{level: lv, school: i,
				class: fmt.Sprintf("%s-%sA", pw.schools[i].id, lv), ability: r.NormFloat64(),
				arrive: 1 + r.IntN(len(pw.days)-1), leave: len(pw.days)}
			pw.pupils = append(pw.pupils, p)
		}
	}
	for _, p := range pw.pupils {
		sc := &pw.schools[p.school]
		if p.arrive > 0 {
			sc.arr++
		}
		if p.leave < len(pw.days) {
			sc.dep++
		}
	}
	for i := range pw.schools {
		sc := &pw.schools[i]
		noise := 1 + 0.03*r.NormFloat64()
		if r.Float64() < primaryShiftShare {
			shift := 0.15 + 0.15*r.Float64()
			if r.IntN(2) == 0 {
				noise = 1 / (1 + shift)
				sc.shift = fmt.Sprintf("new housing: %d pupils projected, %.0f %% more came", int(math.Round(float64(sc.rentree)*noise)), 100*shift)
			} else {
				noise = 1 / (1 - shift)
				sc.shift = fmt.Sprintf("closing employer: %d pupils projected, %.0f %% fewer came", int(math.Round(float64(sc.rentree)*noise)), 100*shift)
			}
		}
		sc.projected = int(math.Round(float64(sc.rentree) * noise))
	}
	pw.number()
	return pw
}

// number gives the pupils their ids: E, the école's id and a rank in the
// école from 001.
func (pw *primaryWorld) number() {
	next := make([]int, len(pw.schools))
	for i := range pw.pupils {
		p := &pw.pupils[i]
		next[p.school]++
		p.id = fmt.Sprintf("E%s-%03d", pw.schools[p.school].id, next[p.school])
	}
}

// primarySchoolsCSV is primary_schools.csv: one row per école.
func (pw *primaryWorld) primarySchoolsCSV() []byte {
	b := []byte("school_id,name,departement,circonscription\n")
	for _, s := range pw.schools {
		b = csvRow(b, s.id, s.name, s.dept, s.circ)
	}
	return b
}

// projectionCSV is enrolment_projection.csv: each école's projected CP
// and CE1 enrolment for the year.
func (pw *primaryWorld) projectionCSV() []byte {
	b := []byte("school_id,departement,circonscription,projected\n")
	for _, s := range pw.schools {
		b = csvRow(b, s.id, s.dept, s.circ, strconv.Itoa(s.projected))
	}
	return b
}

// truthCSV is primary_truth.csv, the ground truth per école: the rentrée
// enrolment, arrivals, departures, the enrolment at the end of the year,
// the projection and, when the projection missed an event, why.
func (pw *primaryWorld) truthCSV() []byte {
	b := []byte("school_id,circonscription,rentree,arrivals,departures,final,projected,projection_missed\n")
	for _, s := range pw.schools {
		b = csvRow(b, s.id, s.circ, strconv.Itoa(s.rentree), strconv.Itoa(s.arr), strconv.Itoa(s.dep),
			strconv.Itoa(s.rentree+s.arr-s.dep), strconv.Itoa(s.projected), s.shift)
	}
	return b
}

// enrolmentsCSV is enrolments.csv: one row per movement, in date order:
// the rentrée (every pupil enrolled on the first school day), arrivals and
// departures, with delta +1 or -1 so that an école's enrolment on a day is
// the sum of the deltas up to it.
func (pw *primaryWorld) enrolmentsCSV() []byte {
	type mv struct {
		day, pupil int
		kind       string
	}
	var mvs []mv
	for i, p := range pw.pupils {
		kind := "rentree"
		if p.arrive > 0 {
			kind = "arrival"
		}
		mvs = append(mvs, mv{p.arrive, i, kind})
		if p.leave < len(pw.days) {
			mvs = append(mvs, mv{p.leave, i, "departure"})
		}
	}
	slices.SortStableFunc(mvs, func(a, b mv) int { return a.day - b.day })
	b := []byte("date,school_id,departement,circonscription,level,student_id,movement,delta\n")
	for _, m := range mvs {
		p := pw.pupils[m.pupil]
		s := pw.schools[p.school]
		d := "1"
		if m.kind == "departure" {
			d = "-1"
		}
		b = csvRow(b, pw.days[m.day], s.id, s.dept, s.circ, p.level, p.id, m.kind, d)
	}
	return b
}

// primaryEvaluationsCSV is primary_evaluations.csv: CP and CE1 results per pupil
// and domain, for the pupils enrolled when their class entered the
// domain, minus 3 % who missed it; rows in entry order.
func (w *world) primaryEvaluationsCSV(pw *primaryWorld) []byte {
	r := rand.New(rand.NewPCG(w.seed^0x9e3779b97f4a7c15, 0xe7a1))
	type row struct {
		at   string
		line []byte
	}
	var rows []row
	if len(w.evalDays) == 0 {
		return []byte(primaryEvalHeader)
	}
	for _, p := range pw.pupils {
		s := pw.schools[p.school]
		for d, dom := range evaluationDomains {
			slot, minute := w.classEntry(p.class, d)
			noise := r.NormFloat64()
			missed := r.Float64() < 0.03
			day := w.cal.Slots[slot].Day
			if p.arrive > day || p.leave <= day || missed {
				continue
			}
			score := 62 + 13*p.ability + s.effect + 6*noise
			score = math.Round(math.Max(0, math.Min(100, score))*10) / 10
			at := stampDate(w.cal.Slots[slot].Date, minute/60, minute%60, len(rows)%60)
			rows = append(rows, row{at, csvRow(nil, p.id, s.id, s.dept, s.circ, p.class, p.level, dom,
				strconv.FormatFloat(score, 'f', 1, 64), evaluationGroup(score), at)})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	b := []byte(primaryEvalHeader)
	for _, rw := range rows {
		b = append(b, rw.line...)
	}
	return b
}

const primaryEvalHeader = "student_id,school_id,departement,circonscription,class_id,level,domain,score,group,entered_at\n"
