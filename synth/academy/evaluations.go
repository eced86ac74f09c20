package academy

import (
	"hash/fnv"
	"math"
	"strconv"
)

// Evaluation groups, as the national evaluations report them.
const (
	GroupBesoin       = "besoin"
	GroupFragile      = "fragile"
	GroupSatisfaisant = "satisfaisant"
)

// evaluationDomains are the domains of the 6e and 4e national evaluations.
var evaluationDomains = [2]string{"francais", "mathematiques"}

// evaluationWindow is how many school days, from the first school day on
// or after 15 September, the classes take to enter their results.
const evaluationWindow = 15

// evaluationGroup is the group of a score out of 100: the thresholds give
// about 7 % "besoin", 21 % "fragile" and 72 % "satisfaisant".
func evaluationGroup(score float64) string {
	switch {
	case score < 35:
		return GroupBesoin
	case score < 50:
		return GroupFragile
	}
	return GroupSatisfaisant
}

// evaluationDays lists the distinct school days of the calendar (as slot
// indexes of their first half-day) from 15 September on.
func (w *world) evaluationDays() []int {
	var days []int
	start := strconv.Itoa(w.cal.Year) + "-09-15"
	for s := range w.cal.Slots {
		if w.slotDay[s] < start || (len(days) > 0 && w.slotDay[days[len(days)-1]] == w.slotDay[s]) {
			continue
		}
		days = append(days, s)
		if len(days) == evaluationWindow {
			break
		}
	}
	return days
}

// classEntry returns when the teacher of class enters domain d: a school
// day of the window and a minute of the day, from the class id alone, so
// that every student of a class is entered together.
func (w *world) classEntry(class string, d int) (slot, minute int) {
	h := fnv.New64a()
	h.Write([]byte(class))
	h.Write([]byte{byte(d)})
	v := h.Sum64() ^ w.seed
	v ^= v >> 31
	v *= 0x7fb5d329728ea185
	v ^= v >> 27
	days := w.evalDays
	return days[int(v%uint64(len(days)))], 8*60 + int((v>>20)%(9*60))
}

// evaluations appends the national evaluation results of a 6e or 4e
// student: one row per domain, unless the student left before the class
// entered it or missed the test (3 %). The score follows the student's
// ability; the draws come from a stream of their own, so that other files
// are the same with or without this one.
func (k *worker) evaluations(i int) {
	st, w := &k.st, k.w
	if (st.level != "6e" && st.level != "4e") || len(w.evalDays) == 0 {
		return
	}
	k.epcg.Seed(w.seed^0x5851f42d4c957f2d, uint64(i))
	r := k.er
	for d, dom := range evaluationDomains {
		slot, minute := w.classEntry(st.class, d)
		noise := r.NormFloat64()
		missed := r.Float64() < 0.03
		if st.exitSlot <= slot || missed {
			continue
		}
		score := 60 + 4.5*(st.ability-12) + 10*noise
		score = math.Round(math.Max(0, math.Min(100, score))*10) / 10
		sec := i % 60 // a few seconds apart within the class
		k.text[sEval] = csvRow(k.text[sEval], st.id, st.school, st.school[:3], st.class, st.level, dom,
			strconv.FormatFloat(score, 'f', 1, 64), evaluationGroup(score), stampDate(w.cal.Slots[slot].Date, minute/60, minute%60, sec))
	}
}
