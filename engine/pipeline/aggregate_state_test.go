package pipeline

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
)

// feedAggregate folds rows into st in batches as a continuous run does,
// closing windows on the watermark after each batch, and at the end when
// final; it returns the rows emitted, as text.
func feedAggregate(t *testing.T, st *aggregateStage, mem memory.Allocator, rows []evalRow, final bool) []string {
	t.Helper()
	var out []string
	collect := func(watermark int64) {
		for _, rec := range st.close(watermark) {
			for i := range int(rec.NumRows()) {
				var f []string
				for c, fd := range rec.Schema().Fields() {
					f = append(f, fd.Name+"="+rec.Column(c).ValueStr(i))
				}
				out = append(out, strings.Join(f, " "))
			}
			rec.Release()
		}
	}
	for lo := 0; lo < len(rows); lo += 100 {
		rec := evalBatch(mem, rows[lo:min(lo+100, len(rows))])
		dead, err := st.add(rec)
		rec.Release()
		if err != nil || len(dead) > 0 {
			t.Fatalf("add: %v, %d dead letters", err, len(dead))
		}
		collect(st.maxEvent - int64(st.cfg.AllowedLateness/time.Second))
	}
	if final {
		collect(math.MaxInt64)
	}
	return out
}

// TestAggregateSnapshotRestore: a stage restored from the snapshot of
// another, taken halfway, emits with the second half of the input exactly
// what one stage emits over the whole input; a stage that starts empty
// instead (what a restart did before the open windows were saved) does
// not.
func TestAggregateSnapshotRestore(t *testing.T) {
	rows := genEvalRows(13, 6000, 8, 60, 20*time.Hour)
	for _, tc := range []struct {
		name string
		cfg  func() *config.Aggregate
	}{
		{"weekly, suppressed, quantiles", func() *config.Aggregate { return weeklyConfig(11) }},
		{"sliding week", func() *config.Aggregate {
			c := weeklyConfig(0)
			c.Slide, c.SlideLength = config.SlideDay, 24*time.Hour
			return c
		}},
		{"cumulative", func() *config.Aggregate {
			c := weeklyConfig(11)
			c.Cumulative = true
			return c
		}},
		{"duration", func() *config.Aggregate {
			c := weeklyConfig(0)
			c.Window, c.WindowLength = "6h", 6*time.Hour
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			stage := func() *aggregateStage {
				cfg := tc.cfg()
				cfg.Name, cfg.Input = "agg", "in"
				st, err := newAggregateStage(cfg, "aggregate[0]", evalSchema, mem)
				if err != nil {
					t.Fatal(err)
				}
				st.continuous = true
				return st
			}
			want := feedAggregate(t, stage(), mem, rows, true)
			half := len(rows) / 2
			first := stage()
			got := feedAggregate(t, first, mem, rows[:half], false)
			if len(first.windows) == 0 {
				t.Fatal("no window open at the cut: the test proves nothing")
			}
			snap, err := first.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			second := stage()
			if err := second.restoreSnapshot(snap); err != nil {
				t.Fatal(err)
			}
			got = append(got, feedAggregate(t, second, mem, rows[half:], true)...)
			if !slices.Equal(got, want) {
				t.Errorf("restored run: %d rows, want %d; first difference %s", len(got), len(want), firstDifference(got, want))
			}
			lost := append(feedAggregate(t, stage(), mem, rows[:half], false), feedAggregate(t, stage(), mem, rows[half:], true)...)
			if slices.Equal(lost, want) {
				t.Error("a run without the restored windows gives the same rows: the test proves nothing")
			}
		})
	}
}

func firstDifference(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q, want %q", i, a[i], b[i])
		}
	}
	return "at the end"
}

func TestAggregateRestoreRefusesAnotherDefinition(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := weeklyConfig(0)
	cfg.Name, cfg.Input = "agg", "in"
	a, err := newAggregateStage(cfg, "aggregate[0]", evalSchema, mem)
	if err != nil {
		t.Fatal(err)
	}
	feedAggregate(t, a, mem, genEvalRows(1, 500, 3, 10, time.Hour), false)
	snap, err := a.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	other := weeklyConfig(0)
	other.Name, other.Input, other.Window = "agg", "in", config.WindowDay
	b, err := newAggregateStage(other, "aggregate[0]", evalSchema, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.restoreSnapshot(snap); err == nil || !strings.Contains(err.Error(), "changed since the checkpoint") {
		t.Errorf("restore into a day window: %v", err)
	}
	if err := b.restoreSnapshot([]byte("not gob")); err == nil {
		t.Error("restore of garbage succeeded")
	}
}
