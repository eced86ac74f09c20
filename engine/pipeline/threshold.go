package pipeline

import (
	"fmt"

	"github.com/vigie-edu/vigie/engine/config"
)

// deadLetterWindow is a stage's dead letter threshold (Conduit's DLQ
// window): it remembers whether each of the last cfg.Window rows was
// dead-lettered and trips when more than cfg.MaxShare of them were. Until
// the window has filled, the share is only checked when the input ends
// (final), over the rows seen: a run that dead-lettered every one of its
// rows fails however few they were. Not safe for concurrent use.
type deadLetterWindow struct {
	cfg     config.Threshold
	ring    []bool // true: dead-lettered
	next    int    // where the next row goes
	filled  int    // rows in the ring
	dead    int    // dead-lettered rows in the ring
	tripped bool
}

func newDeadLetterWindow(cfg config.Threshold) *deadLetterWindow {
	if cfg.Window <= 0 {
		cfg = config.Threshold{Window: config.DefaultDeadLetterWindow, MaxShare: config.DefaultDeadLetterMaxShare}
	}
	return &deadLetterWindow{cfg: cfg, ring: make([]bool, cfg.Window)}
}

// disabled reports whether the threshold can never trip.
func (w *deadLetterWindow) disabled() bool { return w.cfg.MaxShare >= 1 }

// ok records n rows that went through.
func (w *deadLetterWindow) ok(n int64) {
	if w.disabled() || w.tripped || n <= 0 {
		return
	}
	if n >= int64(len(w.ring)) {
		clear(w.ring)
		w.next, w.filled, w.dead = 0, len(w.ring), 0
		return
	}
	for range n {
		w.push(false)
	}
}

// deadLettered records n dead-lettered rows and reports whether the
// window, full, is now past the threshold.
func (w *deadLetterWindow) deadLettered(n int64) bool {
	if w.disabled() {
		return false
	}
	for range n {
		if w.tripped {
			break
		}
		w.push(true)
		if w.filled == len(w.ring) && w.over() {
			w.tripped = true
		}
	}
	return w.tripped
}

// outcome records a batch of rows whose dead-lettered rows are at the
// given increasing indexes, and reports whether the threshold tripped.
func (w *deadLetterWindow) outcome(rows int64, deadAt []int64) bool {
	prev := int64(0)
	for _, at := range deadAt {
		w.ok(at - prev)
		w.deadLettered(1)
		prev = at + 1
	}
	w.ok(rows - prev)
	return w.tripped
}

// final reports whether the rows seen, when they never filled the window,
// are past the threshold (a full window was checked as it went).
func (w *deadLetterWindow) final() bool {
	if !w.disabled() && w.filled > 0 && w.over() {
		w.tripped = true
	}
	return w.tripped
}

func (w *deadLetterWindow) over() bool {
	return float64(w.dead) > w.cfg.MaxShare*float64(w.filled)
}

func (w *deadLetterWindow) push(dead bool) {
	if w.filled == len(w.ring) {
		if w.ring[w.next] {
			w.dead--
		}
	} else {
		w.filled++
	}
	w.ring[w.next] = dead
	if dead {
		w.dead++
	}
	w.next = (w.next + 1) % len(w.ring)
}

// err describes the threshold that tripped; who names the stage's
// producer of dead letters (the rule and its module hash, the source).
func (w *deadLetterWindow) err(who, lastReason string) error {
	return fmt.Errorf("%s: %d of the last %d rows dead-lettered (%.1f%%), past the dead letter threshold of %g%% (dead_letter_max_share = %g over dead_letter_window = %d); last reason: %s",
		who, w.dead, w.filled, 100*float64(w.dead)/float64(w.filled), 100*w.cfg.MaxShare, w.cfg.MaxShare, w.cfg.Window, lastReason)
}
