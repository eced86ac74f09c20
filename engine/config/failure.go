package config

import (
	"time"
)

// Defaults of the failure handling keys (see docs/pipeline.md, "Failure
// handling").
const (
	// DefaultDeadLetterWindow is the number of most recent rows over which
	// a stage's share of dead letters is measured.
	DefaultDeadLetterWindow = 1000
	// DefaultDeadLetterMaxShare is the largest share of the window that
	// may be dead-lettered; past it the pipeline stops.
	DefaultDeadLetterMaxShare = 0.10
	// DefaultBisectMaxCalls bounds the rule calls spent on one failing
	// batch (its first call included).
	DefaultBisectMaxCalls = 4096
	// DefaultBisectMaxTime bounds the wall time spent on one failing
	// batch; a call that starts within it may still run for the rule's
	// time limit.
	DefaultBisectMaxTime = 10 * time.Second
	// DefaultStopTimeout is how long a graceful stop may take before the
	// run is cancelled.
	DefaultStopTimeout = 10 * time.Second
)

// Threshold is a dead letter threshold: when more than MaxShare of the
// last Window rows of a stage were dead-lettered, the pipeline stops.
// MaxShare 1 disables it.
type Threshold struct {
	Window   int
	MaxShare float64
}

// Bisect bounds the work spent finding the failing rows of one batch.
type Bisect struct {
	MaxCalls int
	MaxTime  time.Duration
}

// threshold reads dead_letter_window and dead_letter_max_share from the
// checked keys v of the table at path, over the inherited values.
func (c *checker) threshold(path string, v map[string]any, inherit Threshold) Threshold {
	t := inherit
	if n, ok := c.intIn(path, v, "dead_letter_window", 1, 1<<24, " rows"); ok {
		t.Window = n
	}
	if x, ok := number(v["dead_letter_max_share"]); ok {
		if !(x >= 0 && x <= 1) {
			c.fail(c.at(joinKey(path, "dead_letter_max_share")), joinKey(path, "dead_letter_max_share"),
				"must be a share between 0 and 1 (0.1 for 10%%), got %v", v["dead_letter_max_share"])
		}
		t.MaxShare = x
	}
	return t
}

// bisect reads bisect_max_calls and bisect_max_time from the checked keys
// v of the table at path, over the inherited values.
func (c *checker) bisect(path string, v map[string]any, inherit Bisect) Bisect {
	b := inherit
	if n, ok := c.intIn(path, v, "bisect_max_calls", 1, 1<<20, ""); ok {
		b.MaxCalls = n
	}
	if d, ok := c.duration(path, v, "bisect_max_time"); ok {
		b.MaxTime = d
	}
	return b
}

// intIn reads an integer key that must lie between lo and hi; unit
// follows the bounds in the error (" rows", or "" for a count).
func (c *checker) intIn(path string, v map[string]any, key string, lo, hi int64, unit string) (int, bool) {
	n, ok := v[key].(int64)
	if !ok {
		return 0, false
	}
	if n < lo || n > hi {
		c.fail(c.at(joinKey(path, key)), joinKey(path, key), "must be between %d and %d%s, got %d", lo, hi, unit, n)
	}
	return int(n), true
}

// duration reads a positive duration key.
func (c *checker) duration(path string, v map[string]any, key string) (time.Duration, bool) {
	s, ok := v[key].(string)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.fail(c.at(joinKey(path, key)), joinKey(path, key), "expected a duration such as \"500ms\" or \"10s\", got %q", s)
	case d <= 0:
		c.fail(c.at(joinKey(path, key)), joinKey(path, key), "must be positive, got %q", s)
	}
	return d, true
}

// number returns a TOML integer or float as a float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
