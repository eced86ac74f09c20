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
			for range 1 + rng.IntN(3)/2 { // a second mark in a third of the subjects
				m := Event{Kind: Mark, Term: t, Subject: s, Mark: base + 4*rng.NormFloat64()}
				if rng.IntN(15) == 0 {
					m.Mark = math.NaN()
				}
				ev = append(ev, m)
			}
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
	inf := DefaultConfig() // an infinite weight: every code counts every day (Inf × 0 is NaN)
	inf.Weights[Inactive] = math.Inf(1)
	return map[string]*Config{"default": DefaultConfig(), "all indicators": all, "latest": latest, "no corrections": noCorr, "mid-year": mid, "fr, low thresholds": fr, "infinite weight": inf}
}

// sameResult reports how a and b differ, floats compared bit for bit, or "".
// Any NaN equals any NaN: natively the builtin max gives another NaN
// payload than fmax (the runtime's, which is the builtin's in WebAssembly),
// and only an infinite weight makes a NaN.
func sameResult(a, b Result) string {
	bits := func(x, y float64) bool {
		return math.Float64bits(x) == math.Float64bits(y) || (math.IsNaN(x) && math.IsNaN(y))
	}
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

// BenchmarkEvaluateYear is the cost of one student's school year as the
// batch pipeline scores it (one Evaluate per student, report day the last
// term end), over random timelines (a third of them drifting), now and
// with the code before the speed-ups (reference_test.go). Natively, and
// in WebAssembly (Go's wasm code generator, run by Node's V8 rather than
// wazero, but the same code):
//
//	go test ./indicators -run '^$' -bench EvaluateYear -benchmem
//	GOOS=js GOARCH=wasm go test ./indicators -run '^$' -bench EvaluateYear -exec "$(go env GOROOT)/lib/wasm/go_js_wasm_exec"
func BenchmarkEvaluateYear(b *testing.B) {
	b.Run("now", func(b *testing.B) { benchYear(b, (*Config).Evaluate) })
	b.Run("reference", func(b *testing.B) { benchYear(b, (*Config).evaluateRef) })
}

func benchYear(b *testing.B, eval func(*Config, string, []Event) Result) {
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
		eval(c, "S1", buf)
		i++
	}
}

// arrival is one step of a stream: event ev of a student's timeline
// arrives, or, when correct is set, the correction of that absence does.
type arrival struct {
	student int
	ev      int
	correct bool
}

// stream orders the events of the students' timelines as a continuous run
// receives them: by day, some rows a few days late, corrections on the
// day they are recorded, the students interleaved.
func stream(rng *rand.Rand, c *Config, years [][]Event) []arrival {
	type timed struct {
		at int32
		a  arrival
	}
	var all []timed
	for s, ev := range years {
		for i, e := range ev {
			at := e.Day
			if e.Kind == Mark {
				at = c.TermEnds[e.Term]
			}
			if rng.IntN(20) == 0 {
				at += int32(1 + rng.IntN(5)) // late
			}
			all = append(all, timed{at, arrival{student: s, ev: i}})
			if e.CorrectedDay > 0 {
				at := e.CorrectedDay
				if rng.IntN(3) == 0 {
					at += int32(1 + rng.IntN(10)) // entered late: known before the newest day
				}
				all = append(all, timed{at, arrival{student: s, ev: i, correct: true}})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b timed) int { return int(a.at - b.at) })
	out := make([]arrival, len(all))
	for i, t := range all {
		out[i] = t.a
	}
	return out
}

// TestMemoMatchesEvaluate: a Memo's results are Evaluate's, bit for bit,
// on every prefix of streams of several students (late rows, corrections
// arriving after the half-day they justify, marks at their term's end),
// with a memo large enough to hold them all and one so small that it
// evicts all the time; and the large one does resume.
func TestMemoMatchesEvaluate(t *testing.T) {
	start, err := ParseDay("2025-09-01")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		maxBytes int
		all      bool
	}{{"large", 64 << 20, false}, {"tiny", 8 << 10, false}, {"large, all indicators", 64 << 20, true}} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			if tt.all {
				c = testConfigs(t)["all indicators"]
			}
			c.AsOf = AsOfLatest
			rng := rand.New(rand.NewPCG(3, uint64(tt.maxBytes)))
			students := 12
			if testing.Short() {
				students = 6
			}
			var years [][]Event
			for range students {
				years = append(years, randomTimeline(rng, start+int32(rng.IntN(3))))
			}
			memo := c.NewMemo(tt.maxBytes)
			got := make([][]Event, students) // each student's prefix so far
			corrected := make([]map[int]bool, students)
			index := make([]map[int]int, students) // event -> position in got
			for s := range students {
				corrected[s], index[s] = map[int]bool{}, map[int]int{}
			}
			alerts := 0
			for step, a := range stream(rng, c, years) {
				s := a.student
				if a.correct {
					corrected[s][a.ev] = true
				} else {
					e := years[s][a.ev]
					e.CorrectedDay = 0
					index[s][a.ev] = len(got[s])
					got[s] = append(got[s], e)
				}
				if j, ok := index[s][a.ev]; ok && corrected[s][a.ev] {
					got[s][j].CorrectedDay = years[s][a.ev].CorrectedDay
				}
				id := "S" + string(rune('A'+s))
				want := c.Evaluate(id, slices.Clone(got[s]))
				res := memo.Evaluate(id, slices.Clone(got[s]))
				if d := sameResult(res, want); d != "" {
					t.Fatalf("step %d, student %d, %d events: %s differs:\n got %+v\nwant %+v", step, s, len(got[s]), d, res, want)
				}
				alerts += len(want.Alerts)
			}
			t.Logf("%d hits, %d misses, %d students held", memo.Hits, memo.Misses, memo.Len())
			if alerts == 0 {
				t.Error("no alert: the streams do not exercise the alert policy")
			}
			if tt.maxBytes > 1<<20 && memo.Hits < 10*memo.Misses {
				t.Errorf("%d hits for %d misses: the memo does not resume", memo.Hits, memo.Misses)
			}
		})
	}
}
