package kafka_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// TestTransactionTimeout: a checkpoint whose transaction stays open longer
// than the sink's transaction_timeout (here a checkpoint_interval longer
// than it; on a loaded machine, a slow cut's drain) is aborted by the
// brokers, and its commit fails with INVALID_PRODUCER_EPOCH: the run
// fails, saying which option bounds it. With a timeout that covers the
// interval the same run commits and stops cleanly.
func TestTransactionTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout string
		fails   bool
	}{
		{"1s", true},
		{"30s", false},
	} {
		t.Run(tc.timeout, func(t *testing.T) {
			ctx := testCtx(t)
			c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 1, "out": 1}})
			path := filepath.Join(t.TempDir(), "pipeline.toml")
			c.WritePipeline(t, path, `name = "txn_timeout"
max_delay = "50ms"
checkpoint_interval = "2500ms"
`, `columns = { student_id = "utf8", n = "int64" }
`, "", "events")
			// The sink's options are last in the file.
			if err := appendFile(path, fmt.Sprintf("transaction_timeout = %q\n", tc.timeout)); err != nil {
				t.Fatal(err)
			}
			var vs []string
			for n := range 20 {
				vs = append(vs, fmt.Sprintf(`{"student_id": "S%d", "n": %d}`, n%3, n))
			}
			produce(ctx, t, c, "events", 0, vs...)
			stop := make(chan struct{})
			go func() {
				// Past the first checkpoint (2.5 s after the start).
				time.Sleep(4 * time.Second)
				close(stop)
			}()
			_, err := pipelinetest.RunWith(t, path, pipeline.RunOptions{Stop: stop})
			switch {
			case tc.fails && (err == nil || errors.Is(err, stream.ErrInterrupted)):
				t.Fatalf("run with transaction_timeout %s below checkpoint_interval: err %v, want the commit to fail", tc.timeout, err)
			case tc.fails:
				t.Logf("run failed as expected: %v", err)
				for _, want := range []string{"INVALID_PRODUCER_EPOCH", "transaction_timeout"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %s", err, want)
					}
				}
			case !errors.Is(err, stream.ErrInterrupted):
				t.Fatalf("run with transaction_timeout %s: err %v, want %v", tc.timeout, err, stream.ErrInterrupted)
			}
			_ = ctx
		})
	}
}

// appendFile appends text to the file at path.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	return errors.Join(err, f.Close())
}
