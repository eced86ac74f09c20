package pipeline_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/pipeline"
)

// thirdSink gives up on every third student (S00000, S00003, ...) and
// keeps that to dead letters of its own, as the webhook sink does.
type thirdSink struct{}

func (thirdSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "third", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (thirdSink) Validate(context.Context, protocol.Config) error { return nil }
func (thirdSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return &thirdWriter{}, nil
}

type thirdWriter struct{ dead, seen int64 }

func (w *thirdWriter) Write(_ context.Context, rec arrow.RecordBatch) error {
	ids := rec.Column(rec.Schema().FieldIndices("student_id")[0]).(*array.String)
	for range ids.Len() {
		if w.seen%3 == 0 {
			w.dead++
		}
		w.seen++
	}
	return nil
}
func (w *thirdWriter) Close(context.Context) error { return nil }
func (w *thirdWriter) Abort(context.Context) error { return nil }
func (w *thirdWriter) DeadLettered() int64         { return w.dead }

// TestSinkDeadLettersCounted: rows a sink dead-letters itself count as
// its stage's dead letters in the run summary.
func TestSinkDeadLettersCounted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := setup(t, 2500, absenceRule(t), "connector = \"third\"\n")
	plan := prepare(t, cfg, mem, map[string]protocol.Connector{"third": thirdSink{}})
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sum.Stage("out")
	if st.RowsIn != 2500 || st.DeadLettered != 834 {
		t.Errorf("sink stage: %d rows in, %d dead-lettered; want 2500 and 834 (one in three)", st.RowsIn, st.DeadLettered)
	}
	if sum.DeadLettered() != 834 {
		t.Errorf("summary: %d dead-lettered, want 834", sum.DeadLettered())
	}
}
