package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/stream"
)

// Checkpoints of a continuous run (docs/design/streaming.md, section 6).
//
// Every checkpoint_interval the coordinator takes a quiescent cut: it
// closes every source's gate (a source then blocks before its next Emit;
// the positions recorded are those of the batches it emitted), waits until
// every batch emitted so far went through every stage and was written by
// the sinks (every inbox idle, no rule worker busy), flushes the sinks that
// are not the commit point (file sinks: durable, with their positions),
// then commits the checkpoint: the sink whose Spec sets Checkpoints (the
// Kafka sink) commits its transaction holding the rows AND the checkpoint
// record; without one, a record file in state_dir is replaced atomically.
// Then the gates open. A restarted run reads the last committed record and
// resumes every source and sink from it (Config.Resume).
//
// Sinks commit nothing between checkpoints (no periodic flush), and each
// sink takes a last checkpoint when its input ends (the end of a bounded
// read, or a graceful stop), before it closes.

// checkpointData is what a checkpoint records: the positions to resume
// every source and every non-committing sink from.
type checkpointData struct {
	Sources map[string]protocol.Position `json:"sources"`
	Sinks   map[string]protocol.Position `json:"sinks,omitempty"`
	// DeadLetters is where the run's dead letter file ends (flushed before
	// the commit; in the Kafka sink's transaction with the rest when it is
	// the commit point), nil when there are none.
	DeadLetters *deadLetterPos `json:"dead_letters,omitempty"`
	// Aggregates names the file of each aggregate stage's open windows
	// (aggregate_state.go).
	Aggregates map[string]string `json:"aggregates,omitempty"`
	// Cuts is, for each per-row group stage whose state is kept in
	// state_dir, the last arrival sequence it stored in each partition at
	// the cut: a restart rolls the stage's progress (watermarks) back to
	// it before the rows after the cut come again.
	Cuts map[string]map[uint32]uint64 `json:"cuts,omitempty"`
}

// watched is a stage whose work the coordinator waits for: its inboxes
// (set when the stage starts) and, for rule stages, whether its workers
// still hold batches.
type watched struct {
	name string
	ins  atomic.Pointer[[]*stream.Inbox]
	busy func() bool
}

func (w *watched) idle() bool {
	ins := w.ins.Load()
	if ins == nil {
		return false // not started yet
	}
	for _, in := range *ins {
		if !in.Idle() {
			return false
		}
	}
	return w.busy == nil || !w.busy()
}

// watchedTransform and watchedMerge record their stage's inboxes.
type watchedTransform struct {
	stream.Transform
	w *watched
}

func (t watchedTransform) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
	t.w.ins.Store(&[]*stream.Inbox{in})
	return t.Transform.Run(ctx, st, in, out)
}

type watchedSink struct {
	stream.Sink
	w *watched
}

func (k watchedSink) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox) error {
	k.w.ins.Store(&[]*stream.Inbox{in})
	return k.Sink.Run(ctx, st, in)
}

type watchedMerge struct {
	stream.Merge
	w *watched
}

func (m watchedMerge) Run(ctx context.Context, st *stream.Stage, ins []*stream.Inbox, out *stream.Outbox) error {
	m.w.ins.Store(&ins)
	return m.Merge.Run(ctx, st, ins, out)
}

// CheckpointStats describes the checkpoints of a run.
type CheckpointStats struct {
	// Taken counts the checkpoints committed; Last is the id of the last.
	Taken int
	Last  uint64
	// Pauses are how long the sources were held for each checkpoint,
	// from closing their gates to opening them (the cut, the flushes and
	// the commit): the last maxPauses of them, so that a run of weeks
	// does not keep one per checkpoint.
	Pauses []time.Duration
	// Resumed is the checkpoint the run started from, 0 if none.
	Resumed uint64
}

// maxPauses bounds CheckpointStats.Pauses.
const maxPauses = 4096

// coordinator takes the checkpoints of one run.
type coordinator struct {
	interval time.Duration
	log      *slog.Logger
	sources  []*sourceStage // in pipeline order
	watch    []*watched     // every stage but sources, in pipeline order
	sinks    []*sinkStage
	commit   *sinkStage // the commit point, nil: record file
	file     string     // the record file, without a commit sink ("" : none)
	// sync makes the keyed state written so far durable (nil: no state).
	sync func() error
	// dl is the run's dead letter file, flushed at each checkpoint, and
	// dlResume where the checkpoint restored leaves it.
	dl       *deadLetterFile
	dlResume *deadLetterPos
	// aggs saves the aggregate stages' open windows (nil: not saved).
	aggs *aggregateStates
	// cuts reads the per-row group stages' cuts (checkpointData.Cuts) and
	// rollBack rolls their progress back to the cuts of the checkpoint a
	// run resumes from; nil without such stages.
	cuts     func() (map[string]map[uint32]uint64, error)
	rollBack func(map[string]map[uint32]uint64) error
	// observed, when set, hears of every committed checkpoint (the run's
	// stream.Observer when it tracks checkpoints: metrics, console).
	observed func(time.Time)

	mu    sync.Mutex // one checkpoint at a time
	next  uint64
	stats CheckpointStats
}

// restore reads the last committed checkpoint and sets the positions every
// source and sink resumes from.
func (c *coordinator) restore(ctx context.Context) error {
	var cp *protocol.Checkpoint
	switch {
	case c.commit != nil:
		cs, ok := c.commit.snk.(protocol.CheckpointSink)
		if !ok {
			return fmt.Errorf("sink %q: connector %q declares checkpoints but cannot read them back", c.commit.cfg.Stage, c.commit.cfg.Connector)
		}
		var err error
		if cp, err = cs.LastCheckpoint(ctx, c.commit.cfg); err != nil {
			return fmt.Errorf("read the last checkpoint of sink %q: %w", c.commit.cfg.Stage, err)
		}
	case c.file != "":
		b, err := os.ReadFile(c.file)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("read the last checkpoint: %w", err)
		}
		cp = new(protocol.Checkpoint)
		if err := json.Unmarshal(b, cp); err != nil {
			return fmt.Errorf("read the last checkpoint %s: %w", c.file, err)
		}
	}
	c.next, c.dlResume = 1, nil
	if cp == nil {
		return nil
	}
	var data checkpointData
	if err := json.Unmarshal(cp.Data, &data); err != nil {
		return fmt.Errorf("decode checkpoint %d: %w", cp.ID, err)
	}
	for _, s := range c.sources {
		s.cfg.Resume = data.Sources[s.cfg.Stage]
	}
	for _, s := range c.sinks {
		if s != c.commit {
			s.cfg.Resume = data.Sinks[s.cfg.Stage]
		}
	}
	c.dlResume = data.DeadLetters
	if err := c.aggs.restore(data.Aggregates); err != nil {
		return fmt.Errorf("checkpoint %d: %w", cp.ID, err)
	}
	// A checkpoint written before cuts were recorded has none: the
	// progress is then left as the killed run left it.
	if c.rollBack != nil && data.Cuts != nil {
		if err := c.rollBack(data.Cuts); err != nil {
			return fmt.Errorf("checkpoint %d: %w", cp.ID, err)
		}
	}
	c.next = cp.ID + 1
	c.stats.Resumed = cp.ID
	c.log.Info("resuming from checkpoint", "checkpoint", cp.ID)
	return nil
}

// run takes a checkpoint every interval until ctx ends or every source
// has ended (the sinks then take the last one as their input ends).
func (c *coordinator) run(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, done, err := c.checkpoint(ctx, nil)
		if err != nil || done {
			return err
		}
	}
}

// checkpoint takes one checkpoint and reports whether it committed one;
// done reports that no periodic checkpoint is needed any more (every
// source ended, or the commit point closed).
//
// ending is the sink whose input ended and that closes after this
// checkpoint (nil for a periodic one): its position, like a closed
// sink's, is recorded as none, since a file sink puts its output in place
// when it closes and the next run writes a new file; a sink whose Spec
// sets AppendsAcrossRuns keeps its position (the next run goes on with
// its output).
func (c *coordinator) checkpoint(ctx context.Context, ending *sinkStage) (committed, done bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	ended := 0
	for _, s := range c.sources {
		s.gate.Lock()
		if s.ended.Load() {
			ended++
		}
	}
	defer func() {
		for _, s := range c.sources {
			s.gate.Unlock()
		}
	}()
	// Wait for the cut: in pipeline order, each stage's inputs idle once
	// the stages before it are. Stages end idle too.
	for _, w := range c.watch {
		for !w.idle() {
			if ctx.Err() != nil {
				return false, true, nil
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	data := checkpointData{Sources: map[string]protocol.Position{}, Sinks: map[string]protocol.Position{}}
	for _, s := range c.sources {
		data.Sources[s.cfg.Stage] = s.position()
	}
	if c.commit != nil && c.commit.closed() {
		// The commit point took its last checkpoint: nothing more can be
		// recorded (what other sinks write after is redone after a crash).
		return false, true, nil
	}
	for _, s := range c.sinks {
		if s == c.commit {
			continue
		}
		pos, ok, err := c.flushSink(ctx, s, nil)
		if err != nil {
			return false, true, fmt.Errorf("checkpoint %d: sink %q: %w", c.next, s.cfg.Stage, err)
		}
		if !ok {
			return false, true, nil
		}
		if (s == ending || s.closed()) && !s.snk.Spec().AppendsAcrossRuns {
			pos = nil
		}
		data.Sinks[s.cfg.Stage] = pos
	}
	if c.dl != nil {
		if data.DeadLetters, err = c.dl.checkpoint(); err != nil {
			return false, true, fmt.Errorf("checkpoint %d: %w", c.next, err)
		}
	}
	if data.Aggregates, err = c.aggs.save(c.next); err != nil {
		return false, true, fmt.Errorf("checkpoint %d: %w", c.next, err)
	}
	if c.cuts != nil {
		if data.Cuts, err = c.cuts(); err != nil {
			return false, true, fmt.Errorf("checkpoint %d: %w", c.next, err)
		}
	}
	if c.sync != nil {
		if err := c.sync(); err != nil {
			return false, true, fmt.Errorf("checkpoint %d: %w", c.next, err)
		}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return false, true, fmt.Errorf("encode checkpoint: %w", err)
	}
	cp := protocol.Checkpoint{ID: c.next, Data: raw}
	switch {
	case c.commit != nil:
		_, ok, err := c.flushSink(ctx, c.commit, &cp)
		if err != nil {
			return false, true, fmt.Errorf("checkpoint %d: sink %q: %w", cp.ID, c.commit.cfg.Stage, err)
		}
		if !ok {
			return false, true, nil
		}
	case c.file != "":
		if err := writeFileAtomic(c.file, cp); err != nil {
			return false, true, fmt.Errorf("checkpoint %d: %w", cp.ID, err)
		}
	}
	if c.dl != nil {
		c.dl.committed(data.DeadLetters)
	}
	if err := c.aggs.prune(cp.ID); err != nil {
		c.log.Warn("could not remove the aggregate state of older checkpoints", "checkpoint", cp.ID, "err", err)
	}
	c.next++
	c.stats.Taken++
	c.stats.Last = cp.ID
	if c.observed != nil {
		c.observed(time.Now())
	}
	pause := time.Since(start)
	if len(c.stats.Pauses) == maxPauses {
		c.stats.Pauses = append(c.stats.Pauses[:0], c.stats.Pauses[1:]...)
	}
	c.stats.Pauses = append(c.stats.Pauses, pause)
	c.log.Debug("checkpoint", "checkpoint", cp.ID, "pause", pause)
	return true, ended == len(c.sources), nil
}

// flushSink flushes s for the checkpoint being taken (with cp, commits
// it), waiting while s reopens after a failure of its writer. A cut is
// never given up once a sink flushed for it: no sink flushes again before
// the cut its last flush belongs to committed, which is what lets the
// parquet sink publish a part at the flush after the one that completed
// it (connectors/parquet/parts.go). ok is false when s's stage ended
// without an open writer (it failed, and the run with it) or ctx ended:
// no checkpoint is taken in this run any more.
func (c *coordinator) flushSink(ctx context.Context, s *sinkStage, cp *protocol.Checkpoint) (protocol.Position, bool, error) {
	for waited := false; ; waited = true {
		pos, ok, err := s.checkpointFlush(ctx, cp)
		if err != nil || ok {
			return pos, ok, err
		}
		if s.ended.Load() || ctx.Err() != nil {
			return nil, false, nil
		}
		if !waited {
			c.log.Debug("checkpoint waits: a sink is reopening", "sink", s.cfg.Stage)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// last takes the checkpoint that covers everything a sink whose input
// ended wrote, before it closes: retried while another sink is reopening,
// not needed once the commit point closed.
func (c *coordinator) last(ctx context.Context, s *sinkStage) error {
	for {
		committed, _, err := c.checkpoint(ctx, s)
		if err != nil || committed {
			return err
		}
		if c.commit != nil && c.commit.closed() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeFileAtomic replaces path with cp, durably.
func writeFileAtomic(path string, cp protocol.Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// snapshot returns a copy of the statistics.
func (c *coordinator) snapshot() CheckpointStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Pauses = slices.Clone(s.Pauses)
	return s
}
