package indicators

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Snapshot is what is known of a student at one moment when there is no
// day-by-day timeline (the real-data evaluations): term averages, a share
// of absences and counts of missing and late work.
type Snapshot struct {
	Averages   []float64 // term averages /20 in term order; NaN when unknown
	AbsentRate float64   // share of school time missed; NaN when unknown
	Missing    int       // work due and not handed in
	Late       int       // work handed in late (counted with Missing, half weight)
}

// Score is the composite risk of a snapshot with the same indicators,
// severities and weights as Evaluate: MARK_LOW on the last average,
// MARK_FALL between the last two, ABS_RATE on the absent rate, MISSING on
// missing (and late) work.
func (c *Config) Score(s Snapshot) (risk float64, codes []string, reason string) {
	var ind [numCodes]indicator
	last := -1
	for t, a := range s.Averages {
		if !math.IsNaN(a) {
			last = t
		}
	}
	if last >= 0 {
		cur := s.Averages[last]
		if cur < c.LowAverage {
			ind[MarkLow] = indicator{math.Min(1, 0.5+2*(c.LowAverage-cur)/math.Max(c.LowAverage, 1)),
				fmt.Sprintf("average %s", num1(cur))}
		}
		if last > 0 && !math.IsNaN(s.Averages[last-1]) {
			if fall := s.Averages[last-1] - cur; fall >= c.FallPoints {
				ind[MarkFall] = indicator{sev(fall, c.FallPoints), fmt.Sprintf("average %s → %s", num1(s.Averages[last-1]), num1(cur))}
			}
		}
	}
	if !math.IsNaN(s.AbsentRate) && s.AbsentRate >= c.ChronicRate {
		ind[AbsRate] = indicator{sev(s.AbsentRate, c.ChronicRate), fmt.Sprintf("absences %s %%", pct(s.AbsentRate))}
	}
	if m := float64(s.Missing) + 0.5*float64(s.Late); c.MissingMin > 0 && m >= float64(c.MissingMin) {
		ind[Missing] = indicator{sev(m, float64(c.MissingMin)), fmt.Sprintf("%d missing, %d late", s.Missing, s.Late)}
	}
	q := 1.0
	var order []int
	for k := range ind {
		q *= 1 - c.Weights[k]*ind[k].severity
		if ind[k].severity > 0 && c.Weights[k] > 0 {
			order = append(order, k)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := c.Weights[a]*ind[a].severity, c.Weights[b]*ind[b].severity
		if x > y {
			return -1
		} else if x < y {
			return 1
		}
		return 0
	})
	var texts []string
	for _, k := range order {
		codes = append(codes, Codes[k])
		texts = append(texts, ind[k].text)
	}
	return 1 - q, codes, strings.Join(texts, "; ")
}
