// Package stream runs a pipeline as a directed acyclic graph of stages joined
// by bounded channels of Arrow record batches.
//
// # Contract of a stage
//
//   - A batch travelling on a channel carries exactly one reference, owned
//     by the receiver. Outbox.Send takes ownership of the batch it is given
//     (it releases it if it cannot deliver it); whoever gets a batch from
//     Inbox.Recv must release it once.
//   - The engine owns every channel: it closes a stage's outputs when the
//     stage's Run returns, and releases batches left in channels when a run
//     is cancelled. A stage never closes a channel.
//   - Channels are bounded (RunOptions.Buffer), so a slow sink slows the
//     sources (backpressure) and memory stays bounded.
//   - The first stage to return an error cancels the run; the run's error
//     names that stage. A graceful stop (RunOptions.Stop) ends the sources
//     only: what is in flight drains through the graph and sinks flush.
//   - A transform or sink must read its input until Inbox.Recv returns
//     io.EOF (or the run is cancelled); returning nil earlier is an error,
//     since rows would be lost.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/vigie-edu/vigie/internal/arrowmem"
)

// ErrInterrupted is returned by Graph.Run after a graceful stop.
var ErrInterrupted = errors.New("run interrupted")

// Source is a stage with no input.
type Source interface {
	Run(ctx context.Context, st *Stage, out *Outbox) error
}

// Transform is a stage with one input and outputs.
type Transform interface {
	Run(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error
}

// Merge is a stage with several inputs and outputs: ins are in the order
// given to AddMerge. It must read every input to its end.
type Merge interface {
	Run(ctx context.Context, st *Stage, ins []*Inbox, out *Outbox) error
}

// MergeFunc adapts a function to a Merge.
type MergeFunc func(ctx context.Context, st *Stage, ins []*Inbox, out *Outbox) error

// Run calls f.
func (f MergeFunc) Run(ctx context.Context, st *Stage, ins []*Inbox, out *Outbox) error {
	return f(ctx, st, ins, out)
}

// Sink is a stage with one input and no output.
type Sink interface {
	Run(ctx context.Context, st *Stage, in *Inbox) error
}

// SourceFunc, TransformFunc and SinkFunc adapt functions to stages.
type (
	SourceFunc    func(ctx context.Context, st *Stage, out *Outbox) error
	TransformFunc func(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error
	SinkFunc      func(ctx context.Context, st *Stage, in *Inbox) error
)

// Run calls f.
func (f SourceFunc) Run(ctx context.Context, st *Stage, out *Outbox) error { return f(ctx, st, out) }

// Run calls f.
func (f TransformFunc) Run(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error {
	return f(ctx, st, in, out)
}

// Run calls f.
func (f SinkFunc) Run(ctx context.Context, st *Stage, in *Inbox) error { return f(ctx, st, in) }

// Kind of a stage. Its value is the word the summary prints and
// pipeline.toml uses; engine/config describes a pipeline's stages with it
// too, so that a stage has one kind from the file to the summary.
type Kind string

// Stage kinds. A transform (AddTransform) is a rule; joins and unions are
// merges (AddMerge).
const (
	KindSource Kind = "source"
	KindRule   Kind = "rule"
	KindSink   Kind = "sink"
	KindJoin   Kind = "join"
	KindUnion  Kind = "union"
	// KindAlerts turns a group rule's open alerts into changes (a
	// transform, like a rule).
	KindAlerts Kind = "alerts"
)

// DeadLetter is a row that a stage could not process, with the reason.
type DeadLetter struct {
	Stage  string // set by the engine
	Origin string // file, topic, rule module...
	Line   int64  // line or offset in Origin, 0 if unknown
	Column string // offending column, "" for the whole row
	Reason string
	Raw    string // the row as read, or as JSON
}

// DeadLetterWriter stores dead letters. The engine calls it from one
// goroutine at a time.
type DeadLetterWriter interface {
	WriteDeadLetters(rows []DeadLetter) error
}

// Stats counts what went through a stage. Safe for concurrent use.
type Stats struct {
	RowsIn, RowsOut, DeadLettered, BatchesOut atomic.Int64
	// Late counts the rows a group rule in event time found late (behind
	// their partition's watermark), rescored or dead-lettered.
	Late atomic.Int64
}

// Observer watches a run as it goes (metrics, progress). The engine calls
// Started once per stage before any data moves, then Batch and Busy from
// the stages' goroutines, concurrently: an implementation must be safe for
// concurrent use and quick, since it runs on the data path. The counts of
// rows, dead letters and batches are not repeated here: they are st.Stats,
// live for the whole run, which an observer may read at any time.
type Observer interface {
	// Started hands over the stage's handle (its name, kind and live Stats).
	Started(st *Stage)
	// Batch is called for each batch a stage receives (in) or sends (out,
	// once whatever the number of consumers), with its size in bytes of
	// Arrow data (arrowmem.BatchBytes).
	Batch(st *Stage, in bool, bytes int64)
	// Busy is the time a stage spent on one batch: for a stage with
	// inputs, from receiving a batch to asking for the next one; for a
	// source, from sending a batch to sending the next (reading it).
	Busy(st *Stage, d time.Duration)
}

// Stage is a running stage's handle on the engine.
type Stage struct {
	Name  string
	Kind  Kind
	Log   *slog.Logger
	Stats *Stats
	dl    *deadLetters
}

// DeadLetter records rows that the stage could not process. They count in
// the stage's summary and go to the run's dead-letter output.
func (s *Stage) DeadLetter(rows ...DeadLetter) error {
	for i := range rows {
		rows[i].Stage = s.Name
	}
	s.Stats.DeadLettered.Add(int64(len(rows)))
	return s.dl.write(rows)
}

type deadLetters struct {
	mu sync.Mutex
	w  DeadLetterWriter
}

func (d *deadLetters) write(rows []DeadLetter) error {
	if d.w == nil || len(rows) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.w.WriteDeadLetters(rows); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	return nil
}

// Inbox is a stage's input.
type Inbox struct {
	ch    chan arrow.RecordBatch
	stats *Stats
	eof   bool
	// With an Observer: the stage, and when the last batch was received.
	obs Observer
	st  *Stage
	got time.Time
	// sent counts the batches sent to the input (before they enter the
	// channel), done those its stage received and came back from for the
	// next one; holding is set while the stage has one (see Idle).
	sent, done atomic.Int64
	holding    bool
}

// Idle reports whether every batch sent to this input so far was received
// by its stage, which then came back to Recv for the next one (or ended).
// A stage that keeps working on a batch after its next Recv (a pool of
// workers) must say so itself. Once the stages upstream send nothing more
// (their own inputs idle, sources paused), Idle stays true: the engine's
// checkpoints wait for it (engine/pipeline).
func (in *Inbox) Idle() bool { return in.sent.Load() == in.done.Load() }

// Recv returns the next batch, which the caller owns and must release;
// io.EOF when the input has ended; the context's error when cancelled.
func (in *Inbox) Recv(ctx context.Context) (arrow.RecordBatch, error) {
	if in.obs != nil && !in.got.IsZero() {
		in.obs.Busy(in.st, time.Since(in.got))
		in.got = time.Time{}
	}
	if in.holding {
		in.holding = false
		in.done.Add(1)
	}
	select {
	case rec, ok := <-in.ch:
		if !ok {
			// An upstream stage that failed cancels the run before its
			// outputs close: its end is not a clean end of input.
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			in.eof = true
			return nil, io.EOF
		}
		in.stats.RowsIn.Add(rec.NumRows())
		if in.obs != nil {
			in.obs.Batch(in.st, true, arrowmem.BatchBytes(rec))
			in.got = time.Now()
		}
		in.holding = true
		return rec, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain releases whatever is left in the input until it is closed.
func (in *Inbox) drain() {
	for rec := range in.ch {
		rec.Release()
	}
}

// Outbox is a stage's output, fanned out to every consumer.
type Outbox struct {
	edges []*Inbox
	stats *Stats
	// With an Observer: the stage, whether it is a source (Busy is then
	// measured between sends), and when its last send returned.
	obs    Observer
	st     *Stage
	source bool
	mu     sync.Mutex
	sent   time.Time
}

// Send delivers rec to every consumer, blocking while they are busy. It
// takes ownership of rec: on return the caller must not use or release it.
// A batch without rows is released and not sent.
func (o *Outbox) Send(ctx context.Context, rec arrow.RecordBatch) error {
	n := rec.NumRows()
	if n == 0 || len(o.edges) == 0 {
		rec.Release()
		return ctx.Err()
	}
	if o.obs != nil {
		o.observe(rec)
	}
	for range len(o.edges) - 1 {
		rec.Retain()
	}
	for i, in := range o.edges {
		in.sent.Add(1)
		select {
		case in.ch <- rec:
		case <-ctx.Done():
			in.sent.Add(-1)
			for range len(o.edges) - i {
				rec.Release()
			}
			return ctx.Err()
		}
	}
	o.stats.RowsOut.Add(n)
	o.stats.BatchesOut.Add(1)
	return nil
}

// observe reports a batch about to be sent, and for a source the time
// since its last send.
func (o *Outbox) observe(rec arrow.RecordBatch) {
	o.obs.Batch(o.st, false, arrowmem.BatchBytes(rec))
	if !o.source {
		return
	}
	now := time.Now()
	o.mu.Lock()
	if !o.sent.IsZero() {
		o.obs.Busy(o.st, now.Sub(o.sent))
	}
	o.sent = now
	o.mu.Unlock()
}

type node struct {
	name   string
	kind   Kind
	inputs []string
	src    Source
	xf     Transform
	merge  Merge
	snk    Sink
	stats  Stats
	ins    []*Inbox
	out    *Outbox
}

// Graph is a DAG of stages. Build it with the Add methods, then Run it once.
type Graph struct {
	name  string
	nodes []*node
	by    map[string]*node
}

// NewGraph returns an empty graph for the named pipeline.
func NewGraph(name string) *Graph {
	return &Graph{name: name, by: map[string]*node{}}
}

func (g *Graph) add(n *node) error {
	if _, dup := g.by[n.name]; dup {
		return fmt.Errorf("duplicate stage %q", n.name)
	}
	for _, input := range n.inputs {
		up, ok := g.by[input]
		if !ok {
			return fmt.Errorf("stage %q: unknown input %q (add stages in topological order)", n.name, input)
		}
		if up.kind == KindSink {
			return fmt.Errorf("stage %q: input %q is a sink", n.name, input)
		}
	}
	g.nodes = append(g.nodes, n)
	g.by[n.name] = n
	return nil
}

// AddSource adds a source stage.
func (g *Graph) AddSource(name string, s Source) error {
	return g.add(&node{name: name, kind: KindSource, src: s})
}

// AddTransform adds a stage reading the output of input.
func (g *Graph) AddTransform(name, input string, t Transform) error {
	return g.add(&node{name: name, kind: KindRule, inputs: []string{input}, xf: t})
}

// AddMerge adds a stage reading the outputs of several stages. kind names
// it in summaries (KindJoin, KindUnion...).
func (g *Graph) AddMerge(name string, kind Kind, inputs []string, m Merge) error {
	if len(inputs) == 0 {
		return fmt.Errorf("stage %q: a merge needs inputs", name)
	}
	if kind == KindSource || kind == KindRule || kind == KindSink || kind == "" {
		return fmt.Errorf("stage %q: a merge needs a kind of its own, not %q", name, kind)
	}
	return g.add(&node{name: name, kind: kind, inputs: inputs, merge: m})
}

// AddSink adds a sink reading the output of input.
func (g *Graph) AddSink(name, input string, s Sink) error {
	return g.add(&node{name: name, kind: KindSink, inputs: []string{input}, snk: s})
}

// RunOptions tune a run.
type RunOptions struct {
	// Buffer is the capacity, in batches, of each channel (default 4).
	Buffer int
	// Stop, when closed, stops the sources gracefully: in-flight batches
	// drain, sinks flush, and Run returns ErrInterrupted.
	Stop <-chan struct{}
	// Log receives the engine's logs; each stage gets a child logger.
	Log *slog.Logger
	// DeadLetters receives rejected rows; nil keeps only their count.
	DeadLetters DeadLetterWriter
	// Observer, when set, watches the run (see Observer).
	Observer Observer
}

// Run runs the graph until every source has ended and every batch has
// reached the sinks, or until the first error or ctx's cancellation. The
// summary is returned in every case.
func (g *Graph) Run(ctx context.Context, opts RunOptions) (*Summary, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = 4
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	dl := &deadLetters{w: opts.DeadLetters}

	// Wire the channels: one per edge, owned by the engine.
	stages := make(map[*node]*Stage, len(g.nodes))
	for _, n := range g.nodes {
		st := &Stage{Name: n.name, Kind: n.kind, Log: opts.Log.With("stage", n.name), Stats: &n.stats, dl: dl}
		stages[n] = st
		n.out = &Outbox{stats: &n.stats, obs: opts.Observer, st: st, source: n.kind == KindSource}
		for _, input := range n.inputs {
			in := &Inbox{ch: make(chan arrow.RecordBatch, opts.Buffer), stats: &n.stats, obs: opts.Observer, st: st}
			n.ins = append(n.ins, in)
			up := g.by[input]
			up.out.edges = append(up.out.edges, in)
		}
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	srcCtx, stopSources := context.WithCancel(runCtx)
	defer stopSources()
	var stopped atomic.Bool
	if opts.Stop != nil {
		go func() {
			select {
			case <-opts.Stop:
				stopped.Store(true)
				stopSources()
			case <-srcCtx.Done():
			}
		}()
	}

	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() {
			firstErr = err
			cancel(err)
		})
	}
	if opts.Observer != nil {
		for _, n := range g.nodes {
			opts.Observer.Started(stages[n])
		}
	}
	for _, n := range g.nodes {
		st := stages[n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				for _, in := range n.out.edges {
					close(in.ch)
				}
			}()
			if err := g.runNode(runCtx, srcCtx, &stopped, n, st); err != nil {
				fail(fmt.Errorf("stage %q: %w", n.name, err))
			}
			// Drain concurrently: an input left unread must not block
			// the producer of another.
			var dw sync.WaitGroup
			for _, in := range n.ins {
				dw.Add(1)
				go func() { defer dw.Done(); in.drain() }()
			}
			dw.Wait()
		}()
	}
	wg.Wait()

	sum := g.summary(start)
	switch {
	case firstErr != nil:
		sum.Err = firstErr
	case ctx.Err() != nil:
		sum.Err = ctx.Err()
	case stopped.Load():
		sum.Err = ErrInterrupted
	}
	return sum, sum.Err
}

func (g *Graph) runNode(runCtx, srcCtx context.Context, stopped *atomic.Bool, n *node, st *Stage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	switch n.kind {
	case KindSource:
		err = n.src.Run(srcCtx, st, n.out)
		if err != nil && stopped.Load() && errors.Is(err, context.Canceled) && runCtx.Err() == nil {
			return nil // graceful stop: the source ended where it was
		}
		return err
	case KindRule:
		err = n.xf.Run(runCtx, st, n.ins[0], n.out)
	case KindSink:
		err = n.snk.Run(runCtx, st, n.ins[0])
	default: // a merge, named by its own kind
		err = n.merge.Run(runCtx, st, n.ins, n.out)
	}
	if err == nil && runCtx.Err() == nil {
		for i, in := range n.ins {
			if !in.eof {
				return fmt.Errorf("stage returned before its input %q ended", n.inputs[i])
			}
		}
	}
	return err
}
