package health

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Truth is an injected incident of the ground truth
// (platform_incidents.csv): Platform or School is "all" when every
// platform or school is affected.
type Truth struct {
	ID, Kind         string // outage, errors, slowdown, network
	Platform, School string
	Start, End       int64 // Unix seconds, End exclusive
}

// Outage reports whether the incident is a loss of service (an outage or
// a school's network cut) rather than a partial one (errors, slowdown).
func (t Truth) Outage() bool { return t.Kind == "outage" || t.Kind == "network" }

// Grace is how long after an incident's end a detection still counts for it.
const Grace = 15 * 60

// Score is the comparison of detections with the ground truth.
type Score struct {
	Outages, OutagesFound int
	Partial, PartialFound int
	ByKind                map[string][2]int // kind → found, total
	OutageDelays          []float64         // minutes, detection - start
	PartialDelays         []float64
	FalseAlarms           map[string]int // platform → detections matching nothing
	False                 []Incident
	Missed                []Truth
	Months                float64 // span of the logs in months of 30.44 days
	NAB                   float64 // NAB-style score, standard profile, 0 (nothing) to 100 (perfect)
}

// matches reports whether detection x can be the detection of truth g:
// the same platform (a platform-wide detection for a platform's incident,
// a school's for its network cut), opened between the incident's start
// and Grace after its end.
func matches(x Incident, g Truth) bool {
	if x.Opened < g.Start || x.Opened > g.End+Grace {
		return false
	}
	if g.Kind == "network" {
		return x.School == g.School && (g.Platform == "all" || g.Platform == x.Platform)
	}
	return x.Platform == g.Platform && (x.School == "" || g.School == "all" || x.School == g.School)
}

// Compare scores detections against the truth over a span of the logs of
// span seconds, for the platforms named.
func Compare(truth []Truth, det []Incident, platforms []string, span int64) *Score {
	s := &Score{ByKind: map[string][2]int{}, FalseAlarms: map[string]int{}, Months: float64(span) / 86400 / 30.44}
	for _, p := range platforms {
		s.FalseAlarms[p] = 0
	}
	used := make([]bool, len(det))
	// NAB (Lavin and Ahmad, 2015), standard profile: a true positive
	// scores by its position in the incident's window (1 at the start,
	// about 0 at its end), a miss -1, a false positive -0.11.
	const aFP, aFN = -0.11, -1.0
	nab := 0.0
	for _, g := range truth {
		first := int64(math.MaxInt64)
		for j, x := range det {
			if matches(x, g) {
				used[j] = true
				first = min(first, x.Opened)
			}
		}
		k := s.ByKind[g.Kind]
		k[1]++
		found := first != math.MaxInt64
		if found {
			k[0]++
			delay := float64(first-g.Start) / 60
			if g.Outage() {
				s.OutagesFound++
				s.OutageDelays = append(s.OutageDelays, delay)
			} else {
				s.PartialFound++
				s.PartialDelays = append(s.PartialDelays, delay)
			}
			w := float64(g.End + Grace - g.Start)
			y := float64(first-(g.End+Grace)) / w // -1 at the start, 0 at the end
			nab += nabAt(y)
		} else {
			s.Missed = append(s.Missed, g)
			nab += aFN
		}
		if g.Outage() {
			s.Outages++
		} else {
			s.Partial++
		}
		s.ByKind[g.Kind] = k
	}
	for j, x := range det {
		if !used[j] {
			s.FalseAlarms[x.Platform]++
			s.False = append(s.False, x)
			nab += aFP
		}
	}
	null := aFN * float64(len(truth))
	perfect := float64(len(truth)) * nabAt(-1)
	if perfect != null {
		s.NAB = 100 * (nab - null) / (perfect - null)
	}
	return s
}

// nabAt is NAB's scaled sigmoid at relative position y in the window (-1
// its start, 0 its end).
func nabAt(y float64) float64 { return 2/(1+math.Exp(5*y)) - 1 }

// Quantile is the q-quantile of v (type 7), NaN if empty.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	h := float64(len(v)-1) * q
	lo := math.Floor(h)
	if int(lo)+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[int(lo)] + (h-lo)*(v[int(lo)+1]-v[int(lo)])
}

// FalsePerPlatformMonth is the highest number of false alarms of a
// platform per month.
func (s *Score) FalsePerPlatformMonth() float64 {
	m := 0
	for _, n := range s.FalseAlarms {
		m = max(m, n)
	}
	return float64(m) / s.Months
}

// String is the figures as a few lines.
func (s *Score) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "outages (outage, network): recall %d/%d = %.3f, delay median %.1f min, p90 %.1f min\n",
		s.OutagesFound, s.Outages, ratioInt(s.OutagesFound, s.Outages), Quantile(s.OutageDelays, 0.5), Quantile(s.OutageDelays, 0.9))
	fmt.Fprintf(&b, "partial (errors, slowdown): recall %d/%d = %.3f, delay median %.1f min, p90 %.1f min\n",
		s.PartialFound, s.Partial, ratioInt(s.PartialFound, s.Partial), Quantile(s.PartialDelays, 0.5), Quantile(s.PartialDelays, 0.9))
	var kinds []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.ByKind {
			if !yield(k) {
				return
			}
		}
	}) {
		kinds = append(kinds, fmt.Sprintf("%s %d/%d", k, s.ByKind[k][0], s.ByKind[k][1]))
	}
	fmt.Fprintf(&b, "by kind: %s\n", strings.Join(kinds, ", "))
	var fa []string
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.FalseAlarms {
			if !yield(k) {
				return
			}
		}
	}) {
		fa = append(fa, fmt.Sprintf("%s %d", p, s.FalseAlarms[p]))
	}
	fmt.Fprintf(&b, "false alarms over %.1f months: %s; worst %.2f per platform per month\n", s.Months, strings.Join(fa, ", "), s.FalsePerPlatformMonth())
	fmt.Fprintf(&b, "NAB-style score (standard profile): %.1f\n", s.NAB)
	for _, m := range s.Missed {
		fmt.Fprintf(&b, "  missed %s %s %s/%s %s-%s\n", m.ID, m.Kind, m.Platform, m.School, hm(m.Start), hm(m.End))
	}
	for _, x := range s.False {
		fmt.Fprintf(&b, "  false  %s %s\n", x.ID, x.Reason)
	}
	return b.String()
}

func hm(t int64) string { return time.Unix(t, 0).UTC().Format("2006-01-02T15:04Z") }

func ratioInt(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
