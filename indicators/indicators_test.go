package indicators

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func day(t *testing.T, s string) int32 {
	t.Helper()
	d, err := ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// truant has unjustified absences every school day of two weeks of
// January after a quiet autumn, then none.
func truant(t *testing.T) []Event {
	var ev []Event
	for d := day(t, "2025-09-01"); d < day(t, "2025-12-19"); d += 7 {
		ev = append(ev, Event{Kind: Absence, Day: d, Justified: true}) // a justified Monday a week
	}
	for d := day(t, "2026-01-05"); d < day(t, "2026-01-17"); d++ {
		if w := weekday(d); w < 5 {
			ev = append(ev, Event{Kind: Absence, Day: d}, Event{Kind: Absence, Day: d})
		}
	}
	return ev
}

func TestEvaluateAlertsAndHysteresis(t *testing.T) {
	c := DefaultConfig()
	res := c.Evaluate("S1", truant(t))
	if len(res.Alerts) == 0 || res.FirstAlert < day(t, "2026-01-05") || res.FirstAlert > day(t, "2026-01-17") {
		t.Fatalf("alerts %+v, first %s: want an alert in the two weeks of absences", res.Alerts, FormatDay(res.FirstAlert))
	}
	seen := map[string]bool{}
	for _, a := range res.Alerts {
		if a.Closed < 0 {
			t.Errorf("alert %+v still open in July after months without absences", a)
		}
		if a.ID != AlertID("S1", a.Code, a.Opened) {
			t.Errorf("alert id %s is not the hash of student, code and day", a.ID)
		}
		key := a.Code + FormatDay(a.Opened)
		if seen[key] {
			t.Errorf("two alerts for %s", key)
		}
		seen[key] = true
	}
	if res.Level != "ok" || res.Risk != 0 {
		t.Errorf("level %s risk %v in July, want ok 0", res.Level, res.Risk)
	}
	// Causality: the report of 2026-01-16 gives the same first alert and
	// a reason about absences.
	c.AsOf = day(t, "2026-01-16")
	mid := c.Evaluate("S1", truant(t))
	if mid.FirstAlert != res.FirstAlert || mid.Level != "alert" || !strings.Contains(mid.Reason, "unjustified") {
		t.Errorf("as of 2026-01-16: first %d level %s reason %q; full run first %d", mid.FirstAlert, mid.Level, mid.Reason, res.FirstAlert)
	}
	// Deterministic: a rerun (events in another order) gives the same ids.
	ev := truant(t)
	for i, j := 0, len(ev)-1; i < j; i, j = i+1, j-1 {
		ev[i], ev[j] = ev[j], ev[i]
	}
	c.AsOf = -1
	again := c.Evaluate("S1", ev)
	if len(again.Alerts) != len(res.Alerts) || again.Alerts[0].ID != res.Alerts[0].ID {
		t.Errorf("rerun alerts %+v, want %+v", again.Alerts, res.Alerts)
	}
}

func TestEvaluateMarksFall(t *testing.T) {
	c := DefaultConfig()
	var ev []Event
	for _, s := range []string{"maths", "francais", "anglais"} {
		ev = append(ev, Event{Kind: Mark, Term: 0, Subject: s, Mark: 12}, Event{Kind: Mark, Term: 1, Subject: s, Mark: 5})
	}
	ev = append(ev, Event{Kind: Mark, Term: 1, Subject: "svt", Mark: math.NaN()})
	c.AsOf = day(t, "2026-03-20")
	res := c.Evaluate("S2", ev)
	if !strings.Contains(res.Reason, "12.0 → 5.0") || !strings.Contains(strings.Join(res.Codes, ";"), "MARK_FALL") {
		t.Errorf("codes %v reason %q: want MARK_FALL 12.0 → 5.0", res.Codes, res.Reason)
	}
	c.AsOf = day(t, "2026-03-14") // before T2's marks are known
	if res := c.Evaluate("S2", ev); res.Risk != 0 {
		t.Errorf("risk %v before the term's marks are known", res.Risk)
	}
}

func TestParams(t *testing.T) {
	c := DefaultConfig()
	for _, bad := range []struct {
		name string
		v    any
	}{{"no_school", "2025-13-01"}, {"half_days_week", "2,2,1"}, {"term_ends", "x"}, {"nope", 1.0}} {
		if err := c.Set(bad.name, bad.v); err == nil {
			t.Errorf("Set(%s, %v): no error", bad.name, bad.v)
		}
	}
	c = DefaultConfig()
	c.ClearBelow, c.RaiseAt = 0.6, 0.5
	if err := c.check(); err == nil {
		t.Error("clear_below above raise_at accepted")
	}
	if !strings.Contains(ParamsJSON(Params), `"raise_at"`) {
		t.Error("ParamsJSON lacks raise_at")
	}
	r, codes, _ := DefaultConfig().Score(Snapshot{Averages: []float64{12, 4}, AbsentRate: math.NaN()})
	if r <= 0 || len(codes) == 0 {
		t.Errorf("snapshot 12 → 4: risk %v codes %v", r, codes)
	}
}

// TestRaiseDaysAndStreak: raise_days delays an alert until the risk has
// held; ABS_STREAK, off by default, fires on weeks in a row of unjustified
// absences.
func TestRaiseDaysAndStreak(t *testing.T) {
	c := DefaultConfig()
	base := c.Evaluate("S1", truant(t))
	c.RaiseDays = 3
	held := c.Evaluate("S1", truant(t))
	if base.FirstAlert < 0 || held.FirstAlert < base.FirstAlert+2 {
		t.Errorf("first alert %s with raise_days 3, %s with 1: want 2 days later or more",
			FormatDay(held.FirstAlert), FormatDay(base.FirstAlert))
	}
	c = DefaultConfig()
	for k := range c.Weights {
		c.Weights[k] = 0
	}
	c.Weights[AbsStreak], c.StreakWeeks, c.RaiseAt = 1, 2, 0.5
	c.AsOf = day(t, "2026-01-16")
	res := c.Evaluate("S1", truant(t))
	if len(res.Alerts) == 0 || res.Alerts[0].Code != "ABS_STREAK" || !strings.Contains(res.Reason, "weeks in a row") {
		t.Errorf("streak: alerts %+v, reason %q", res.Alerts, res.Reason)
	}
}

// TestAsOfLatest: as_of = "latest" scores each timeline as of its own
// newest event day, which is what an explicit as_of of that day gives.
func TestAsOfLatest(t *testing.T) {
	c := DefaultConfig()
	if err := c.Set("as_of", "latest"); err != nil {
		t.Fatal(err)
	}
	ev := truant(t)
	differs := 0
	for _, upTo := range []string{"2025-11-20", "2026-01-16", "2026-03-02"} {
		last := day(t, upTo)
		var prefix []Event
		newest := int32(-1)
		for _, e := range ev {
			if e.Kind != Mark && e.Day <= last {
				prefix = append(prefix, e)
				newest = max(newest, e.Day)
			}
		}
		c.AsOf = AsOfLatest
		got := c.Evaluate("S1", slices.Clone(prefix))
		c.AsOf = newest
		want := c.Evaluate("S1", slices.Clone(prefix))
		c.AsOf = -1
		atEnd := c.Evaluate("S1", slices.Clone(prefix))
		if got.Risk != want.Risk || got.Level != want.Level || got.Reason != want.Reason || len(got.Alerts) != len(want.Alerts) {
			t.Errorf("up to %s: latest gives %v %s %q, as_of %s gives %v %s %q", upTo, got.Risk, got.Level, got.Reason, FormatDay(newest), want.Risk, want.Level, want.Reason)
		}
		if got.Risk != atEnd.Risk || got.Reason != atEnd.Reason {
			differs++
		}
	}
	if differs == 0 {
		t.Error("as_of latest never differs from the default (the last term end): the test shows nothing")
	}
}

// TestEvaluateIsBitForBit: the same timeline gives the same risk to the
// last bit, call after call (a term average summed in map order did not).
func TestEvaluateIsBitForBit(t *testing.T) {
	c := DefaultConfig()
	var ev []Event
	subjects := []string{"maths", "francais", "anglais", "svt", "physique", "histoire_geo", "eps", "arts", "techno", "musique"}
	for i, s := range subjects {
		ev = append(ev, Event{Kind: Mark, Term: 0, Subject: s, Mark: 11.1 + float64(i)*0.37}, Event{Kind: Mark, Term: 1, Subject: s, Mark: 3.3 + float64(i)*0.71})
	}
	c.AsOf = day(t, "2026-03-20")
	first := c.Evaluate("S9", slices.Clone(ev))
	for range 200 {
		if got := c.Evaluate("S9", slices.Clone(ev)); got.Risk != first.Risk || got.Reason != first.Reason {
			t.Fatalf("risk %v (%q), then %v (%q)", first.Risk, first.Reason, got.Risk, got.Reason)
		}
	}
}

// TestAbsMonths: unjustified absences in two calendar months running raise
// ABS_MONTHS; the same count inside one month does not, nor does it for a
// student who already had such months most of the time; use_corrections 0
// keeps the reason as first recorded.
func TestAbsMonths(t *testing.T) {
	unj := func(days ...string) []Event {
		var ev []Event
		for _, s := range days {
			ev = append(ev, Event{Kind: Absence, Day: day(t, s)}, Event{Kind: Absence, Day: day(t, s)})
		}
		return ev
	}
	c := DefaultConfig()
	for k := range c.Weights {
		c.Weights[k] = 0
	}
	c.Weights[AbsMonths], c.MonthsMin, c.MonthMinHalfDays = 1, 2, 3
	c.AsOf = day(t, "2026-02-20")
	quiet := []Event{{Kind: Absence, Day: day(t, "2025-09-08"), Justified: true}}
	tests := []struct {
		name string
		ev   []Event
		want bool
	}{
		{"two months running", append(unj("2026-01-26", "2026-01-28", "2026-02-03", "2026-02-05"), quiet...), true},
		{"one month", append(unj("2026-02-02", "2026-02-03", "2026-02-05", "2026-02-06"), quiet...), false},
		{"usual for the student", append(unj("2025-09-15", "2025-09-17", "2025-10-06", "2025-10-08", "2025-11-03", "2025-11-05",
			"2025-12-01", "2025-12-03", "2026-01-26", "2026-01-28", "2026-02-03", "2026-02-05"), quiet...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.Evaluate("S1", slices.Clone(tt.ev))
			got := slices.Contains(res.Codes, "ABS_MONTHS")
			if got != tt.want {
				t.Errorf("ABS_MONTHS %v, want %v (codes %v, reason %q)", got, tt.want, res.Codes, res.Reason)
			}
			if got && !strings.Contains(res.Reason, "2 months running") {
				t.Errorf("reason %q", res.Reason)
			}
		})
	}
	// A correction recorded before the report day justifies a half-day
	// unless use_corrections is 0.
	ev := append(unj("2026-01-26", "2026-01-28", "2026-02-03"), quiet...)
	ev = append(ev, Event{Kind: Absence, Day: day(t, "2026-02-05"), CorrectedDay: day(t, "2026-02-10")},
		Event{Kind: Absence, Day: day(t, "2026-02-05"), CorrectedDay: day(t, "2026-02-10")})
	if res := c.Evaluate("S1", slices.Clone(ev)); slices.Contains(res.Codes, "ABS_MONTHS") {
		t.Errorf("corrected half-days counted: %v", res.Codes)
	}
	c.UseCorrections = false
	if res := c.Evaluate("S1", slices.Clone(ev)); !slices.Contains(res.Codes, "ABS_MONTHS") {
		t.Errorf("use_corrections 0: codes %v, want ABS_MONTHS", res.Codes)
	}
}

// TestAbsDrift: unjustified absences that go on and grow month after
// month raise ABS_DRIFT; one month's episode of the same size does not, and
// the posterior of a day does not depend on later events.
func TestAbsDrift(t *testing.T) {
	c := DefaultConfig()
	for k := range c.Weights {
		c.Weights[k] = 0
	}
	c.Weights[AbsDrift], c.DriftMin, c.RaiseAt, c.ClearBelow = 1, 0.7, 0.7, 0.35
	c.AsOf = day(t, "2026-03-27")
	quiet := []Event{{Kind: Absence, Day: day(t, "2025-09-08"), Justified: true}}
	// A drift from January: one half-day a week, then two, then three...
	var drifter []Event
	for w, d := 0, day(t, "2026-01-05"); d <= day(t, "2026-03-27"); w, d = w+1, d+7 {
		for k := 0; k <= min(w/2, 4); k++ {
			drifter = append(drifter, Event{Kind: Absence, Day: d + int32(k%4)})
		}
	}
	drifter = append(drifter, quiet...)
	episode := append([]Event{}, quiet...)
	for _, s := range []string{"2026-03-02", "2026-03-03", "2026-03-05", "2026-03-09", "2026-03-10"} {
		episode = append(episode, Event{Kind: Absence, Day: day(t, s)})
	}
	tests := []struct {
		name string
		ev   []Event
		want bool
	}{
		{"drift", drifter, true},
		{"one month's episode", episode, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.Evaluate("S1", slices.Clone(tt.ev))
			got := slices.Contains(res.Codes, "ABS_DRIFT")
			if got != tt.want || (len(res.Alerts) > 0) != tt.want {
				t.Fatalf("ABS_DRIFT %v, alerts %v, want %v (risk %.3f, reason %q)", got, res.Alerts, tt.want, res.Risk, res.Reason)
			}
			if got && (res.Risk < 0.7 || !strings.Contains(res.Reason, "this month")) {
				t.Errorf("risk %.3f reason %q", res.Risk, res.Reason)
			}
		})
	}
	// The reason names the evidence and the period, in the language of lang.
	for _, tt := range []struct{ lang, want string }{
		{"en", " unjustified half-days over 30 days (usually 2.9), 20 this month"},
		{"fr", " demi-journées d'absence non justifiée en 30 jours (habituellement 2,9), 20 ce mois-ci"},
	} {
		if err := c.Set("lang", tt.lang); err != nil {
			t.Fatal(err)
		}
		if res := c.Evaluate("S1", slices.Clone(drifter)); !strings.Contains(res.Reason, tt.want) {
			t.Errorf("lang %s: reason %q, want it to contain %q", tt.lang, res.Reason, tt.want)
		}
	}
	if err := c.Set("lang", "de"); err == nil {
		t.Error("lang de accepted")
	}
	// Causality: the first alert of the drift is the same when the report
	// day is that day.
	full := c.Evaluate("S1", slices.Clone(drifter))
	c.AsOf = full.FirstAlert
	cut := c.Evaluate("S1", slices.Clone(drifter))
	if cut.FirstAlert != full.FirstAlert || cut.Risk < c.RaiseAt {
		t.Errorf("first alert %s as of it, %s as of March; risk %.3f", FormatDay(cut.FirstAlert), FormatDay(full.FirstAlert), cut.Risk)
	}
}

// TestChanceOf: calib_points is interpolated linearly and clamped at its
// ends; without it calib_a, calib_b map the logit; bad points are refused.
func TestChanceOf(t *testing.T) {
	c := DefaultConfig()
	if err := c.Set("calib_points", "0.1:0.01,0.5:0.2,0.9:0.8"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ risk, want float64 }{{0, 0.01}, {0.1, 0.01}, {0.3, 0.105}, {0.7, 0.5}, {1, 0.8}}
	for _, tt := range tests {
		if got := c.ChanceOf(tt.risk); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("ChanceOf(%v) = %v, want %v", tt.risk, got, tt.want)
		}
	}
	if err := c.Set("calib_points", ""); err != nil {
		t.Fatal(err)
	}
	c.CalibA, c.CalibB = 0, 1
	if got := c.ChanceOf(0.3); math.Abs(got-0.3) > 1e-9 {
		t.Errorf("identity logistic map: %v, want 0.3", got)
	}
	for _, bad := range []string{"0.5:0.1,0.4:0.2", "x:1"} {
		if err := c.Set("calib_points", bad); err == nil {
			t.Errorf("calib_points %q accepted", bad)
		}
	}
}
