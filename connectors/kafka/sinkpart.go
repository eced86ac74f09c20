package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// initAttempts bounds the attempts at initializing a partition's producer
// (about 5 s of backoff in all).
const initAttempts = 10

// partitionWriter is the sink's writer with partition_column: one
// transactional producer per input partition (see partitions.go).
type partitionWriter struct {
	conn     []kgo.Opt
	topic    string
	cpTopic  string
	pipeline string
	key      int
	part     int // the partition column
	off      int // the input offset column, -1: none (nothing dropped)
	cp       *cpReader
	headers  []kgo.RecordHeader
	flushes  int64
	timeout  time.Duration // the transaction timeout
	log      *slog.Logger

	parts map[int32]*partProducer
	// own is, per input partition, the offset in the checkpoint topic of
	// the last record this stage committed in this run (see checkOwner).
	own map[int32]int64
}

// partProducer is one input partition's producer.
type partProducer struct {
	p     int32
	cl    *kgo.Client
	inTxn bool // a transaction is open
	// opened is when the open transaction began, at its first row.
	opened time.Time
	rows   int   // rows produced into it
	rec    int64 // the offset of the last record committed, -1: none
	// floor is the offset of p's last committed record when this
	// producer started (after fencing every earlier one), -1: none. With
	// offset_column, rows of p below it are dropped (the previous owner
	// committed them), and no record below it is written.
	floor int64
	// checked: checkOwner passed, before this producer's first commit.
	checked bool

	perr firstErr // first produce error of the open transaction
}

var (
	_ protocol.Writer       = (*partitionWriter)(nil)
	_ protocol.Flusher      = (*partitionWriter)(nil)
	_ protocol.Checkpointer = (*partitionWriter)(nil)
)

// producer returns p's producer, started (InitProducerID) when missing,
// with a transaction open.
func (w *partitionWriter) producer(ctx context.Context, p int32) (*partProducer, error) {
	pp := w.parts[p]
	if pp == nil {
		id := partitionTxnID(w.pipeline, p)
		cl, err := kgo.NewClient(append(w.conn, kgo.DefaultProduceTopic(w.topic), kgo.TransactionalID(id))...)
		if err != nil {
			return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
		}
		// Retried for a while: right after a broker restart or a
		// coordinator move the first attempts can fail.
		for attempt := 1; ; attempt++ {
			_, _, err = cl.ProducerID(ctx)
			if err == nil || attempt == initAttempts || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("init transactional producer %q: %w", id, protocol.WithKind(err, protocol.ErrTemporary))
		}
		pp = &partProducer{p: p, cl: cl, rec: -1, floor: -1}
		if w.off >= 0 {
			// Read after this producer's InitProducerID: no earlier
			// owner commits anything more.
			if err := w.readFloor(ctx, pp); err != nil {
				cl.Close()
				return nil, err
			}
		}
		w.parts[p] = pp
	}
	if !pp.inTxn {
		if err := pp.cl.BeginTransaction(); err != nil {
			return nil, fmt.Errorf("partition %d: begin transaction: %w", p, err)
		}
		pp.inTxn, pp.opened = true, time.Now()
	}
	return pp, nil
}

// catchUp reads the checkpoint topic up to its last stable offset, with
// a reader made at the first call.
func (w *partitionWriter) catchUp(ctx context.Context) error {
	if w.cp == nil {
		cp, err := newCPReader(w.conn, w.cpTopic, w.pipeline)
		if err != nil {
			return err
		}
		w.cp = cp
	}
	return w.cp.catchUp(ctx)
}

// readFloor sets pp's floor: p's last committed checkpoint record.
func (w *partitionWriter) readFloor(ctx context.Context, pp *partProducer) error {
	if err := w.catchUp(ctx); err != nil {
		return err
	}
	if next, ok := w.cp.last[pp.p]; ok {
		pp.floor, pp.rec = next, next
		w.log.Info("partition restored by replay: rows below its checkpoint record are dropped", "partition", pp.p, "below", next)
	}
	return nil
}

// Write produces each row with the producer of its input partition.
func (w *partitionWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	fields := rec.Schema().Fields()
	enc := newRowEncoder(rec, w.key, w.headers)
	pc := rec.Column(w.part)
	for i := range int(rec.NumRows()) {
		p64, err := intAt(pc, i)
		if err != nil {
			return fmt.Errorf("row %d: partition column %q: %w", i, fields[w.part].Name, err)
		}
		p := int32(p64)
		pp, err := w.producer(ctx, p)
		if err != nil {
			return err
		}
		if w.off >= 0 && pp.floor >= 0 {
			o, err := intAt(rec.Column(w.off), i)
			if err != nil {
				return fmt.Errorf("row %d: offset column %q: %w", i, fields[w.off].Name, err)
			}
			if o < pp.floor {
				continue // committed by an earlier owner, identical
			}
		}
		if err := pp.perr.get(); err != nil {
			return fmt.Errorf("partition %d: produce: %w", p, explainTimeout(err, pp.opened, w.timeout))
		}
		r, err := enc.record(i)
		if err != nil {
			return err
		}
		pp.rows++
		pp.cl.Produce(ctx, r, pp.perr.promise)
	}
	return nil
}

// intAt returns row i of an int32 or int64 column.
func intAt(c arrow.Array, i int) (int64, error) {
	if c.IsNull(i) {
		return 0, errors.New("null")
	}
	switch c := c.(type) {
	case *array.Int32:
		return int64(c.Value(i)), nil
	case *array.Int64:
		return c.Value(i), nil
	}
	return 0, fmt.Errorf("want an integer column, got %s", c.DataType())
}

// inputOffsets returns the next offset of each input partition in the
// checkpoint's source positions (the kafka source's), with its topic, and
// the source's since offsets (sourcePosition.Since).
func inputOffsets(cp protocol.Checkpoint) (map[int32]partitionCheckpoint, map[int32]int64, error) {
	var data struct {
		Sources map[string]json.RawMessage `json:"sources"`
	}
	if err := json.Unmarshal(cp.Data, &data); err != nil {
		return nil, nil, fmt.Errorf("decode checkpoint %d: %w", cp.ID, err)
	}
	out, since := map[int32]partitionCheckpoint{}, map[int32]int64{}
	for _, raw := range data.Sources {
		var pos sourcePosition
		if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &pos) != nil {
			continue // not a kafka source
		}
		for t, ps := range pos.Offsets {
			for p, next := range ps {
				out[p] = partitionCheckpoint{Topic: t, Partition: p, Offset: next}
			}
		}
		maps.Copy(since, pos.Since)
	}
	return out, since, nil
}

// isFenced reports whether err says a newer producer of the same
// transactional id exists: the partition has another owner.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// FlushCheckpoint commits, for every input partition this writer has a
// producer for, its rows and its checkpoint record (the partition's next
// offset in cp) in the partition's transaction. A producer fenced with no
// rows pending means the partition moved to another instance after its
// rows committed: it is closed. A producer fenced with rows pending fails
// the run (its rows are aborted; the restarted run redoes them).
func (w *partitionWriter) FlushCheckpoint(ctx context.Context, cp protocol.Checkpoint) (protocol.Position, error) {
	at, since, err := inputOffsets(cp)
	if err != nil {
		return nil, err
	}
	var commit []*partProducer
	// The checkpoint records produced, by producer: their Offset is set
	// once acknowledged, and becomes w.own's when they commit.
	records := map[*partProducer]*kgo.Record{}
	for p, pp := range w.parts {
		pos, ok := at[p]
		if ok && pos.Offset < pp.floor {
			pos.Offset = pp.floor // replaying: the record never goes back
			at[p] = pos
		}
		switch {
		case !ok:
			// The source no longer reads p: everything it handed over
			// of p was committed before it let p go.
			if pp.rows > 0 {
				return nil, fmt.Errorf("partition %d: %d rows written after the source dropped the partition", p, pp.rows)
			}
			w.closeProducer(ctx, pp)
			continue
		case pp.rows == 0 && pos.Offset == pp.rec:
			if pp.inTxn {
				commit = append(commit, pp) // nothing produced: ends at once
			}
			continue
		}
		if _, err := w.producer(ctx, p); err != nil {
			return nil, err
		}
		if err := w.checkOwner(ctx, pp, since); err != nil {
			return nil, err
		}
		v, err := json.Marshal(struct {
			ID   uint64              `json:"id"`
			Data partitionCheckpoint `json:"data"`
		}{cp.ID, pos})
		if err != nil {
			return nil, fmt.Errorf("encode checkpoint: %w", err)
		}
		records[pp] = &kgo.Record{Topic: w.cpTopic, Key: []byte(partitionTxnID(w.pipeline, p)), Value: v}
		pp.cl.Produce(ctx, records[pp], pp.perr.promise)
		commit = append(commit, pp)
	}
	errs := make([]error, len(commit))
	var wg sync.WaitGroup
	for i, pp := range commit {
		wg.Go(func() { errs[i] = pp.commit(ctx, w.timeout) })
	}
	wg.Wait()
	for i, pp := range commit {
		switch err := errs[i]; {
		case err == nil:
			if pos, ok := at[pp.p]; ok {
				pp.rec = pos.Offset
			}
			if r, ok := records[pp]; ok {
				w.own[pp.p] = r.Offset
			}
			pp.rows = 0
		case isFenced(err) && pp.rows == 0:
			w.log.Info("partition moved to another instance", "partition", pp.p)
			w.closeProducer(ctx, pp)
		default:
			return nil, fmt.Errorf("partition %d: %w", pp.p, err)
		}
	}
	w.flushes++
	return protocol.NewPosition(sinkPosition{Flushes: w.flushes, Own: maps.Clone(w.own)})
}

// checkOwner refuses the first commit of pp's producer when another
// instance committed pp's partition after this one's source took it:
// since (from the source's position) is the offset of the checkpoint
// topic from which any record of the partition was written after that,
// and a record there that this stage did not write means another owner
// committed rows this instance would write again. This happens when rows
// read before the partition was lost (or let go as moved) reach the sink
// after the next owner committed: the new producer's InitProducerID fenced
// that owner, but the rows are not this instance's to commit. The error
// is not temporary: the run fails and restarts from the records. With
// offset_column the floor read when the producer started does the same
// job row by row; without a since (not a scale-out source) there is
// nothing to check.
func (w *partitionWriter) checkOwner(ctx context.Context, pp *partProducer, since map[int32]int64) error {
	if pp.checked || w.off >= 0 {
		return nil
	}
	from, ok := since[pp.p]
	if !ok {
		return nil
	}
	// Read after pp's InitProducerID: no other owner commits more.
	if err := w.catchUp(ctx); err != nil {
		return err
	}
	own, mine := w.own[pp.p]
	if at, ok := w.cp.at[pp.p]; ok && at >= from && (!mine || at != own) {
		return fmt.Errorf("partition %d: another instance committed it after this one took it (its checkpoint record at offset %d of %s, written since offset %d); this instance's rows of it are not committed, and the run restarts from the records",
			pp.p, at, w.cpTopic, from)
	}
	pp.checked = true
	return nil
}

// commit ends the open transaction: commit, or abort after a produce
// error; timeout is the transaction timeout, for the errors.
func (pp *partProducer) commit(ctx context.Context, timeout time.Duration) error {
	if !pp.inTxn {
		return nil
	}
	err := pp.cl.Flush(ctx)
	if err == nil {
		err = pp.perr.get()
	}
	how := kgo.TryCommit
	if err != nil {
		how = kgo.TryAbort
	}
	eerr := pp.cl.EndTransaction(ctx, how)
	pp.inTxn = false
	if err != nil {
		return fmt.Errorf("produce: %w", explainTimeout(err, pp.opened, timeout))
	}
	if eerr != nil {
		return fmt.Errorf("commit transaction: %w", protocol.WithKind(explainTimeout(eerr, pp.opened, timeout), protocol.ErrTemporary))
	}
	return nil
}

func (w *partitionWriter) closeProducer(ctx context.Context, pp *partProducer) {
	if pp.inTxn {
		pp.cl.AbortBufferedRecords(ctx)
		pp.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	pp.cl.Close()
	delete(w.parts, pp.p)
}

// Flush commits nothing: rows commit only with their partition's
// checkpoint record (a commit without it would make the next owner of the
// partition write them again).
func (w *partitionWriter) Flush(ctx context.Context) (protocol.Position, error) {
	return protocol.NewPosition(sinkPosition{Flushes: w.flushes})
}

// Close aborts what no checkpoint covered (the engine takes a last
// checkpoint before it closes a sink, so normally nothing) and closes
// the producers.
func (w *partitionWriter) Close(ctx context.Context) error {
	if w.cp != nil {
		w.cp.close()
		w.cp = nil
	}
	for _, pp := range w.parts {
		if pp.rows > 0 {
			w.log.Warn("rows without a checkpoint aborted at close", "partition", pp.p, "rows", pp.rows)
		}
		w.closeProducer(ctx, pp)
	}
	return nil
}

// Abort aborts every partition's open transaction.
func (w *partitionWriter) Abort(ctx context.Context) error { return w.Close(ctx) }
