package indicators

import "testing"

// BenchmarkEvaluate40 is the native cost of scoring one timeline of 40
// events over 180 days, as of its last day: what the early-warning rule
// does per event with emit = "per_row" (docs/design/streaming.md, figure 2).
//
//	go test ./indicators -run '^$' -bench Evaluate40
func BenchmarkEvaluate40(b *testing.B) {
	c := DefaultConfig()
	c.AsOf = AsOfLatest
	start, err := ParseDay("2025-09-01")
	if err != nil {
		b.Fatal(err)
	}
	var ev []Event
	for i := range 40 {
		k := Activity
		if i%5 == 0 {
			k = Absence
		}
		ev = append(ev, Event{Kind: k, Day: start + int32(i*180/40)})
	}
	ev = append(ev, Event{Kind: Mark, Term: 0, Subject: "maths", Mark: 9})
	buf := make([]Event, len(ev))
	for b.Loop() {
		copy(buf, ev)
		c.Evaluate("S1", buf)
	}
}
