package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/rules/host/hosttest"
)

// containmentCeiling is how long a run over a rule that misbehaves on
// every call may take with default settings (issue 12). It is a ceiling on
// a hang, not a speed claim: the runs below take about 10 s at most (one
// call up to the default time limit).
const containmentCeiling = 30 * time.Second

// TestContainment runs each hostile behaviour of rules/host/testdata as a
// map rule over 2,000 rows, every one of them poison, with default
// settings (batch size, workers, limits, bisection budget, dead letter
// threshold). Each run must end within the ceiling, without a panic, with
// an error that names the stage, the rule and its module hash, and for
// vigie.fail the rule's own message.
func TestContainment(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an endless loop up to the 10 s time limit")
	}
	for _, tc := range []struct {
		behaviour, module string
		want              string // in the error, besides the rule
	}{
		{"endless loop", "loop", "time limit of 10s per call"},
		{"memory bomb", "memory_bomb", "memory limit of 4096 pages"},
		{"trap", "trap", "unreachable"},
		{"pointer out of memory", "out_of_bounds", "outside"},
		{"invalid UTF-8", "bad_utf8", "UTF-8"},
		{"error with a message", "fail", "bad batch: x is negative"},
	} {
		t.Run(tc.behaviour, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := hostilePipeline(t, tc.module, 2000)
			plan := prepare(t, cfg, mem, nil)
			defer plan.Close(context.Background())
			type result struct {
				sum *stream.Summary
				err error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
				done <- result{sum, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(containmentCeiling):
				t.Fatalf("%s: the run did not end within %s", tc.behaviour, containmentCeiling)
			}
			wall := time.Since(start)
			t.Logf("%s: %s, %s", tc.behaviour, wall.Round(time.Millisecond), r.sum.Line())
			if r.err == nil || r.sum.Status() != "failed" {
				t.Fatalf("a rule failing on every row ended the run with %v: %s", r.err, r.sum.Line())
			}
			msg := r.err.Error()
			for _, w := range []string{`stage "r": rule hostile 0.0.1 (sha256 `, "rows dead-lettered (100.0%)", tc.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "panic") {
				t.Errorf("the engine panicked: %s", msg)
			}
		})
	}
}

// hostilePipeline writes a CSV of n rows whose x are all negative (poison
// for every hostile module) and a pipeline with default settings that runs
// module of rules/host/testdata on it.
func hostilePipeline(t *testing.T, module string, n int) *config.Pipeline {
	t.Helper()
	return pipelineIn(t, "in.csv", hosttest.PoisonCSV(n), fmt.Sprintf(`[pipeline]
name = "hostile"

[[source]]
name = "in"
connector = "csv"
[source.options]
path = "in.csv"
columns = { x = "int32" }

[[rule]]
name = "r"
input = "in"
module = %q

[[sink]]
name = "out"
input = "r"
connector = "parquet"
[sink.options]
path = "out/r.parquet"
`, hosttest.Module(t, module)))
}
