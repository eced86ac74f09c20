package oneroster

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// cell is one output value, held until the whole record has parsed so that
// a bad record leaves the builders untouched.
type cell struct {
	null bool
	s    string
	f    float64
	i    int64 // date32 days, timestamp microseconds
	b    bool
}

func str(s string) cell {
	if s == "" {
		return cell{null: true}
	}
	return cell{s: s}
}

// deadLetterBatch is the most dead letters held before they are sent.
const deadLetterBatch = 1000

// batcher turns records into batches of at most max rows, each emitted with
// the position after its last record, and sends dead letters before the
// batch whose position covers them.
type batcher struct {
	out      protocol.Emitter
	b        *array.RecordBuilder
	max      int
	rows     int
	lastPos  any
	dead     []protocol.DeadLetter
	deadSent bool // dead letters sent since the last emitted batch
}

func newBatcher(mem memory.Allocator, schema *arrow.Schema, max int, out protocol.Emitter) *batcher {
	if max <= 0 {
		max = 8192
	}
	return &batcher{out: out, b: array.NewRecordBuilder(mem, schema), max: max}
}

func (bt *batcher) release() { bt.b.Release() }

// record adds the rows of one input record (a record may give several rows,
// never split across batches); pos is the position after it.
func (bt *batcher) record(ctx context.Context, rows [][]cell, pos any) error {
	if bt.rows > 0 && bt.rows+len(rows) > bt.max {
		if err := bt.flush(ctx); err != nil {
			return err
		}
	}
	for _, r := range rows {
		for i, c := range r {
			appendCell(bt.b.Field(i), c)
		}
		bt.rows++
	}
	bt.lastPos = pos
	if bt.rows >= bt.max {
		return bt.flush(ctx)
	}
	return nil
}

// deadLetter records a dead letter for the record that ends at pos.
func (bt *batcher) deadLetter(ctx context.Context, d protocol.DeadLetter, pos any) error {
	bt.dead = append(bt.dead, d)
	bt.lastPos = pos
	if len(bt.dead) >= deadLetterBatch {
		return bt.sendDead(ctx)
	}
	return nil
}

// skipped records a record that gave nothing (a blank line).
func (bt *batcher) skipped(pos any) { bt.lastPos = pos }

func (bt *batcher) sendDead(ctx context.Context) error {
	if len(bt.dead) == 0 {
		return nil
	}
	err := bt.out.DeadLetter(ctx, bt.dead)
	bt.dead = nil
	bt.deadSent = true
	return err
}

// flush emits the rows held with the last position. A batch with no rows is
// emitted only to cover dead letters sent since the last batch.
func (bt *batcher) flush(ctx context.Context) error {
	if err := bt.sendDead(ctx); err != nil {
		return err
	}
	if bt.rows == 0 && !bt.deadSent {
		return nil
	}
	p, err := protocol.NewPosition(bt.lastPos)
	if err != nil {
		return err
	}
	rec := bt.b.NewRecordBatch()
	defer rec.Release()
	bt.rows, bt.deadSent = 0, false
	return bt.out.Emit(ctx, rec, p)
}

func appendCell(b array.Builder, c cell) {
	if c.null {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(c.s)
	case *array.Float64Builder:
		b.Append(c.f)
	case *array.Date32Builder:
		b.Append(arrow.Date32(c.i))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(c.i))
	case *array.BooleanBuilder:
		b.Append(c.b)
	case *array.Int32Builder:
		b.Append(int32(c.i))
	default:
		panic("oneroster: no appender for " + b.Type().String())
	}
}
