package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// aggregateSigkillEvents is the number of events of
// TestAggregateSIGKILL (VIGIE_AGG_SIGKILL_EVENTS overrides it).
const aggregateSigkillEvents = 150_000

// TestAggregateSIGKILL runs a continuous aggregate (Kafka source →
// [[aggregate]] of hourly windows with count, count_distinct, sum and a
// quantile → Kafka sink, checkpoints every 100ms, state_dir) twice over
// the same events: a reference run, and a run SIGKILLed 3 to 5 times at
// random and restarted until it ends. The windows open at each kill held
// rows read before the last checkpoint; they are restored from the
// checkpoint's aggregate state, so every window's row is the reference's:
// nothing lost, nothing counted twice.
func TestAggregateSIGKILL(t *testing.T) {
	events, rng := sigkillParams(t, "VIGIE_AGG_SIGKILL_EVENTS", aggregateSigkillEvents, 5000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// One partition: the events arrive in event-time order, as a day of
	// entries would, and the windows close one after the other.
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 1, "ref": 3, "killed": 3}})
	cl := c.Client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	base := time.Date(2026, 9, 7, 8, 0, 0, 0, time.UTC)
	for i := range events {
		v := fmt.Sprintf(`{"student_id": "S%05d", "school": "X%02d", "n": %d, "at": %q}`,
			(i*7919)%5000, i%7, i%1000, base.Add(time.Duration(i)*2*time.Second).Format(time.RFC3339))
		cl.Produce(ctx, &kgo.Record{Topic: "events", Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"ref", "killed"} {
		writeAggregatePipeline(t, c, filepath.Join(dir, name+".toml"), name)
	}
	killRuns(ctx, t, c, dir, events, rng)

	ref, killed := readKeyed(ctx, t, c, "ref"), readKeyed(ctx, t, c, "killed")
	// 7 schools, an hour of events (1,800) per window: every school has
	// a row per hour.
	hours := (events*2 + 3599) / 3600
	if n := total(ref); n < 7*hours || n > 7*(hours+1) {
		t.Errorf("reference output: %d rows, want 7 per hour over %d hours", n, hours)
	}
	sameRows(t, ref, killed)
	// The state files of old checkpoints are pruned.
	files, err := filepath.Glob(filepath.Join(dir, "killed.state", "aggregates", "*.gob"))
	if err != nil || len(files) > 1 {
		t.Errorf("aggregate state files left: %q (%v), want the last checkpoint's at most", files, err)
	}
}

// writeAggregatePipeline writes the pipeline of TestAggregateSIGKILL
// named name, writing to topic name keyed by school.
func writeAggregatePipeline(t testing.TB, c *kafkatest.Cluster, path, name string) {
	t.Helper()
	brokers := c.BrokersTOML()
	toml := fmt.Sprintf(`[pipeline]
name = %q
batch_rows = 2048
max_delay = "50ms"
checkpoint_interval = "100ms"
state_dir = "%s.state"
dead_letter = "%s.dead.csv"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %s
topics = ["events"]
stop_at_end = true
columns = { student_id = "utf8", school = "utf8", n = "int64", at = "timestamp_us" }

[[aggregate]]
name = "hourly"
input = "events"
group_by = ["school"]
time_column = "at"
window = "1h"
allowed_lateness = "10m"
measures = ["rows = count()", "students = count_distinct(student_id)", "total = sum(n)", "median = quantile(n, 0.5)"]
min_count = 0

[[sink]]
name = "out"
input = "hourly"
connector = "kafka_topic"
[sink.options]
brokers = %s
topic = %q
key_column = "school"
`, name, name, name, brokers, brokers, name)
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
}
