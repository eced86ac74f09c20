package academy

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
)

// Teacher absences. Each teacher (one per subject and TeachersPerSubject
// divisions of a school, as in the roster) draws absence spells from a
// stream of the seed and the teacher id alone: a spell starts on a school
// day with probability absenceStart and lasts 1-2 days (70 %), 3-10 (25 %)
// or 11-40 (5 %). Short spells are rarely replaced (10 %); a spell of 11
// days or more is replaced, with probability 0.7, from a day drawn
// between its 5th and 15th. A day of absence costs hoursPerDay teaching
// hours.
const (
	absenceStart = 0.012
	hoursPerDay  = 4
)

// teacherAbsencesCSV returns teacher_absences.csv: one row per teacher and
// school day of absence.
func (w *world) teacherAbsencesCSV() []byte {
	b := []byte("date,school_id,teacher_id,subject,spell_id,hours,replaced,unreplaced_hours\n")
	var days []string // distinct school days
	for s := range w.cal.Slots {
		if len(days) == 0 || days[len(days)-1] != w.slotDay[s] {
			days = append(days, w.slotDay[s])
		}
	}
	rank := 0
	for di, d := range w.lay.Divisions {
		if di > 0 && w.lay.Divisions[di-1].School == d.School {
			rank++
		} else {
			rank = 0
		}
		if rank%TeachersPerSubject != 0 {
			continue
		}
		sc := w.lay.Schools[d.School]
		for _, sub := range subjects[sc.Track] {
			tid := fmt.Sprintf("P%s-%s-%d", sc.ID, sub.Code, rank/TeachersPerSubject+1)
			h := fnv.New64a()
			h.Write([]byte(tid))
			r := rand.New(rand.NewPCG(w.seed^0x2545f4914f6cdd1d, h.Sum64()))
			spell := 0
			for i := 0; i < len(days); i++ {
				if r.Float64() >= absenceStart {
					continue
				}
				spell++
				var n int
				switch u := r.Float64(); {
				case u < 0.7:
					n = 1 + r.IntN(2)
				case u < 0.95:
					n = 3 + r.IntN(8)
				default:
					n = 11 + r.IntN(30)
				}
				from := n + 1 // not replaced
				switch {
				case n >= 11 && r.Float64() < 0.7:
					from = 4 + r.IntN(11)
				case n < 11 && r.Float64() < 0.1:
					from = 0
				}
				id := tid + "-" + strconv.Itoa(spell)
				for k := 0; k < n && i < len(days); k, i = k+1, i+1 {
					replaced := k >= from
					lost := hoursPerDay
					if replaced {
						lost = 0
					}
					b = csvRow(b, days[i], sc.ID, tid, sub.Code, id, strconv.Itoa(hoursPerDay), strconv.FormatBool(replaced), strconv.Itoa(lost))
				}
			}
		}
	}
	return b
}
