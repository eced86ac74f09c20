package pipeline

import (
	"context"
	"errors"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/stream"
)

// sourceStage runs a source connector.
type sourceStage struct {
	src protocol.Source
	cfg protocol.Config
	mem memory.Allocator
}

func (s *sourceStage) Run(ctx context.Context, st *stream.Stage, out *stream.Outbox) error {
	return s.src.Read(ctx, s.cfg, s.mem, &emitter{st: st, out: out})
}

// emitter adapts a stage's outbox to protocol.Emitter.
type emitter struct {
	st  *stream.Stage
	out *stream.Outbox
}

func (e *emitter) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	rec.Retain() // Emit borrows; Send takes ownership of one reference
	return e.out.Send(ctx, rec)
}

func (e *emitter) DeadLetter(ctx context.Context, rows []protocol.DeadLetter) error {
	out := make([]stream.DeadLetter, len(rows))
	for i, r := range rows {
		out[i] = stream.DeadLetter{Origin: r.Origin, Line: r.Line, Column: r.Column, Reason: r.Reason, Raw: r.Raw}
	}
	return e.st.DeadLetter(out...)
}

// sinkStage runs a sink connector.
type sinkStage struct {
	snk    protocol.Sink
	cfg    protocol.Config
	schema *arrow.Schema
}

func (s *sinkStage) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox) (err error) {
	w, err := s.snk.Open(ctx, s.cfg, s.schema)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// The run failed: leave nothing half-written. Abort gets its own
			// context since ctx is likely cancelled already.
			w.Abort(context.WithoutCancel(ctx))
		}
	}()
	var rows int64
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		err = w.Write(ctx, rec)
		rows += rec.NumRows()
		rec.Release()
		if err != nil {
			return err
		}
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	st.Stats.RowsOut.Add(rows)
	return nil
}
