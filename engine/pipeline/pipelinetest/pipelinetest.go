// Package pipelinetest runs pipeline files in tests: built-in connectors
// in-process, rules in a fresh runtime, Arrow memory checked for leaks.
package pipelinetest

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

type registry struct{ *protocol.Registry }

func (r registry) Connector(_ context.Context, name string) (protocol.Connector, error) {
	return r.Get(name)
}

// Run loads the pipeline file at path, runs it with the built-in
// connectors in-process, and fails the test on any error, including a
// leak of Arrow memory. It returns the run's summary.
func Run(t testing.TB, path string) *stream.Summary {
	t.Helper()
	sum, err := RunErr(t, path)
	if err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	return sum
}

// RunErr is Run for pipelines that are expected to fail: it returns the
// error instead of failing the test (a leak still fails it).
func RunErr(t testing.TB, path string) (*stream.Summary, error) {
	t.Helper()
	return RunWith(t, path, pipeline.RunOptions{})
}

// RunWith is RunErr with run options: a continuous run (an unbounded
// source) is stopped by closing opts.Stop, and then returns
// stream.ErrInterrupted.
func RunWith(t testing.TB, path string, opts pipeline.RunOptions) (*stream.Summary, error) {
	t.Helper()
	sum, _, err := RunCheckpoints(t, path, opts)
	return sum, err
}

// RunCheckpoints is RunWith that also returns the run's checkpoint
// statistics (zero in a batch run).
func RunCheckpoints(t testing.TB, path string, opts pipeline.RunOptions) (*stream.Summary, pipeline.CheckpointStats, error) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(path)
	if err != nil {
		return nil, pipeline.CheckpointStats{}, err
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: registry{builtin.Registry()}, Rules: rt, Mem: mem})
	if err != nil {
		return nil, pipeline.CheckpointStats{}, err
	}
	defer plan.Close(ctx)
	sum, err := plan.Run(ctx, opts)
	return sum, plan.CheckpointStats(), err
}
