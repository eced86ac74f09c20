package console

import (
	"sync"
	"time"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// RunView is what the data engineer's page shows of a run.
type RunView struct {
	Pipeline string
	Status   string // running, ok, interrupted, failed, not run
	Err      string
	Wall     time.Duration
	Stages   []StageView
	Restarts map[string]int // plugin restarts by connector
	// Checkpoint is when the last checkpoint completed (zero: none).
	Checkpoint time.Time
}

// StageView is one stage with its inputs and counts.
type StageView struct {
	Name                                   string
	Kind                                   stream.Kind
	Inputs                                 []string
	RowsIn, RowsOut, DeadLettered, Batches int64
}

// Watch follows a run for the console: give it to the run as its
// stream.Observer (pipeline.RunOptions.Observer), call Done with the
// summary at the end. Its View is live during the run.
type Watch struct {
	cfg      *config.Pipeline
	restarts func() map[string]int

	mu     sync.Mutex
	stages map[string]*stream.Stage
	start  time.Time
	sum    *stream.Summary
	ckpt   time.Time
}

var _ stream.Observer = (*Watch)(nil)

// NewWatch returns a watch over a run of cfg; restarts (may be nil) reports
// plugin restarts by connector (pluginhost.Host.Restarts).
func NewWatch(cfg *config.Pipeline, restarts func() map[string]int) *Watch {
	return &Watch{cfg: cfg, restarts: restarts, stages: map[string]*stream.Stage{}}
}

// Started implements stream.Observer.
func (w *Watch) Started(st *stream.Stage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start.IsZero() {
		w.start = time.Now()
	}
	w.stages[st.Name] = st
}

// Batch implements stream.Observer.
func (w *Watch) Batch(*stream.Stage, bool, int64) {}

// Busy implements stream.Observer.
func (w *Watch) Busy(*stream.Stage, time.Duration) {}

// Checkpointed records a completed checkpoint.
func (w *Watch) Checkpointed(t time.Time) {
	w.mu.Lock()
	w.ckpt = t
	w.mu.Unlock()
}

// Done records the run's summary.
func (w *Watch) Done(sum *stream.Summary) {
	w.mu.Lock()
	w.sum = sum
	w.mu.Unlock()
}

// View returns the run as it is now.
func (w *Watch) View() RunView {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := RunView{Pipeline: w.cfg.Name, Status: "not run", Checkpoint: w.ckpt}
	if w.restarts != nil {
		v.Restarts = w.restarts()
	}
	switch {
	case w.sum != nil:
		v.Status, v.Wall = w.sum.Status(), w.sum.Wall
		if w.sum.Err != nil {
			v.Err = w.sum.Err.Error()
		}
	case !w.start.IsZero():
		v.Status, v.Wall = "running", time.Since(w.start)
	}
	for _, name := range w.cfg.Order() {
		sv := StageView{Name: name, Kind: w.cfg.Kind(name), Inputs: w.cfg.Inputs(name)}
		if w.sum != nil {
			if s, ok := w.sum.Stage(name); ok {
				sv.RowsIn, sv.RowsOut, sv.DeadLettered, sv.Batches = s.RowsIn, s.RowsOut, s.DeadLettered, s.Batches
			}
		} else if st := w.stages[name]; st != nil {
			sv.RowsIn, sv.RowsOut = st.Stats.RowsIn.Load(), st.Stats.RowsOut.Load()
			sv.DeadLettered, sv.Batches = st.Stats.DeadLettered.Load(), st.Stats.BatchesOut.Load()
		}
		v.Stages = append(v.Stages, sv)
	}
	return v
}
