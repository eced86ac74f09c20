package kafka_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/engine/stream"
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
	path := filepath.Join(t.TempDir(), "pipeline.toml")
	c.WritePipeline(t, path, `name = "kafka_copy"
batch_rows = 16
dead_letter = "dead.csv"
`, `columns = { student_id = "utf8", n = "int64" }
stop_at_end = true
`, "", "events")
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
	dead, err := os.ReadFile(filepath.Join(filepath.Dir(path), "dead.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(dead), "expected utf8"); n != 3 {
		t.Errorf("dead letters:\n%s\nwant 3 rows saying expected utf8", dead)
	}
}

// TestContinuousRun runs a pipeline whose Kafka source never ends (no
// stop_at_end) through the engine, a map rule (bench_map: score = 0.5a +
// 0.3b + 0.2c) and a Kafka sink, with batch_rows far above what arrives,
// so that only max_delay sends batches on and only the sink's timed flush
// commits them: records produced while it runs must appear in the output
// topic (read_committed) while it still runs. A graceful stop then drains
// and returns stream.ErrInterrupted with every row read written; the rows
// produced just before the stop and not yet handed to the engine are read
// by the next run of the group, so that over both runs every record
// produced is in the output exactly once.
func TestContinuousRun(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 3, "out": 3}})
	path := filepath.Join(t.TempDir(), "pipeline.toml")
	c.WritePipeline(t, path, `name = "kafka_live"
batch_rows = 100000
max_delay = "50ms"
stop_timeout = "30s"
dead_letter = "dead.csv"
`, `group = "vigie-live"
columns = { student_id = "utf8", n = "int64", a = "float64", b = "float64", c = "float64" }
`, fmt.Sprintf(`[[rule]]
name = "score"
input = "events"
module = %q
`, mapRule(t)), "score")

	out := c.CommittedConsumer(t, "out")
	seen := map[int64]int{} // output row n → times read
	var produced []int64    // n of the rows expected, in production order
	n := 0
	// wave produces per records to each partition and returns their
	// output values.
	wave := func(per int) []int64 {
		var vals []int64
		for p := range int32(3) {
			var vs []string
			for range per {
				id := fmt.Sprintf("S%d", n%11)
				vs = append(vs, fmt.Sprintf(`{"student_id": %q, "n": %d, "a": 0.5, "b": %g, "c": 1}`, id, n, float64(n%10)/10))
				vals = append(vals, int64(n))
				n++
			}
			produce(ctx, t, c, "events", p, vs...)
		}
		produced = append(produced, vals...)
		return vals
	}
	poll := func() {
		kafkatest.Poll(ctx, t, out, 500*time.Millisecond, func(r *kgo.Record) {
			var row struct {
				N       int64
				B       float64
				Score   float64
				Student string `json:"student_id"`
			}
			if err := json.Unmarshal(r.Value, &row); err != nil {
				t.Fatalf("output %s: %v", r.Value, err)
			}
			if want := 0.5*0.5 + 0.3*row.B + 0.2*1; math.Abs(row.Score-want) > 1e-9 || row.Student != string(r.Key) {
				t.Errorf("output %s (key %s): want score %g and the student as key", r.Value, r.Key, want)
			}
			seen[row.N]++
		})
	}
	// arrive polls the output until every value is in it, failing if the
	// run ends or the test's deadline passes first.
	type result struct {
		sum *stream.Summary
		err error
	}
	arrive := func(done <-chan result, vals []int64) {
		t.Helper()
		for {
			missing := 0
			for _, v := range vals {
				if seen[v] == 0 {
					missing++
				}
			}
			if missing == 0 {
				return
			}
			select {
			case r := <-done:
				t.Fatalf("the run ended (%v) with %d of %d records not in the output", r.err, missing, len(vals))
			default:
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d records produced during the run never reached the output", missing, len(vals))
			}
			poll()
		}
	}
	start := func() (chan struct{}, <-chan result) {
		stop := make(chan struct{})
		done := make(chan result, 1)
		go func() {
			sum, err := pipelinetest.RunWith(t, path, pipeline.RunOptions{Stop: stop})
			done <- result{sum, err}
		}()
		return stop, done
	}
	finish := func(stop chan struct{}, done <-chan result) *stream.Summary {
		t.Helper()
		close(stop)
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			t.Fatal("the run did not stop")
		}
		if !errors.Is(r.err, stream.ErrInterrupted) {
			t.Fatalf("stopped run: err %v, want %v", r.err, stream.ErrInterrupted)
		}
		// Drained: every row the source handed over was written.
		if src, snk := stage(r.sum, "events"), stage(r.sum, "out"); src.RowsOut != snk.RowsOut || snk.RowsOut == 0 {
			t.Errorf("summary %+v: rows read and written differ", r.sum.Stages)
		}
		return r.sum
	}

	stop, done := start()
	arrive(done, wave(5))
	arrive(done, wave(7))
	tail := wave(3) // produced just before the stop, not waited for
	sum1 := finish(stop, done)

	stop, done = start()
	arrive(done, tail)
	arrive(done, wave(4))
	sum2 := finish(stop, done)

	w1, w2 := stage(sum1, "out").RowsOut, stage(sum2, "out").RowsOut
	if w1+w2 != int64(len(produced)) {
		t.Errorf("rows written over both runs: %d + %d, want %d (each record once)", w1, w2, len(produced))
	}
	// Both runs' outputs are committed: read to the end and count.
	for range 3 {
		poll()
	}
	for _, v := range produced {
		if seen[v] != 1 {
			t.Errorf("row n=%d is %d times in the output, want once", v, seen[v])
		}
	}
	if len(seen) != len(produced) {
		t.Errorf("output has %d distinct records, want %d", len(seen), len(produced))
	}
}

// stage returns the summary of the stage called name.
func stage(sum *stream.Summary, name string) stream.StageSummary {
	for _, st := range sum.Stages {
		if st.Name == name {
			return st
		}
	}
	return stream.StageSummary{}
}

// mapRule returns the absolute path of the prebuilt WAT benchmark map rule
// (inputs a, b, c; outputs score, flag).
func mapRule(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckpointsWithDimension runs a Kafka → join (a CSV roster as
// dimension) → Kafka pipeline twice with checkpoints every millisecond:
// the dimension's source is read whole at each run (the join keeps it in
// memory, no checkpoint holds it), so the second run, which resumes the
// Kafka source from the first run's last checkpoint, still enriches its
// rows; and a checkpoint taken while the dimension loads does not wait for
// the join's input (read only after the dimension) forever.
func TestCheckpointsWithDimension(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 2, "out": 2}})
	dir := t.TempDir()
	var roster strings.Builder
	roster.WriteString("student_id,class_id\n")
	for i := range 20000 {
		fmt.Fprintf(&roster, "S%d,C%d\n", i, i%30)
	}
	if err := os.WriteFile(filepath.Join(dir, "roster.csv"), []byte(roster.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pipeline.toml")
	c.WritePipeline(t, path, `name = "kafka_dim"
batch_rows = 64
checkpoint_interval = "1ms"
`, `columns = { student_id = "utf8", n = "int64" }
stop_at_end = true
`, `[[source]]
name = "roster"
connector = "csv"
[source.options]
path = "roster.csv"
columns = { student_id = "utf8", class_id = "utf8" }

[[join]]
name = "enriched"
input = "events"
dimension = "roster"
on = ["student_id"]
`, "enriched")
	n := 0
	wave := func(count int) {
		var vs []string
		for range count {
			vs = append(vs, fmt.Sprintf(`{"student_id": "S%d", "n": %d}`, n*7%20000, n))
			n++
		}
		produce(ctx, t, c, "events", int32(n%2), vs...)
	}
	wave(300)
	pipelinetest.Run(t, path)
	wave(200)
	sum := pipelinetest.Run(t, path)
	if got := stage(sum, "events").RowsOut; got != 200 {
		t.Errorf("second run read %d events, want the 200 produced since the first run's last checkpoint", got)
	}
	seen := map[int]bool{}
	for _, r := range c.ReadCommitted(ctx, t, "out", 500) {
		var row struct {
			N       int
			Student string  `json:"student_id"`
			Class   *string `json:"class_id"`
		}
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatal(err)
		}
		var id int
		fmt.Sscanf(row.Student, "S%d", &id)
		if row.Class == nil || *row.Class != fmt.Sprintf("C%d", id%30) {
			t.Errorf("row %s: want class C%d from the roster", r.Value, id%30)
		}
		if seen[row.N] {
			t.Errorf("row n=%d twice", row.N)
		}
		seen[row.N] = true
	}
	if len(seen) != 500 {
		t.Errorf("%d distinct rows in the output, want 500", len(seen))
	}
}

// TestCheckpointsToFile runs a Kafka → CSV file pipeline twice: without a
// Kafka sink the checkpoint record is checkpoint.json in state_dir. The
// second run resumes the source from the recorded offsets and, the first
// run having ended cleanly (its file put in place), goes on with that
// file from its last checkpoint: the file then holds every event once,
// those of the first run and those produced since.
func TestCheckpointsToFile(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 2}})
	dir := t.TempDir()
	brokers := c.BrokersTOML()
	toml := fmt.Sprintf(`[pipeline]
name = "kafka_file"
batch_rows = 16
checkpoint_interval = "5ms"
state_dir = "state"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %s
topics = ["events"]
stop_at_end = true
columns = { student_id = "utf8", n = "int64" }

[[sink]]
name = "file"
input = "events"
connector = "csv_file"
[sink.options]
path = "out.csv"
`, brokers)
	path := filepath.Join(dir, "pipeline.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	wave := func(count int) {
		for p := range int32(2) {
			var vs []string
			for range count / 2 {
				vs = append(vs, fmt.Sprintf(`{"student_id": "S%d", "n": %d}`, n%13, n))
				n++
			}
			produce(ctx, t, c, "events", p, vs...)
		}
	}
	wave(400)
	pipelinetest.Run(t, path)
	if _, err := os.Stat(filepath.Join(dir, "state", "checkpoint.json")); err != nil {
		t.Fatalf("no checkpoint record: %v", err)
	}
	wave(200)
	sum := pipelinetest.Run(t, path)
	if got := stage(sum, "events").RowsOut; got != 200 {
		t.Errorf("second run read %d events, want the 200 produced since the first run", got)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != "n,student_id" {
		t.Errorf("header %q", lines[0])
	}
	// The second run went on with the first run's file (its last
	// checkpoint kept the file's position): every event once.
	seen := map[int]bool{}
	for _, l := range lines[1:] {
		var id, m int
		if _, err := fmt.Sscanf(l, "%d,S%d", &m, &id); err != nil || m < 0 || m >= 600 || seen[m] {
			t.Errorf("line %q: want each of the events 0..599 once", l)
		}
		seen[m] = true
	}
	if len(seen) != 600 {
		t.Errorf("%d rows, want the 400 events of the first run and the 200 of the second", len(seen))
	}
}

// TestCheckpointsOneKafkaSink: a continuous pipeline with two Kafka sinks
// has no single commit point for its checkpoints; Prepare refuses it,
// naming the key and both sinks.
func TestCheckpointsOneKafkaSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipeline.toml")
	toml := `[pipeline]
name = "two_sinks"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = ["localhost:1"]
topics = ["events"]
columns = { student_id = "utf8" }
`
	for _, name := range []string{"a", "b"} {
		toml += fmt.Sprintf(`
[[sink]]
name = %q
input = "events"
connector = "kafka_topic"
[sink.options]
brokers = ["localhost:1"]
topic = %q
`, name, name)
	}
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := pipelinetest.RunErr(t, path)
	if err == nil || !strings.Contains(err.Error(), "pipeline.checkpoint_interval") || !strings.Contains(err.Error(), `["a" "b"]`) {
		t.Errorf("err = %v, want a refusal naming checkpoint_interval and both sinks", err)
	}
}
