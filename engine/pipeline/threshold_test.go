package pipeline

import (
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/config"
)

func TestDeadLetterWindow(t *testing.T) {
	// Each step is "ok N" or "dead N"; trips is the step at which the
	// window must trip (-1: never, len(steps): at the final check).
	type step struct {
		dead bool
		n    int64
	}
	ok := func(n int64) step { return step{false, n} }
	dead := func(n int64) step { return step{true, n} }
	for _, tc := range []struct {
		name  string
		cfg   config.Threshold
		steps []step
		trips int
	}{
		{"under the share", config.Threshold{Window: 10, MaxShare: 0.2}, []step{ok(8), dead(2), ok(100), dead(2)}, -1},
		{"past the share once full", config.Threshold{Window: 10, MaxShare: 0.2}, []step{ok(7), dead(3)}, 1},
		{"old dead letters leave the window", config.Threshold{Window: 10, MaxShare: 0.2}, []step{dead(2), ok(8), dead(2)}, -1},
		{"a burst inside a long run", config.Threshold{Window: 10, MaxShare: 0.2}, []step{ok(1000), dead(3)}, 1},
		{"every row of a short run", config.Threshold{Window: 1000, MaxShare: 0.1}, []step{dead(5)}, 1},
		{"a short run under the share", config.Threshold{Window: 1000, MaxShare: 0.1}, []step{ok(95), dead(5)}, -1},
		{"share 1 never trips", config.Threshold{Window: 10, MaxShare: 1}, []step{dead(100)}, -1},
		{"share 0 trips on the first dead letter of a full window", config.Threshold{Window: 10, MaxShare: 0}, []step{ok(10), dead(1)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newDeadLetterWindow(tc.cfg)
			got := -1
			for i, s := range tc.steps {
				tripped := false
				if s.dead {
					tripped = w.deadLettered(s.n)
				} else {
					w.ok(s.n)
				}
				if tripped && got < 0 {
					got = i
				}
			}
			if got < 0 && w.final() {
				got = len(tc.steps)
			}
			if got != tc.trips {
				t.Fatalf("tripped at step %d, want %d", got, tc.trips)
			}
			if got >= 0 && !strings.Contains(w.err("rule r", "boom").Error(), "past the dead letter threshold") {
				t.Errorf("err = %v", w.err("rule r", "boom"))
			}
		})
	}
}

func TestDeadLetterWindowOutcome(t *testing.T) {
	w := newDeadLetterWindow(config.Threshold{Window: 4, MaxShare: 0.5})
	// Rows 0..9 with dead letters at 0, 1 and 9: never more than 2 of
	// the last 4 until row 9; the window then holds rows 6-9 (1 dead).
	if w.outcome(10, []int64{0, 1, 9}) {
		t.Fatal("tripped")
	}
	if w.dead != 1 || w.filled != 4 {
		t.Fatalf("window holds %d dead of %d rows, want 1 of 4", w.dead, w.filled)
	}
	if !w.outcome(3, []int64{0, 1}) { // rows 6-9 then 0,1 dead: 3 of the last 4
		t.Fatal("did not trip")
	}
}
