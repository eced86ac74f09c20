package indicators

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomTimeline is a school year of one student: platform sessions,
// absent half-days (some justified, some corrected later), marks of three
// terms (some missing) and, for a drifter, unjustified absences that grow
// from a random onset; late ones are dated before start.
func randomTimeline(rng *rand.Rand, start int32) []Event {
	var ev []Event
	drifter := rng.IntN(3) == 0
	onset := start + 60 + int32(rng.IntN(150))
	for d := start; d < start+310; d++ {
		if rng.Float64() < 0.3 {
			ev = append(ev, Event{Kind: Activity, Day: d})
		}
		p := 0.02
		if drifter && d >= onset {
			p = min(0.6, 0.02+float64(d-onset)/200)
		}
		for range 2 {
			if rng.Float64() < p {
				e := Event{Kind: Absence, Day: d, Justified: rng.IntN(4) == 0}
				if !e.Justified && rng.IntN(6) == 0 {
					e.CorrectedDay = d + int32(rng.IntN(20))
				}
				ev = append(ev, e)
			}
		}
	}
	subjects := []string{"maths", "francais", "anglais", "svt", "histoire_geo", "eps"}
	for t := range 3 {
		base := 6 + 10*rng.Float64()
		for _, s := range subjects {
			m := Event{Kind: Mark, Term: t, Subject: s, Mark: base + 4*rng.NormFloat64()}
			if rng.IntN(15) == 0 {
				m.Mark = math.NaN()
			}
			ev = append(ev, m)
		}
	}
	rng.Shuffle(len(ev), func(i, j int) { ev[i], ev[j] = ev[j], ev[i] })
	return ev
}

// testConfigs are the default pack and variants that switch on the
// indicators that are off by default, change the report day, or ignore
// corrections.
func testConfigs(t testing.TB) map[string]*Config {
	t.Helper()
	all := DefaultConfig()
	all.StreakWeeks, all.StreakMinHalfDays = 3, 4
	all.CusumMin = 3
	all.MonthsMin, all.MonthMinHalfDays = 2, 3
	all.Weights[AbsStreak], all.Weights[AbsCusum], all.Weights[AbsMonths] = 0.4, 0.4, 0.4
	latest := DefaultConfig()
	latest.AsOf = AsOfLatest
	noCorr := DefaultConfig()
	noCorr.UseCorrections = false
	noCorr.AsOf = AsOfLatest
	mid := DefaultConfig()
	mid.AsOf, _ = ParseDay("2026-02-11")
	fr := DefaultConfig()
	fr.Lang = "fr"
	fr.RaiseAt, fr.ClearBelow, fr.RaiseDays = 0.4, 0.2, 3
	return map[string]*Config{"default": DefaultConfig(), "all indicators": all, "latest": latest, "no corrections": noCorr, "mid-year": mid, "fr, low thresholds": fr}
}

// sameResult reports how a and b differ, floats compared bit for bit, or "".
func sameResult(a, b Result) string {
	bits := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	switch {
	case !bits(a.Risk, b.Risk):
		return "risk"
	case !bits(a.MaxRisk, b.MaxRisk):
		return "max risk"
	case !bits(a.Score, b.Score):
		return "score"
	case !bits(a.Chance, b.Chance):
		return "chance"
	case a.Level != b.Level:
		return "level"
	case !slices.Equal(a.Codes, b.Codes):
		return "codes"
	case a.Reason != b.Reason:
		return "reason"
	case a.FirstAlert != b.FirstAlert:
		return "first alert"
	case !slices.Equal(a.Alerts, b.Alerts):
		return "alerts"
	}
	return ""
}

// TestEvaluateMatchesReference: the optimised Evaluate gives what the code
// before the speed-ups gave (reference_test.go), bit for bit, on random
// years of random students under several configurations, and on every
// prefix of a few of them (as emit = "per_row" sends them).
func TestEvaluateMatchesReference(t *testing.T) {
	start, err := ParseDay("2025-09-01")
	if err != nil {
		t.Fatal(err)
	}
	n := 300
	if testing.Short() {
		n = 60
	}
	alerts := 0
	for name, c := range testConfigs(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(len(name))))
			for s := range n {
				ev := randomTimeline(rng, start-int32(rng.IntN(3)))
				want := c.evaluateRef("S1", slices.Clone(ev))
				got := c.Evaluate("S1", slices.Clone(ev))
				if d := sameResult(got, want); d != "" {
					t.Fatalf("student %d: %s differs:\n got %+v\nwant %+v", s, d, got, want)
				}
				alerts += len(want.Alerts)
				if s%50 == 0 && c.AsOf == AsOfLatest {
					for k := 1; k <= len(ev); k += 1 + k/8 {
						want := c.evaluateRef("S1", slices.Clone(ev[:k]))
						if d := sameResult(c.Evaluate("S1", slices.Clone(ev[:k])), want); d != "" {
							t.Fatalf("student %d, prefix %d: %s differs", s, k, d)
						}
					}
				}
			}
		})
	}
	if alerts == 0 {
		t.Fatal("no alert at all: the timelines do not exercise the alert policy")
	}
}

// BenchmarkEvaluateYear is the native cost of one student's school year
// as the batch pipeline scores it (one Evaluate per student, report day
// the last term end), over random timelines (a third of them drifting).
//
//	go test ./indicators -run '^$' -bench EvaluateYear -benchmem
func BenchmarkEvaluateYear(b *testing.B) {
	c := DefaultConfig()
	start, _ := ParseDay("2025-09-01")
	rng := rand.New(rand.NewPCG(1, 2))
	var years [][]Event
	for range 64 {
		years = append(years, randomTimeline(rng, start))
	}
	buf := make([]Event, 0, 1024)
	i := 0
	for b.Loop() {
		buf = append(buf[:0], years[i%len(years)]...)
		c.Evaluate("S1", buf)
		i++
	}
}
