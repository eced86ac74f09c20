package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// TestEngineSIGKILLLate: a per-row group rule with allowed_lateness and
// late = "dead_letter" (engine/pipeline/testdata/trend) behind the Kafka
// source, its outputs to a Kafka topic, SIGKILLed 3 times (fewer when a
// run ends first; at least one) and
// restarted. Few students and 12 partitions make each partition's
// watermark move days between two checkpoints, and the kills fall up to
// 0.9 s into a 1 s checkpoint interval, so a killed run has moved it past
// its last checkpoint: the restart must judge
// the replayed rows late as the reference run did (it rolls the
// watermarks back to the checkpoint). The outputs must be equal row for
// row per student, and the late rows dead-lettered are the same, once.
// Without the roll back it fails (seen: 172 of 500 students differ, 28,961
// rows dead-lettered as late instead of 9,312).
func TestEngineSIGKILLLate(t *testing.T) {
	events, rng := sigkillParams(t, "VIGIE_SIGKILL_LATE_EVENTS", sigkillLateEvents, sigkillLateStudents)
	rule := hosttest.BuildGoRule(t, filepath.Join("..", "..", "engine", "pipeline", "testdata", "trend"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions, "ref": sigkillPartitions, "killed": sigkillPartitions}})
	cl := c.Client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	day0 := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		// Days in order, but one event in seven is 1 to 6 days behind
		// its place: with allowed_lateness 2d, some of them are late.
		s, day := i%sigkillLateStudents, i/sigkillLateStudents
		if (i*7919)%7 == 3 {
			day = max(0, day-1-(i*31)%6)
		}
		id := fmt.Sprintf("S%04d", s)
		v := fmt.Sprintf(`{"student_id": %q, "date": %q, "x": %d}`, id, day0.AddDate(0, 0, day).Format(time.DateOnly), i)
		cl.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte(id), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	brokers := c.BrokersTOML()
	for _, name := range []string{"ref", "killed"} {
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(latePipeline(name, brokers, rule)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Killed well inside a checkpoint interval (1 s), so that the killed
	// run went days past its last checkpoint in every partition.
	covered := func() int64 {
		_, n := lastCheckpoint(ctx, t, c, "killed.checkpoints")
		return n
	}
	interruptRuns(ctx, t, dir, events, rng, covered, []syscall.Signal{syscall.SIGKILL, syscall.SIGKILL, syscall.SIGKILL}, 900*time.Millisecond)

	ref, killed := readToEnd(ctx, t, c, "ref"), readToEnd(ctx, t, c, "killed")
	sameRows(t, ref, killed)
	late := func(name string) map[string]int {
		t.Helper()
		path := filepath.Join(dir, name+".dead.csv")
		rows := readback.CSV(t, path)
		if len(rows) == 0 {
			t.Fatalf("%s: empty", path)
		}
		col := readback.Columns(rows[0])
		out := map[string]int{}
		for _, r := range rows[1:] {
			out[r[col["origin"]]+" "+r[col["line"]]]++
		}
		return out
	}
	refLate, killedLate := late("ref"), late("killed")
	t.Logf("reference: %d rows out, %d late rows dead-lettered", total(ref), len(refLate))
	if len(refLate) == 0 {
		t.Fatal("the reference run found no late row: the test data do not test lateness")
	}
	diff := 0
	for k, n := range killedLate {
		if n != 1 || refLate[k] != 1 {
			if diff++; diff <= 5 {
				t.Errorf("late row %s: dead-lettered %d times after the kills, %d in the reference run", k, n, refLate[k])
			}
		}
	}
	for k := range refLate {
		if killedLate[k] == 0 {
			if diff++; diff <= 5 {
				t.Errorf("late row %s: dead-lettered in the reference run only", k)
			}
		}
	}
	if diff > 0 {
		t.Errorf("%d late rows differ (%d dead-lettered after the kills, %d in the reference run)", diff, len(killedLate), len(refLate))
	}
}

// TestEngineSIGKILLLate's default size: 500 students, so that a day is
// about 42 events of each of the 12 partitions.
const (
	sigkillLateEvents   = 100_000
	sigkillLateStudents = 500
)

// latePipeline is TestEngineSIGKILLLate's pipeline named name.
func latePipeline(name, brokers, rule string) string {
	return fmt.Sprintf(`[pipeline]
name = %[1]q
batch_rows = 256
max_delay = "50ms"
checkpoint_interval = "1s"
dead_letter = "%[1]s.dead.csv"
state_dir = "%[1]s.state"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %[2]s
topics = ["events"]
stop_at_end = true
metadata = ["partition", "offset"]
columns = { student_id = "utf8", date = "date32", x = "int32" }

[[rule]]
name = "trend"
input = "events"
module = %[3]q
group_by = ["student_id"]
order_by = "date"
emit = "per_row"
keep_state = true
partition_column = "kafka_partition"
offset_column = "kafka_offset"
allowed_lateness = "2d"
late = "dead_letter"

[[sink]]
name = "out"
input = "trend"
connector = "kafka_topic"
[sink.options]
brokers = %[2]s
topic = %[1]q
key_column = "student_id"
`, name, brokers, rule)
}
