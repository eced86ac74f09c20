package sdk

import (
	"context"
	"fmt"
	"strings"
	"testing"

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
