package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/privacy"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/arrowmem"
)

// Recovery from connector failures. A connector call that fails with
// protocol.ErrTemporary (a plugin process that died or stopped answering
// fails that way, and pluginhost.Host starts a new one on the next call) is
// retried with exponential backoff: a source from the position of the last
// batch delivered downstream, a sink from its last flush with the batches
// written since replayed.
const (
	// maxAttempts bounds the retries of one stage over a run.
	maxAttempts = 10
	// firstBackoff doubles at each retry, up to maxBackoff.
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = 5 * time.Second
	// A sink is flushed every flushBatches batches or defaultFlushBytes
	// bytes, whichever comes first: what a crash makes the engine replay.
	defaultFlushBytes = 32 << 20
	flushBatches      = 64
	// defaultReplayBytes bounds the batches a sink stage keeps for replay
	// beyond its last flush. A sink that cannot flush (parquet: durable
	// only when complete) beyond that cannot be recovered after a crash.
	defaultReplayBytes = 512 << 20
)

// retry waits before attempt (1-based) and reports whether err may be
// retried.
func retry(ctx context.Context, st *stream.Stage, err error, attempt int) bool {
	if !errors.Is(err, protocol.ErrTemporary) || ctx.Err() != nil || attempt > maxAttempts {
		return false
	}
	wait := min(maxBackoff, firstBackoff<<(attempt-1))
	st.Log.Warn("connector failed, retrying", "stage", st.Name, "attempt", attempt, "backoff", wait, "err", err)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sourceStage runs a source connector.
type sourceStage struct {
	src       protocol.Source
	cfg       protocol.Config
	mem       memory.Allocator
	threshold config.Threshold
	// pseudo replaces the identifier columns of every batch before it
	// leaves the stage ([privacy]); nil when there are none. lookup, when
	// set, is complete once the stage ends.
	pseudo *privacy.Pseudonymiser
	lookup *privacy.Lookup

	// gate is held by each Emit and by a checkpoint, which so holds the
	// source between two Emits; e is the run's emitter (under gate), ended
	// set once Run returned.
	gate  sync.Mutex
	e     *emitter
	ended atomic.Bool
}

// position returns the position after the last batch emitted (the resume
// position before any). The caller holds s.gate.
func (s *sourceStage) position() protocol.Position {
	if s.e == nil {
		return s.cfg.Resume
	}
	return s.e.pos
}

func (s *sourceStage) Run(ctx context.Context, st *stream.Stage, out *stream.Outbox) error {
	defer s.ended.Store(true)
	if s.lookup != nil {
		defer s.lookup.Done()
	}
	e := &emitter{st: st, out: out, pos: s.cfg.Resume, schema: s.cfg.Schema, window: newDeadLetterWindow(s.threshold), who: "source connector " + s.cfg.Connector, pseudo: s.pseudo, mem: s.mem, gate: &s.gate, hold: s.cfg.Checkpointed}
	s.gate.Lock()
	s.e = e
	s.gate.Unlock()
	for attempt := 1; ; attempt++ {
		cfg := s.cfg
		cfg.Resume = e.pos
		err := s.src.Read(ctx, cfg, s.mem, e)
		if err == nil {
			if err := e.writeHeld(); err != nil {
				return err
			}
			if e.window.final() {
				return e.window.err(e.who, e.lastReason)
			}
			return nil
		}
		if e.window.tripped {
			// Past the dead letter threshold: not a failure to retry, and
			// the error the connector returned only wraps that one.
			e.writeHeld() // best effort: the run fails
			return e.window.err(e.who, e.lastReason)
		}
		if e.unpositioned > 0 {
			e.writeHeld()
			return fmt.Errorf("%w (cannot resume: %d batches were delivered without a position)", err, e.unpositioned)
		}
		if !retry(ctx, st, err, attempt) {
			e.writeHeld() // best effort: the run fails with err
			return err
		}
		e.dropHeld() // the read from e.pos sends them again
	}
}

// emitter adapts a stage's outbox to protocol.Emitter and remembers the
// position of the last batch delivered.
type emitter struct {
	st  *stream.Stage
	out *stream.Outbox
	// pos is the position after the last batch delivered; unpositioned
	// counts the batches delivered since without a position.
	pos          protocol.Position
	unpositioned int
	// schema is the one the stage was prepared with: every batch must
	// have it, since the stages downstream were bound to it.
	schema *arrow.Schema
	// window is the source's dead letter threshold; who names the source
	// in its error.
	window     *deadLetterWindow
	who        string
	lastReason string
	// pseudo, when set, pseudonymises batches (with mem) and dead letters.
	pseudo *privacy.Pseudonymiser
	mem    memory.Allocator
	// gate is held while a batch is sent and the position updated (see
	// sourceStage.gate).
	gate *sync.Mutex
	// hold, in a run with checkpoints, keeps the dead letters the source
	// sends (held, under gate) until the batch whose position covers them
	// (the protocol sends them just before it) and writes them with it,
	// under gate: a checkpoint between the two would otherwise record the
	// dead letters without the position past them, and a restart from it
	// would dead-letter the rows again.
	hold bool
	held []stream.DeadLetter
}

// writeHeld writes the dead letters held (at the end of a read).
func (e *emitter) writeHeld() error {
	e.gate.Lock()
	defer e.gate.Unlock()
	held := e.held
	e.held = nil
	return e.st.DeadLetter(held...)
}

// dropHeld forgets the dead letters held: a read that failed before the
// batch that covers them, and that is retried from the position before
// them, sends them again.
func (e *emitter) dropHeld() {
	e.gate.Lock()
	defer e.gate.Unlock()
	e.held = nil
}

func (e *emitter) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	if e.schema != nil && !rec.Schema().Equal(e.schema) {
		return fmt.Errorf("source %q emitted a batch whose schema differs from the one it was prepared with (the input changed since, or the connector infers it differently in Read):\n got: %s\nwant: %s",
			e.st.Name, rec.Schema(), e.schema)
	}
	e.gate.Lock()
	defer e.gate.Unlock()
	// Emit borrows rec; transform returns a reference Send takes.
	rec, err := e.transform(rec)
	if err != nil {
		return fmt.Errorf("source %q: %w", e.st.Name, err)
	}
	n := rec.NumRows()
	if len(e.held) > 0 {
		held := e.held
		e.held = nil
		if err := e.st.DeadLetter(held...); err != nil {
			rec.Release()
			return err
		}
	}
	if err := e.out.Send(ctx, rec); err != nil {
		return err
	}
	e.window.ok(n)
	if pos != nil {
		e.pos, e.unpositioned = pos, 0
	} else {
		e.unpositioned++
	}
	return nil
}

func (e *emitter) DeadLetter(ctx context.Context, rows []protocol.DeadLetter) error {
	out := make([]stream.DeadLetter, len(rows))
	for i, r := range rows {
		r = e.scrub(r) // before anything (the reason in an error too) sees it
		out[i] = stream.DeadLetter{Origin: r.Origin, Line: r.Line, Column: r.Column, Reason: r.Reason, Raw: r.Raw}
	}
	if e.hold {
		e.gate.Lock()
		e.held = append(e.held, out...)
		e.gate.Unlock()
	} else if err := e.st.DeadLetter(out...); err != nil {
		return err
	}
	if len(rows) > 0 {
		e.lastReason = out[len(out)-1].Origin + ": " + out[len(out)-1].Reason
	}
	if e.window.deadLettered(int64(len(rows))) {
		return e.window.err(e.who, e.lastReason)
	}
	return nil
}

// sinkStage runs a sink connector.
type sinkStage struct {
	snk    protocol.Sink
	cfg    protocol.Config
	mem    memory.Allocator
	schema *arrow.Schema
	// flushBytes and replayBytes override defaultFlushBytes and
	// defaultReplayBytes when set (tests).
	flushBytes, replayBytes int64
	// flushDelay, in a continuous run (an unbounded source), flushes the
	// sink that long after the first batch written since its last flush,
	// whether more batches arrive or not: a transactional sink (Kafka)
	// then commits what arrived within about max_delay instead of after
	// flushBatches batches. 0 in a batch run, which flushes as before.
	flushDelay time.Duration
	// view keeps the declared columns and re-identifies ([privacy]); nil
	// writes the input as it is.
	view *sinkView
	// cp, in a run with checkpoints, is the coordinator: the sink then
	// flushes only at checkpoints (checkpointFlush, from the coordinator's
	// goroutine while this one waits for input, under mu) and takes a
	// last checkpoint when its input ends.
	cp *coordinator
	w  *sinkAttempt // under mu: the open writer, nil between attempts
	mu sync.Mutex
	// done is set once the sink closed its output, at position last.
	done atomic.Bool
	last protocol.Position
	// ended is set when Run returns, whether it closed its output or
	// failed: the coordinator stops waiting for the sink's writer then.
	ended atomic.Bool
}

// sinkAttempt is the writer of the current attempt and the run's state.
type sinkAttempt struct {
	w protocol.Writer
	r *sinkRun
}

func (s *sinkStage) closed() bool { return s.done.Load() }

// checkpointFlush makes what the sink wrote durable for a checkpoint:
// with cp, committing cp with it (the commit point). ok is false when the
// sink has no open writer (it is reopening after a failure): no
// checkpoint then. A sink that closed returns its last position.
func (s *sinkStage) checkpointFlush(ctx context.Context, cp *protocol.Checkpoint) (protocol.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done.Load() {
		return s.last, true, nil
	}
	if s.w == nil {
		return nil, false, nil
	}
	r := s.w.r
	if cp == nil {
		if err := s.flush(ctx, s.w.w, r); err != nil {
			return nil, false, err
		}
		return r.resume, true, nil
	}
	c, ok := s.w.w.(protocol.Checkpointer)
	if !ok {
		return nil, false, fmt.Errorf("connector %q declares checkpoints but its writer cannot record them", s.cfg.Connector)
	}
	r.unflushd, r.batches = 0, 0
	pos, err := c.FlushCheckpoint(ctx, *cp)
	if err != nil {
		return nil, false, err
	}
	r.resume = pos
	r.release()
	r.lost = false
	return pos, true, nil
}

// sinkRun is the state of a sink stage across the attempts of one run.
type sinkRun struct {
	resume   protocol.Position   // of the last flush that returned one
	replay   []arrow.RecordBatch // written since that flush
	size     int64               // bytes in replay
	lost     bool                // replay overflowed: a crash cannot be recovered
	noFlush  bool                // the writer cannot resume: stop asking it to flush
	rows     int64               // rows received
	unflushd int64               // bytes written since the last flush
	batches  int                 // batches written since the last flush
	first    time.Time           // when the first of them was written
}

func (r *sinkRun) release() {
	for _, rec := range r.replay {
		rec.Release()
	}
	r.replay, r.size = nil, 0
}

func (s *sinkStage) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox) error {
	defer s.ended.Store(true)
	r := &sinkRun{resume: s.cfg.Resume}
	defer r.release()
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, st, in, r)
		if err == nil {
			st.Stats.RowsOut.Add(r.rows)
			if s.view != nil && s.view.unresolved.Load() > 0 {
				st.Log.Warn("pseudonyms the lookup source does not know were written as they are", "stage", st.Name, "rows", s.view.unresolved.Load())
			}
			return nil
		}
		if r.lost && errors.Is(err, protocol.ErrTemporary) {
			return fmt.Errorf("%w (cannot recover: more than %d MiB written since the sink last made its output durable)", err, s.limit()>>20)
		}
		if !retry(ctx, st, err, attempt) {
			return err
		}
	}
}

func (s *sinkStage) limit() int64 {
	if s.replayBytes > 0 {
		return s.replayBytes
	}
	return defaultReplayBytes
}

// attempt opens the sink (from the last flush), replays what was written
// since, then writes the rest of the input and closes the sink.
func (s *sinkStage) attempt(ctx context.Context, st *stream.Stage, in *stream.Inbox, r *sinkRun) (err error) {
	cfg := s.cfg
	cfg.Resume = r.resume
	s.mu.Lock()
	locked := true
	lock := func() {
		if !locked {
			s.mu.Lock()
			locked = true
		}
	}
	unlock := func() {
		if locked {
			s.mu.Unlock()
			locked = false
		}
	}
	defer unlock()
	w, err := s.snk.Open(ctx, cfg, s.mem, s.schema)
	if err != nil {
		return err
	}
	if s.cp != nil {
		s.w = &sinkAttempt{w: w, r: r}
	}
	defer func() {
		lock()
		s.w = nil
		if err != nil {
			// Leave nothing half-written. Abort gets its own context since
			// ctx is likely cancelled already.
			w.Abort(context.WithoutCancel(ctx))
		}
		// Rows the connector dead-lettered itself (the webhook sink's
		// outbox) count as the stage's dead letters in the summary.
		if c, ok := w.(protocol.DeadLetterCounter); ok {
			st.Stats.DeadLettered.Add(c.DeadLettered())
		}
	}()
	for _, rec := range r.replay {
		if err := w.Write(ctx, rec); err != nil {
			return err
		}
	}
	flushBytes := s.flushBytes
	if flushBytes <= 0 {
		flushBytes = defaultFlushBytes
	}
	for {
		if s.cp != nil {
			unlock() // a checkpoint may flush while the sink waits
		}
		rec, err := s.recv(ctx, in, r)
		lock()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errDue) {
			if err := s.flush(ctx, w, r); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if s.view != nil {
			if rec, err = s.view.apply(ctx, s.mem, rec); err != nil {
				return err
			}
		}
		r.rows += rec.NumRows()
		size := arrowmem.BatchBytes(rec)
		if r.lost {
			err = w.Write(ctx, rec)
			rec.Release()
		} else {
			r.replay = append(r.replay, rec) // owns rec's reference now
			r.size += size
			err = w.Write(ctx, rec)
		}
		if err != nil {
			return err
		}
		r.unflushd += size
		if r.batches == 0 {
			r.first = time.Now()
		}
		if r.batches++; s.cp == nil && (r.unflushd >= flushBytes || r.batches >= flushBatches || s.due(r)) && !r.noFlush {
			if err := s.flush(ctx, w, r); err != nil {
				return err
			}
		}
		if !r.lost && r.size > s.limit() {
			st.Log.Warn("sink stage keeps no more batches for replay; a crash of its plugin will fail the run",
				"stage", st.Name, "limit_mib", s.limit()>>20)
			r.lost = true
			r.release()
		}
	}
	if s.cp != nil {
		// The input ended: the last checkpoint covers all of it.
		unlock()
		if err := s.cp.last(ctx, s); err != nil {
			return err
		}
		lock()
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	s.last = r.resume
	s.done.Store(true)
	return nil
}

// errDue is what recv returns when the sink should flush: flushDelay has
// passed since the first batch written since the last flush.
var errDue = errors.New("sink flush due")

// due reports whether a continuous run's sink must flush now.
func (s *sinkStage) due(r *sinkRun) bool {
	return s.flushDelay > 0 && r.batches > 0 && time.Since(r.first) >= s.flushDelay
}

// recv receives the next batch. In a continuous run with batches written
// since the last flush, it waits no longer than their flush is due and
// then returns errDue.
func (s *sinkStage) recv(ctx context.Context, in *stream.Inbox, r *sinkRun) (arrow.RecordBatch, error) {
	if s.flushDelay <= 0 || r.batches == 0 || r.noFlush {
		return in.Recv(ctx)
	}
	rctx, cancel := context.WithDeadline(ctx, r.first.Add(s.flushDelay))
	defer cancel()
	rec, err := in.Recv(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		// Also when the input closed as the deadline passed (Recv reports
		// rctx's error then): the next recv sees the end of input.
		return nil, errDue
	}
	return rec, err
}

// flush asks the writer to make what it has durable; with a position back,
// the batches kept for replay are no longer needed.
func (s *sinkStage) flush(ctx context.Context, w protocol.Writer, r *sinkRun) error {
	r.unflushd, r.batches = 0, 0
	f, ok := w.(protocol.Flusher)
	if !ok {
		r.noFlush = true
		return nil
	}
	pos, err := f.Flush(ctx)
	if err != nil {
		return err
	}
	if pos == nil {
		r.noFlush = true
		return nil
	}
	r.resume = pos
	r.release()
	r.lost = false
	return nil
}
