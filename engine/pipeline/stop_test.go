package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
)

// TestStopDuringEndlessRuleCall stops a run while an endless-loop rule
// call is under way (its time limit is 10 minutes): a graceful stop ends
// within stop_timeout, an abort at once, both interrupting the call.
func TestStopDuringEndlessRuleCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		abort bool
		want  error
	}{
		{"graceful stop past stop_timeout", false, stream.ErrInterrupted},
		{"abort", true, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := setupX(t, 2000, hostileRule("loop", "[rule.limits]\ntimeout = \"10m\""), parquetSink, negative)
			plan := prepare(t, cfg, mem, nil)
			defer plan.Close(context.Background())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				_, err := plan.Run(ctx, pipeline.RunOptions{Stop: stop, StopTimeout: time.Second})
				done <- err
			}()
			time.Sleep(500 * time.Millisecond) // the rule call has started: it never returns
			if tc.abort {
				cancel()
			} else {
				close(stop)
			}
			// A ceiling on a hang, far below the rule's time limit.
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if !tc.abort && !strings.Contains(err.Error(), "stop_timeout (1s)") {
					t.Errorf("err = %v, want it to name stop_timeout", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("the run did not stop")
			}
		})
	}
}
