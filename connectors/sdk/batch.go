package sdk

// Batcher, Out and Cell are the batching helpers of sources that build
// their own batches, the built-in ones included: a Batcher turns parsed records into Arrow batches
// for sources that parse text formats cell by cell (OneRoster, Pronote) and
// holds a record's cells until the whole record has parsed, so a bad record
// leaves the builders untouched and goes to the dead letters; Out orders
// dead letters and batches for any source that builds its own batches.

import (
	"context"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Cell is one output value, held until the whole record has parsed so that
// a bad record leaves the builders untouched.
type Cell struct {
	Null bool
	S    string
	F    float64
	I    int64 // int32, int64, date32 days, timestamp microseconds
	B    bool
}

// Str is a string cell, null when s is empty.
func Str(s string) Cell {
	if s == "" {
		return Cell{Null: true}
	}
	return Cell{S: s}
}

// deadLetterBatch is the most dead letters held before they are sent.
const deadLetterBatch = 1000

// Out sends a source's dead letters and batches in the order the protocol
// needs: dead letters are held (up to a thousand) and always sent before
// the batch whose position covers them, so a resumed read neither loses
// nor repeats them. A batch with no rows is emitted only to carry the
// position past dead letters sent since the last batch.
type Out struct {
	out      protocol.Emitter
	dead     []protocol.DeadLetter
	deadSent bool // dead letters sent since the last emitted batch
}

// NewOut returns an Out emitting to out.
func NewOut(out protocol.Emitter) *Out { return &Out{out: out} }

// DeadLetter holds d, sending the held dead letters when there are many.
func (o *Out) DeadLetter(ctx context.Context, d protocol.DeadLetter) error {
	o.dead = append(o.dead, d)
	if len(o.dead) >= deadLetterBatch {
		return o.sendDead(ctx)
	}
	return nil
}

// SendDead sends the dead letters held now, without a batch (at the end
// of a read that emits none after them).
func (o *Out) SendDead(ctx context.Context) error { return o.sendDead(ctx) }

func (o *Out) sendDead(ctx context.Context) error {
	if len(o.dead) == 0 {
		return nil
	}
	err := o.out.DeadLetter(ctx, o.dead)
	o.dead = nil
	o.deadSent = true
	return err
}

// Emit sends the held dead letters, then the rows in b (rows of them) as
// one batch at position pos (any JSON-encodable value).
func (o *Out) Emit(ctx context.Context, b *array.RecordBuilder, rows int, pos any) error {
	if err := o.sendDead(ctx); err != nil {
		return err
	}
	if rows == 0 && !o.deadSent {
		return nil
	}
	p, err := protocol.NewPosition(pos)
	if err != nil {
		return err
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	o.deadSent = false
	return o.out.Emit(ctx, rec, p)
}

// EmitBatch sends the held dead letters, then rec as one batch at position
// pos (any JSON-encodable value), for a source that builds its batches
// elsewhere (in several goroutines, say). The caller keeps its reference
// to rec and releases it.
func (o *Out) EmitBatch(ctx context.Context, rec arrow.RecordBatch, pos any) error {
	if err := o.sendDead(ctx); err != nil {
		return err
	}
	if rec.NumRows() == 0 && !o.deadSent {
		return nil
	}
	p, err := protocol.NewPosition(pos)
	if err != nil {
		return err
	}
	o.deadSent = false
	return o.out.Emit(ctx, rec, p)
}

// Batcher turns records into batches of at most max rows, each emitted with
// the position after its last record, and sends dead letters before the
// batch whose position covers them.
//
// An unbounded source also bounds how long a row waits: with SetMaxDelay,
// Due fires max_delay after the first row (or dead letter) of a pending
// batch, and the source's read loop selects on it and calls Flush:
//
//	bt.SetMaxDelay(cfg.MaxDelay)
//	for {
//		select {
//		case rec := <-records:
//			err = bt.Record(ctx, rowsOf(rec), posAfter(rec))
//		case <-bt.Due():
//			err = bt.Flush(ctx)
//		case <-ctx.Done():
//			return ctx.Err()
//		}
//	}
type Batcher struct {
	*Out
	b        *array.RecordBuilder
	max      int
	rows     int
	lastPos  any
	maxDelay time.Duration
	first    time.Time   // when the pending batch got its first row or dead letter
	pending  bool        // rows or dead letters held since the last Flush
	timer    *time.Timer // Due's timer, for the pending batch; nil when none
}

// NewBatcher returns a Batcher emitting to out batches of at most max rows
// (protocol.DefaultBatchRows when max <= 0), starting at position from (what a batch covering only
// dead letters reports before any record). Release it when done.
func NewBatcher(mem memory.Allocator, schema *arrow.Schema, max int, out protocol.Emitter, from any) *Batcher {
	if max <= 0 {
		max = protocol.DefaultBatchRows
	}
	return &Batcher{Out: NewOut(out), b: array.NewRecordBuilder(mem, schema), max: max, lastPos: from}
}

// Release frees the builders.
func (bt *Batcher) Release() {
	bt.stopTimer()
	bt.b.Release()
}

// SetMaxDelay sets how long the first row of a pending batch waits before
// Due fires: d, protocol.DefaultMaxDelay when d is 0, never when d < 0 (a
// source that reads a finite input and flushes at its end).
func (bt *Batcher) SetMaxDelay(d time.Duration) {
	if d == 0 {
		d = protocol.DefaultMaxDelay
	}
	bt.maxDelay = d
}

// Rows returns the number of rows held for the next batch.
func (bt *Batcher) Rows() int { return bt.rows }

// Deadline returns when the pending batch is due: max_delay after its
// first row or dead letter. ok is false when nothing is pending or no max
// delay was set. A source whose reads take a context (a Kafka poll) bounds
// them with it.
func (bt *Batcher) Deadline() (due time.Time, ok bool) {
	if !bt.pending || bt.maxDelay <= 0 {
		return time.Time{}, false
	}
	return bt.first.Add(bt.maxDelay), true
}

// Due returns a channel that receives when the pending batch is due (see
// Deadline); nil, which blocks forever in a select, when nothing is
// pending or no max delay was set. Call it anew on each turn of the read
// loop: a Flush ends the timer of the batch it emitted.
func (bt *Batcher) Due() <-chan time.Time {
	due, ok := bt.Deadline()
	if !ok {
		return nil
	}
	if bt.timer == nil {
		bt.timer = time.NewTimer(time.Until(due))
	}
	return bt.timer.C
}

// touch marks the batch pending, starting its delay with its first row or
// dead letter.
func (bt *Batcher) touch() {
	if !bt.pending {
		bt.pending = true
		bt.first = time.Now()
	}
}

func (bt *Batcher) stopTimer() {
	if bt.timer != nil {
		bt.timer.Stop()
		bt.timer = nil
	}
}

// Record adds the rows of one input record (a record may give several rows,
// never split across batches); pos is the position after it.
func (bt *Batcher) Record(ctx context.Context, rows [][]Cell, pos any) error {
	if bt.rows > 0 && bt.rows+len(rows) > bt.max {
		if err := bt.Flush(ctx); err != nil {
			return err
		}
	}
	if len(rows) > 0 {
		bt.touch()
	}
	for _, r := range rows {
		for i, c := range r {
			Append(bt.b.Field(i), c)
		}
		bt.rows++
	}
	bt.lastPos = pos
	if bt.rows >= bt.max {
		return bt.Flush(ctx)
	}
	return nil
}

// DeadLetter records a dead letter for the record that ends at pos.
func (bt *Batcher) DeadLetter(ctx context.Context, d protocol.DeadLetter, pos any) error {
	bt.lastPos = pos
	bt.touch()
	return bt.Out.DeadLetter(ctx, d)
}

// Skipped records a record that gave nothing (a blank line).
func (bt *Batcher) Skipped(pos any) { bt.lastPos = pos }

// Flush emits the rows held with the last position (see Out.Emit) and
// ends the pending batch's delay.
func (bt *Batcher) Flush(ctx context.Context) error {
	rows := bt.rows
	bt.rows = 0
	bt.pending = false
	bt.stopTimer()
	return bt.Out.Emit(ctx, bt.b, rows, bt.lastPos)
}

// Append appends c to b, which was made for the cell's column type.
func Append(b array.Builder, c Cell) {
	if c.Null {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(c.S)
	case *array.Float64Builder:
		b.Append(c.F)
	case *array.Date32Builder:
		b.Append(arrow.Date32(c.I))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(c.I))
	case *array.BooleanBuilder:
		b.Append(c.B)
	case *array.Int32Builder:
		b.Append(int32(c.I))
	case *array.Int64Builder:
		b.Append(c.I)
	default:
		panic("sdk: no appender for " + b.Type().String())
	}
}
