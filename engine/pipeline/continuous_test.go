package pipeline

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/stream"
)

// trickle is a source sending one-row batches, gap apart, until done is
// closed or it has sent max.
type trickle struct {
	mem  memory.Allocator
	gap  time.Duration
	max  int
	done <-chan struct{}
}

var trickleSchema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

func (s *trickle) Run(ctx context.Context, _ *stream.Stage, out *stream.Outbox) error {
	for i := range s.max {
		b := array.NewRecordBuilder(s.mem, trickleSchema)
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		rec := b.NewRecordBatch()
		b.Release()
		if err := out.Send(ctx, rec); err != nil {
			return err
		}
		select {
		case <-s.done:
			return nil
		case <-time.After(s.gap):
		}
	}
	return nil
}

// flushLog is a sink whose writer records, at each Flush, how many batches
// were written since the previous one.
type flushLog struct {
	mu      sync.Mutex
	flushes []int
	written int
	first   chan struct{} // closed at the first flush
}

func (f *flushLog) Spec() protocol.Spec {
	return protocol.Spec{Name: "flushlog", Kind: protocol.KindSink}
}
func (f *flushLog) Validate(context.Context, protocol.Config) error { return nil }
func (f *flushLog) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return f, nil
}
func (f *flushLog) Write(context.Context, arrow.RecordBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written++
	return nil
}
func (f *flushLog) Flush(context.Context) (protocol.Position, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.flushes) == 0 {
		close(f.first)
	}
	f.flushes = append(f.flushes, f.written)
	f.written = 0
	return protocol.Position(`{}`), nil
}
func (f *flushLog) Close(context.Context) error { return nil }
func (f *flushLog) Abort(context.Context) error { return nil }

// TestSinkFlushDelay: in a continuous run (flushDelay set) a sink flushes
// max_delay after the first batch written since its last flush even while
// batches keep arriving closer together than that; in a batch run
// (flushDelay 0) it flushes only every flushBatches batches, and at Close.
func TestSinkFlushDelay(t *testing.T) {
	for _, tc := range []struct {
		name       string
		flushDelay time.Duration
		gap        time.Duration
		max        int
		check      func(t *testing.T, flushes []int)
	}{
		{"continuous: flushes while batches keep coming", 20 * time.Millisecond, 2 * time.Millisecond, 1000,
			func(t *testing.T, flushes []int) {
				// A batch every 2 ms or more: at most 11 fit in 20 ms,
				// far fewer than flushBatches.
				if len(flushes) == 0 || flushes[0] >= flushBatches {
					t.Errorf("flushes %v: want the first one before %d batches", flushes, flushBatches)
				}
			}},
		{"batch run: no timed flush", 0, 30 * time.Millisecond, 10,
			func(t *testing.T, flushes []int) {
				if len(flushes) != 0 {
					t.Errorf("flushes %v, want none (10 batches, below flushBatches)", flushes)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			snk := &flushLog{first: make(chan struct{})}
			g := stream.NewGraph("flushdelay")
			if err := g.AddSource("src", &trickle{mem: mem, gap: tc.gap, max: tc.max, done: snk.first}); err != nil {
				t.Fatal(err)
			}
			stage := &sinkStage{snk: snk, mem: mem, schema: trickleSchema, flushDelay: tc.flushDelay}
			if err := g.AddSink("out", "src", stage); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Run(ctx, stream.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			snk.mu.Lock()
			defer snk.mu.Unlock()
			tc.check(t, snk.flushes)
		})
	}
}

// commitLog is a commit-point sink's writer that counts the checkpoints
// it committed.
type commitLog struct {
	flushLog
	commits []uint64
}

func (c *commitLog) FlushCheckpoint(_ context.Context, cp protocol.Checkpoint) (protocol.Position, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commits = append(c.commits, cp.ID)
	return protocol.Position(`{}`), nil
}

// TestCheckpointWaitsForReopeningSink: a checkpoint whose commit point is
// reopening (its writer failed and the stage opens it again) waits for
// it and commits the cut the other sinks flushed for, instead of giving
// the cut up and flushing them again for the next one: a sink may rely on
// its previous flush's checkpoint having committed when it is flushed
// again (the parquet sink publishes its parts then).
func TestCheckpointWaitsForReopeningSink(t *testing.T) {
	files := &flushLog{first: make(chan struct{})}
	commit := &commitLog{flushLog: flushLog{first: make(chan struct{})}}
	fileStage := &sinkStage{snk: files, cfg: protocol.Config{Stage: "files"}}
	fileStage.w = &sinkAttempt{w: files, r: &sinkRun{}}
	commitStage := &sinkStage{snk: commit, cfg: protocol.Config{Stage: "kafka"}} // reopening: no writer
	c := &coordinator{log: slog.New(slog.DiscardHandler), sinks: []*sinkStage{fileStage, commitStage}, commit: commitStage, next: 1}

	go func() {
		time.Sleep(50 * time.Millisecond)
		commitStage.mu.Lock()
		commitStage.w = &sinkAttempt{w: commit, r: &sinkRun{}}
		commitStage.mu.Unlock()
	}()
	committed, _, err := c.checkpoint(t.Context(), nil)
	if err != nil || !committed {
		t.Fatalf("checkpoint = %v, %v; want committed once the commit point reopened", committed, err)
	}
	files.mu.Lock()
	commit.mu.Lock()
	if len(files.flushes) != 1 || !slices.Equal(commit.commits, []uint64{1}) {
		t.Errorf("file sink flushed %d times, commits %v; want one flush and checkpoint 1 committed", len(files.flushes), commit.commits)
	}
	commit.mu.Unlock()
	files.mu.Unlock()

	// A commit point whose stage ended without a writer (it failed): the
	// checkpoint is not taken, and none after it.
	commitStage.mu.Lock()
	commitStage.w = nil
	commitStage.mu.Unlock()
	commitStage.ended.Store(true)
	committed, done, err := c.checkpoint(t.Context(), nil)
	if committed || !done || err != nil {
		t.Errorf("checkpoint with the commit point failed = %v, %v, %v; want not committed, done", committed, done, err)
	}
}
