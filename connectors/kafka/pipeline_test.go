package kafka_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// TestPipeline runs a pipeline file, Kafka to Kafka, through the engine
// with the built-in connectors: every good message reaches the output
// topic once, keyed by student, and the bad ones are counted as dead
// letters.
func TestPipeline(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 3, "out": 3}})
	var want []string
	for p := range int32(3) {
		var vs []string
		for i := range 50 {
			id := fmt.Sprintf("S%d", int(p)*1000+i%7)
			vs = append(vs, fmt.Sprintf(`{"student_id": %q, "n": %d}`, id, i))
			want = append(want, fmt.Sprintf(`{"n":%d,"student_id":%q}`, i, id))
		}
		vs = append(vs, `{"student_id": 5}`)
		produce(ctx, t, c, "events", p, vs...)
	}
	brokers := `["` + strings.Join(c.Addrs, `", "`) + `"]`
	dir := t.TempDir()
	toml := fmt.Sprintf(`[pipeline]
name = "kafka_copy"
batch_rows = 16
dead_letter = "dead.csv"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %s
topics = ["events"]
columns = { student_id = "utf8", n = "int64" }
stop_at_end = true

[[sink]]
name = "out"
input = "events"
connector = "kafka_topic"
[sink.options]
brokers = %s
topic = "out"
key_column = "student_id"
`, brokers, brokers)
	path := filepath.Join(dir, "pipeline.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := pipelinetest.Run(t, path)
	if src, snk := sum.Stages[0], sum.Stages[1]; src.RowsOut != 150 || src.DeadLettered != 3 || snk.RowsOut != 150 {
		t.Errorf("summary: %+v, want 150 rows from the source, 3 dead letters, 150 rows written", sum.Stages)
	}

	var got []string
	for _, r := range c.ReadCommitted(ctx, t, "out", len(want)) {
		if !strings.Contains(string(r.Value), `"student_id":"`+string(r.Key)+`"`) {
			t.Errorf("key %q, value %s", r.Key, r.Value)
		}
		got = append(got, string(r.Value))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("output differs:\n got %q\nwant %q", got, want)
	}
	dead, err := os.ReadFile(filepath.Join(dir, "dead.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(dead), "expected utf8"); n != 3 {
		t.Errorf("dead letters:\n%s\nwant 3 rows saying expected utf8", dead)
	}
}
