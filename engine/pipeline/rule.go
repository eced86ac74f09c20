package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// ruleStage runs a map rule on every batch, on several instances at once,
// and emits the results in input order.
//
// When the rule fails on a batch and the policy is dead_letter, the stage
// finds the failing rows by bisecting the batch: only they are
// dead-lettered, the rest of the batch goes on. Bisection is bounded (see
// bisection), and past the dead letter threshold the stage fails.
type ruleStage struct {
	cfg     *config.Rule
	mod     *wasmhost.Module
	insts   []*wasmhost.Instance // one per worker; an instance is never shared
	binding *wasmhost.Binding
	mem     memory.Allocator
	// inflight counts the batches submitted whose outcome was not sent on
	// yet: work the stage's inbox no longer shows (checkpoints wait for it).
	inflight atomic.Int64
}

// busy reports whether batches the stage received are still being worked
// on or sent on.
func (r *ruleStage) busy() bool { return r.inflight.Load() > 0 }

// outcome is what one batch became: output batches in order, and rows
// dead-lettered with their error.
type outcome struct {
	outs []arrow.RecordBatch
	dead []stream.DeadLetter
	err  error
	// rows is the number of input rows the outcome accounts for, and
	// deadAt the index among them of each dead letter, increasing.
	rows   int64
	deadAt []int64
}

func (o *outcome) release() {
	for _, r := range o.outs {
		r.Release()
	}
	o.outs = nil
}

func (r *ruleStage) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
	return r.ordered(ctx, st, out, func(ctx context.Context, submit submitFunc) error {
		for {
			rec, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			work := func(inst *wasmhost.Instance, o *outcome) {
				r.eval(ctx, inst, rec, o)
				rec.Release()
			}
			if err := submit(work, rec.Release); err != nil {
				return err
			}
		}
	})
}

// submitFunc queues work for the next free instance; drop is called
// instead when the work will not run (the run is ending).
type submitFunc func(work func(inst *wasmhost.Instance, o *outcome), drop func()) error

// ordered runs the work that feed submits on the stage's instances,
// several at once, and emits each outcome (dead letters, then output
// batches) in submission order. The first error stops the feed and the
// workers; outcomes already computed are released.
func (r *ruleStage) ordered(ctx context.Context, st *stream.Stage, out *stream.Outbox, feed func(ctx context.Context, submit submitFunc) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		work func(*wasmhost.Instance, *outcome)
		res  chan *outcome
	}
	jobs := make(chan job)
	// order holds each job's result channel in submission order; its
	// capacity bounds the work in flight in the stage.
	order := make(chan chan *outcome, 2*len(r.insts))

	var wg sync.WaitGroup
	for _, inst := range r.insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				o := &outcome{}
				j.work(inst, o)
				j.res <- o
			}
		}()
	}

	submit := func(work func(*wasmhost.Instance, *outcome), drop func()) error {
		res := make(chan *outcome, 1)
		select {
		case order <- res:
			r.inflight.Add(1)
		case <-ctx.Done():
			drop()
			return ctx.Err()
		}
		select {
		case jobs <- job{work: work, res: res}:
			return nil
		case <-ctx.Done():
			drop()
			res <- &outcome{err: ctx.Err()}
			return ctx.Err()
		}
	}
	var feedErr error
	go func() {
		defer close(order)
		defer close(jobs)
		feedErr = feed(ctx, submit)
	}()

	// Emit in submission order.
	window := newDeadLetterWindow(r.cfg.DeadLetterThreshold)
	lastReason := ""
	var err error
	for res := range order {
		o := <-res
		if err == nil {
			err = o.err
		}
		if err == nil && len(o.dead) > 0 {
			st.Log.Warn("rule failed; rows dead-lettered", "rows", len(o.dead), "error", o.dead[0].Reason)
			lastReason = o.dead[len(o.dead)-1].Reason
			err = st.DeadLetter(o.dead...)
		}
		if err == nil && window.outcome(o.rows, o.deadAt) {
			err = window.err(r.origin(), lastReason)
		}
		for _, rec := range o.outs {
			if err == nil {
				err = out.Send(ctx, rec) // takes ownership
			} else {
				rec.Release()
			}
		}
		r.inflight.Add(-1)
		if err != nil {
			cancel() // stop the feed and the workers; keep draining order
		}
	}
	wg.Wait()
	if err == nil {
		err = feedErr
	}
	if err == nil && window.final() {
		err = window.err(r.origin(), lastReason)
	}
	return err
}

// bisection is the budget of the search for the failing rows of one
// batch: calls made and time spent so far, the last error, and the reason
// to stop calling the rule on the rest of the batch once spent (or once
// one row alone went past a limit: the rule is then treated as broken).
type bisection struct {
	cfg   config.Bisect
	start time.Time
	calls int
	stop  string // when set, the remaining rows are dead-lettered with it
}

func newBisection(cfg config.Bisect) *bisection {
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = config.DefaultBisectMaxCalls
	}
	if cfg.MaxTime <= 0 {
		cfg.MaxTime = config.DefaultBisectMaxTime
	}
	return &bisection{cfg: cfg, start: time.Now()}
}

// call reports whether the budget allows another call, counting it; when
// it does not, b.stop says why (lastErr is the batch's latest error).
func (b *bisection) call(lastErr error) bool {
	if b.stop != "" {
		return false
	}
	if b.calls > 0 && (b.calls >= b.cfg.MaxCalls || time.Since(b.start) >= b.cfg.MaxTime) {
		b.stop = fmt.Sprintf("not evaluated: the bisection budget of the batch is spent (calls: %d, time: %s; bisect_max_calls = %d, bisect_max_time = %s); the rule failed with: %v",
			b.calls, time.Since(b.start).Round(time.Millisecond), b.cfg.MaxCalls, b.cfg.MaxTime, lastErr)
		return false
	}
	b.calls++
	return true
}

// failed records the error of a call on rows rows: one row alone past a
// limit (time, memory, output, log) makes the rule broken for the rest of
// the batch.
func (b *bisection) failed(rows int64, err error) {
	if rows == 1 && errors.Is(err, wasmhost.ErrLimit) && b.stop == "" {
		b.stop = fmt.Sprintf("not evaluated: the rule is treated as broken on this batch, one row alone went past a limit: %v", err)
	}
}

// eval evaluates rec, bisecting it on failure when the policy allows,
// within the stage's bisection budget.
func (r *ruleStage) eval(ctx context.Context, inst *wasmhost.Instance, rec arrow.RecordBatch, o *outcome) {
	o.rows = rec.NumRows()
	r.evalPart(ctx, inst, rec, 0, newBisection(r.cfg.Bisect), nil, o)
	if o.err != nil {
		o.release()
	}
}

// evalPart evaluates rec, rows [off, off+rec.NumRows()) of the batch.
// lastErr is the error of the part rec was cut from.
func (r *ruleStage) evalPart(ctx context.Context, inst *wasmhost.Instance, rec arrow.RecordBatch, off int64, b *bisection, lastErr error, o *outcome) {
	if !b.call(lastErr) {
		r.deadLetter(rec, off, b.stop, o)
		return
	}
	res, err := inst.EvalMap(ctx, r.binding, rec, r.mem)
	if err == nil {
		o.outs = append(o.outs, res)
		return
	}
	if ctx.Err() != nil {
		o.err = ctx.Err()
		return
	}
	if r.cfg.OnError == config.OnErrorFail {
		o.err = fmt.Errorf("rule %s: %w", r.mod.Manifest.Name, err)
		return
	}
	b.failed(rec.NumRows(), err)
	if rec.NumRows() == 1 {
		r.deadLetter(rec, off, err.Error(), o)
		return
	}
	half := rec.NumRows() / 2
	for i, part := range []arrow.RecordBatch{rec.NewSlice(0, half), rec.NewSlice(half, rec.NumRows())} {
		if o.err == nil {
			r.evalPart(ctx, inst, part, off+int64(i)*half, b, err, o)
		}
		part.Release()
	}
}

// deadLetter sends every row of rec, rows [off, ...) of the batch, to the
// dead letters with reason.
func (r *ruleStage) deadLetter(rec arrow.RecordBatch, off int64, reason string, o *outcome) {
	rows, err := rowsAsJSON(rec)
	if err != nil {
		o.err = err
		return
	}
	for i, raw := range rows {
		o.dead = append(o.dead, stream.DeadLetter{Origin: r.origin(), Reason: reason, Raw: raw})
		o.deadAt = append(o.deadAt, off+int64(i))
	}
}

// origin names the rule in dead letters: name, version and module hash.
func (r *ruleStage) origin() string {
	return fmt.Sprintf("rule %s %s (sha256 %s)", r.mod.Manifest.Name, r.mod.Manifest.Version, r.mod.SHA256)
}

// rowsAsJSON renders each row of rec as a JSON object.
func rowsAsJSON(rec arrow.RecordBatch) ([]string, error) {
	var buf bytes.Buffer
	if err := array.RecordToJSON(rec, &buf); err != nil {
		return nil, fmt.Errorf("render rejected rows: %w", err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"), nil
}

func (r *ruleStage) close(ctx context.Context) {
	for _, inst := range r.insts {
		inst.Close(ctx)
	}
	r.mod.Close(ctx)
}
