package transport_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// oddSink keeps the even values and dead-letters the odd ones itself, as
// the webhook sink does with changes it gives up on.
type oddSink struct{}

func (oddSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "odd", Kind: protocol.KindSink, Version: "1", Doc: "test sink"}
}
func (oddSink) Validate(context.Context, protocol.Config) error { return nil }
func (oddSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return &oddWriter{}, nil
}

type oddWriter struct{ dead int64 }

func (w *oddWriter) Write(_ context.Context, rec arrow.RecordBatch) error {
	for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
		if v%2 == 1 {
			w.dead++
		}
	}
	return nil
}
func (w *oddWriter) Close(context.Context) error { return nil }
func (w *oddWriter) Abort(context.Context) error { return nil }
func (w *oddWriter) DeadLettered() int64         { return w.dead }

// A sink's count of the rows it dead-lettered itself reaches the host
// with its final acknowledgement.
func TestSinkDeadLetteredOverGRPC(t *testing.T) {
	c := connectGRPC(t, protocol.NewRegistry(seqSource{}, oddSink{}))
	src := source(t, c)
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	conn, err := c.Connector(ctx, "odd")
	if err != nil {
		t.Fatal(err)
	}
	w, err := conn.(protocol.Sink).Open(ctx, protocol.Config{Connector: "odd", Stage: "a"}, mem, seqSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 4, Options: map[string]any{"rows": int64(11)}}, mem, &sinkEmitter{ctx: ctx, w: w}); err != nil {
		t.Fatal(err)
	}
	dc, ok := w.(protocol.DeadLetterCounter)
	if !ok {
		t.Fatal("the remote writer does not count dead letters")
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dc.DeadLettered(); n != 5 {
		t.Errorf("DeadLettered after Close = %d, want 5 (the odd values of 0..10)", n)
	}
}
