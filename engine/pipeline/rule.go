package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/rules/host"
)

// ruleStage runs a map rule on every batch, on several instances at once,
// and emits the results in input order.
//
// When the rule fails on a batch and the policy is dead_letter, the stage
// finds the failing rows by bisecting the batch: only they are
// dead-lettered, the rest of the batch goes on.
type ruleStage struct {
	cfg     *config.Rule
	mod     *host.Module
	insts   []*host.Instance // one per worker; an instance is never shared
	binding *host.Binding
	mem     memory.Allocator
}

// outcome is what one batch became: output batches in order, and rows
// dead-lettered with their error.
type outcome struct {
	outs []arrow.RecordBatch
	dead []stream.DeadLetter
	err  error
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
			work := func(inst *host.Instance, o *outcome) {
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
type submitFunc func(work func(inst *host.Instance, o *outcome), drop func()) error

// ordered runs the work that feed submits on the stage's instances,
// several at once, and emits each outcome (dead letters, then output
// batches) in submission order. The first error stops the feed and the
// workers; outcomes already computed are released.
func (r *ruleStage) ordered(ctx context.Context, st *stream.Stage, out *stream.Outbox, feed func(ctx context.Context, submit submitFunc) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		work func(*host.Instance, *outcome)
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

	submit := func(work func(*host.Instance, *outcome), drop func()) error {
		res := make(chan *outcome, 1)
		select {
		case order <- res:
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
	var err error
	for res := range order {
		o := <-res
		if err == nil {
			err = o.err
		}
		if err == nil && len(o.dead) > 0 {
			st.Log.Warn("rule failed; rows dead-lettered", "rows", len(o.dead), "error", o.dead[0].Reason)
			err = st.DeadLetter(o.dead...)
		}
		for _, rec := range o.outs {
			if err == nil {
				err = out.Send(ctx, rec) // takes ownership
			} else {
				rec.Release()
			}
		}
		if err != nil {
			cancel() // stop the feed and the workers; keep draining order
		}
	}
	wg.Wait()
	if err == nil {
		err = feedErr
	}
	return err
}

// eval evaluates rec, bisecting it on failure when the policy allows.
func (r *ruleStage) eval(ctx context.Context, inst *host.Instance, rec arrow.RecordBatch, o *outcome) {
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
	if rec.NumRows() == 1 {
		rows, jerr := rowsAsJSON(rec)
		if jerr != nil {
			o.err = jerr
			return
		}
		o.dead = append(o.dead, stream.DeadLetter{Origin: r.origin(), Reason: err.Error(), Raw: rows[0]})
		return
	}
	half := rec.NumRows() / 2
	for _, part := range []arrow.RecordBatch{rec.NewSlice(0, half), rec.NewSlice(half, rec.NumRows())} {
		if o.err == nil {
			r.eval(ctx, inst, part, o)
		}
		part.Release()
	}
	if o.err != nil {
		o.release()
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
