package sdk

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// log records what reaches the emitter, in order.
type log struct{ events []string }

func (l *log) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	l.events = append(l.events, fmt.Sprintf("batch %d rows @%s", rec.NumRows(), pos))
	return nil
}

func (l *log) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	l.events = append(l.events, fmt.Sprintf("%d dead", len(rows)))
	return nil
}

func TestBatcherOrder(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	out := &log{}
	ctx := context.Background()
	bt := NewBatcher(mem, schema, 2, out, 0)
	defer bt.Release()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(bt.Record(ctx, [][]Cell{{Str("a"), {F: 1}}}, 1))
	must(bt.DeadLetter(ctx, protocol.DeadLetter{Reason: "bad"}, 2))
	must(bt.Record(ctx, [][]Cell{{Str(""), {Null: true}}}, 3)) // fills the batch: flush
	must(bt.DeadLetter(ctx, protocol.DeadLetter{Reason: "worse"}, 4))
	must(bt.Flush(ctx)) // only a dead letter since: an empty batch carries the position
	must(bt.Flush(ctx)) // nothing at all: nothing sent
	got := strings.Join(out.events, "; ")
	want := "1 dead; batch 2 rows @3; 1 dead; batch 0 rows @4"
	if got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}

// TestBatcherDue pins the max_delay timer: Due is nil while nothing is
// pending, fires once a row (or a dead letter) has waited max_delay, and a
// Flush, explicit or at max rows, ends the pending batch's timer.
func TestBatcherDue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	ctx := context.Background()
	const delay = 20 * time.Millisecond
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// waitDue fails unless Due fires (generous deadline: arrival, not speed).
	waitDue := func(bt *Batcher) {
		t.Helper()
		due := bt.Due()
		if due == nil {
			t.Fatal("Due is nil with a batch pending")
		}
		select {
		case <-due:
		case <-time.After(30 * time.Second):
			t.Fatal("Due did not fire")
		}
	}
	notPending := func(bt *Batcher) {
		t.Helper()
		if bt.Due() != nil {
			t.Error("Due is not nil with nothing pending")
		}
		if _, ok := bt.Deadline(); ok {
			t.Error("Deadline ok with nothing pending")
		}
	}

	for _, tc := range []struct {
		name string
		add  func(bt *Batcher) error
		want string
	}{
		{"row", func(bt *Batcher) error { return bt.Record(ctx, [][]Cell{{Str("a")}}, 1) }, "batch 1 rows @1"},
		{"dead letter only", func(bt *Batcher) error { return bt.DeadLetter(ctx, protocol.DeadLetter{Reason: "bad"}, 1) }, "1 dead; batch 0 rows @1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &log{}
			bt := NewBatcher(mem, schema, 10, out, 0)
			defer bt.Release()
			bt.SetMaxDelay(delay)
			notPending(bt)
			before := time.Now()
			must(tc.add(bt))
			due, ok := bt.Deadline()
			if !ok || due.Before(before.Add(delay)) || due.After(time.Now().Add(delay)) {
				t.Errorf("Deadline = %v, %v; want max_delay after the first row", due, ok)
			}
			waitDue(bt)
			must(bt.Flush(ctx))
			notPending(bt)
			if got := strings.Join(out.events, "; "); got != tc.want {
				t.Errorf("events %q, want %q", got, tc.want)
			}
			// The next batch gets a timer of its own.
			flushed := time.Now()
			must(bt.Record(ctx, [][]Cell{{Str("b")}}, 2))
			if due, _ := bt.Deadline(); due.Before(flushed.Add(delay)) {
				t.Errorf("second batch due at %v, before max_delay after its first row", due)
			}
			waitDue(bt)
			must(bt.Flush(ctx))
		})
	}

	t.Run("full batch flushes and stops the timer", func(t *testing.T) {
		bt := NewBatcher(mem, schema, 2, &log{}, 0)
		defer bt.Release()
		bt.SetMaxDelay(time.Hour)
		must(bt.Record(ctx, [][]Cell{{Str("a")}}, 1))
		if bt.Due() == nil {
			t.Fatal("Due is nil with a row pending")
		}
		must(bt.Record(ctx, [][]Cell{{Str("b")}}, 2))
		notPending(bt)
	})
	t.Run("negative max delay: never due", func(t *testing.T) {
		bt := NewBatcher(mem, schema, 2, &log{}, 0)
		defer bt.Release()
		bt.SetMaxDelay(-1)
		must(bt.Record(ctx, [][]Cell{{Str("a")}}, 1))
		notPending(bt)
		must(bt.Flush(ctx))
	})
	t.Run("zero max delay is the default", func(t *testing.T) {
		bt := NewBatcher(mem, schema, 2, &log{}, 0)
		defer bt.Release()
		bt.SetMaxDelay(0)
		before := time.Now()
		must(bt.Record(ctx, [][]Cell{{Str("a")}}, 1))
		if due, ok := bt.Deadline(); !ok || due.Before(before.Add(protocol.DefaultMaxDelay)) {
			t.Errorf("Deadline = %v, %v; want DefaultMaxDelay after the row", due, ok)
		}
		must(bt.Flush(ctx))
	})
}
