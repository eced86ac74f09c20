package replay_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/replay"
)

const academy = "testdata/academy" // vigie gen --students 4 --seed 7 --format csv,xapi

func TestConformance(t *testing.T) {
	c := conformance.SourceCase{
		Options:   map[string]any{"dir": academy, "speed": "max"},
		BatchRows: 16,
		Bad: []conformance.BadCase{
			{Options: map[string]any{"dir": academy, "speed": "fast"}, Want: `expected a positive duration such as "24h", or "max"`},
			{Options: map[string]any{"dir": "testdata"}, Want: "not a vigie gen academy"},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, replay.Source{}, c) })
	t.Run("plugin", func(t *testing.T) {
		conformance.TestSource(t, conformance.ThroughPlugin(t, replay.Source{}).(protocol.Source), c)
	})
}

// collect keeps every batch's rows and position.
type collect struct {
	rows  []string
	times []int64
	pos   []protocol.Position
	sizes []int
	dead  int
	sent  []time.Time // per row, when its batch was emitted (clock)
	clock func() time.Time
}

func (c *collect) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	ts := rec.Column(10).(*array.Timestamp)
	for i := range int(rec.NumRows()) {
		c.rows = append(c.rows, conformance.Row(rec, i))
		c.times = append(c.times, int64(ts.Value(i)))
		if c.clock != nil {
			c.sent = append(c.sent, c.clock())
		}
	}
	c.pos = append(c.pos, pos)
	c.sizes = append(c.sizes, int(rec.NumRows()))
	return nil
}

func (c *collect) DeadLetter(_ context.Context, d []protocol.DeadLetter) error {
	c.dead += len(d)
	return nil
}

func read(t *testing.T, src replay.Source, opts map[string]any, batch int) *collect {
	t.Helper()
	return readClock(t, src, opts, batch, nil)
}

func readClock(t *testing.T, src replay.Source, opts map[string]any, batch int, clock func() time.Time) *collect {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	checked, err := src.Spec().Check(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{clock: clock}
	if err := src.Read(context.Background(), protocol.Config{BatchRows: batch, Options: checked}, mem, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEventTimeOrder: every event of the academy comes once, in event-time
// order, with offsets 0, 1, 2...; marks carry their term's end as date.
func TestEventTimeOrder(t *testing.T) {
	c := read(t, replay.Source{}, map[string]any{"dir": academy, "speed": "max"}, 1000)
	count := func(path string) int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), "\n")
	}
	want := count(filepath.Join(academy, "absences.csv")) - 1 + count(filepath.Join(academy, "grades.csv")) - 1 + count(filepath.Join(academy, "xapi", "statements.jsonl"))
	if len(c.rows) != want || c.dead != 0 {
		t.Fatalf("%d rows and %d dead letters, want %d rows (every absence, mark and statement)", len(c.rows), c.dead, want)
	}
	if !slices.IsSorted(c.times) {
		t.Error("event times are not in order")
	}
	marks := 0
	for i, r := range c.rows {
		f := strings.Split(r, "|")
		if f[len(f)-1] != strconv.Itoa(i) {
			t.Fatalf("row %d has offset %s", i, f[len(f)-1])
		}
		if f[7] == "T1" { // period
			marks++
			if f[1] != "2025-11-30" {
				t.Errorf("T1 mark dated %s, want the term's end 2025-11-30: %s", f[1], r)
			}
			if at := time.UnixMicro(c.times[i]).UTC(); at.Format(time.DateTime) != "2025-11-30 17:00:00" {
				t.Errorf("T1 mark at %s, want 18:00 Paris time (17:00 UTC)", at)
			}
		}
	}
	if marks == 0 {
		t.Error("no T1 mark")
	}
}

// fakeClock advances only when the source sleeps.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

// TestPacing: at speed "24h" a day of event time takes a second, gaps of
// more than an hour are skipped, and what is due is sent before each wait.
func TestPacing(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	src := replay.Source{Now: clock.Now, Sleep: clock.Sleep}
	c := readClock(t, src, map[string]any{"dir": academy, "speed": "24h"}, 1000, clock.Now)
	var total time.Duration
	for _, s := range clock.sleeps {
		total += s
	}
	// The wall time is the event time played (each gap capped at an hour)
	// divided by 86400.
	var played time.Duration
	for i := 1; i < len(c.times); i++ {
		played += min(time.Duration(c.times[i]-c.times[i-1])*time.Microsecond, replay.MaxGap)
	}
	want := played / 86400
	if d := total - want; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("slept %s, want %s (event time played %s at a day per second)", total, want, played)
	}
	span := time.Duration(c.times[len(c.times)-1]-c.times[0]) * time.Microsecond
	if total > span/86400/4 {
		t.Errorf("slept %s for a span of %s: nights and holidays were waited for", total, span)
	}
	// No row waits in a batch more than max_delay after it was due, and
	// rows due close together share a batch.
	start := time.Unix(1e9, 0)
	var due time.Duration
	for i := range c.times {
		if i > 0 {
			due += min(time.Duration(c.times[i]-c.times[i-1])*time.Microsecond, replay.MaxGap) / 86400
		}
		if late := c.sent[i].Sub(start.Add(due)); late > protocol.DefaultMaxDelay+time.Millisecond {
			t.Fatalf("row %d sent %s after it was due, max_delay is %s", i, late, protocol.DefaultMaxDelay)
		}
	}
	if len(c.sizes) > len(clock.sleeps)/4 {
		t.Errorf("%d batches for %d waits: rows are not batched up to max_delay", len(c.sizes), len(clock.sleeps))
	}
	if fast := read(t, replay.Source{Now: clock.Now, Sleep: clock.Sleep}, map[string]any{"dir": academy, "speed": "max"}, 1000); !slices.Equal(fast.rows, c.rows) {
		t.Error("paced and max speed give different rows")
	}
}

// TestLoop: with loop the year comes again 52 weeks later, offsets going
// on, until the read is stopped; a resume inside the second loop goes on
// from there.
func TestLoop(t *testing.T) {
	one := read(t, replay.Source{}, map[string]any{"dir": academy, "speed": "max"}, 1000)
	n := len(one.rows)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := replay.Source{}
	checked, err := src.Spec().Check(map[string]any{"dir": academy, "speed": "max", "loop": true})
	if err != nil {
		t.Fatal(err)
	}
	c := &stopAfter{n: 2*n + 10, cancel: cancel}
	err = src.Read(ctx, protocol.Config{BatchRows: 7, Options: checked}, mem, c)
	if err == nil {
		t.Fatal("a looping read ended by itself")
	}
	if len(c.rows) < 2*n+10 {
		t.Fatalf("%d rows before the stop, want at least %d", len(c.rows), 2*n+10)
	}
	shift := int64(364 * 24 * time.Hour / time.Microsecond)
	for i := range n {
		if c.times[n+i] != one.times[i]+shift {
			t.Fatalf("row %d of the second loop at %d, want %d (52 weeks after the first)", i, c.times[n+i], one.times[i]+shift)
		}
	}
	if !slices.IsSorted(c.times) {
		t.Error("event times go back between loops")
	}
	// Resume from a batch inside the second loop.
	b := len(c.pos) * 2 / 3
	at := 0
	for _, s := range c.sizes[:b+1] {
		at += s
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	rest := &stopAfter{n: 20, cancel: cancel2}
	_ = src.Read(ctx2, protocol.Config{BatchRows: 7, Options: checked, Resume: c.pos[b]}, mem, rest)
	if !slices.Equal(rest.rows[:20], c.rows[at:at+20]) {
		t.Errorf("resume from batch %d (%s):\n got %q\nwant %q", b, c.pos[b], rest.rows[:20], c.rows[at:at+20])
	}
}

// stopAfter collects rows and cancels the read once it has n.
type stopAfter struct {
	collect
	n      int
	cancel func()
}

func (s *stopAfter) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	if err := s.collect.Emit(ctx, rec, pos); err != nil {
		return err
	}
	if len(s.rows) >= s.n {
		s.cancel()
		return context.Canceled
	}
	return nil
}
