package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// BenchmarkPipelineKafkaToKafka measures a pipeline file that copies JSON
// events from one topic to another (12 partitions each, 3 brokers) through
// the engine, connectors in-process, kfake in the same process: events/s
// from the first read to the last transaction committed. No rule and no
// checkpoints: the floor under issue 14's Kafka → rule → Kafka figure.
//
//	go test ./connectors/kafka -run '^$' -bench PipelineKafkaToKafka -benchtime 3x
func BenchmarkPipelineKafkaToKafka(b *testing.B) {
	const n = 200_000
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		c := kafkatest.Start(b, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 12, "out": 12}})
		cl := c.Client(b, kgo.ProducerLinger(5*time.Millisecond))
		for i := range n {
			v := fmt.Sprintf(`{"student_id": "S%06d", "date": "2025-09-%02d", "half": "AM", "justified": %t}`, i%10000, 1+i%28, i%3 == 0)
			cl.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprintf("S%06d", i%10000)), Value: []byte(v)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "pipeline.toml")
		c.WritePipeline(b, path, `name = "bench"
`, `columns = { student_id = "utf8", date = "date32", half = "utf8", justified = "bool" }
stop_at_end = true
`, "", "events")
		b.StartTimer()
		start := time.Now()
		sum := pipelinetest.Run(b, path)
		el := time.Since(start)
		b.StopTimer()
		if got := sum.Stages[1].RowsOut; got != n {
			b.Fatalf("wrote %d rows, want %d", got, n)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		b.StartTimer()
	}
}

// benchEvents produces n JSON events of 10K students (inputs of the
// bench_map rule, plus ts: the produce time in µs) to topic "events".
func benchEvents(ctx context.Context, b *testing.B, cl *kgo.Client, n int) {
	b.Helper()
	for i := range n {
		id := fmt.Sprintf("S%05d", i%10000)
		v := fmt.Sprintf(`{"student_id": %q, "n": %d, "ts": %d, "a": 0.5, "b": %g, "c": 1}`, id, i, time.Now().UnixMicro(), float64(i%10)/10)
		cl.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte(id), Value: []byte(v)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

const benchColumns = `columns = { student_id = "utf8", n = "int64", ts = "int64", a = "float64", b = "float64", c = "float64" }
`

func benchRule(b *testing.B) string {
	b.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("[[rule]]\nname = \"score\"\ninput = \"events\"\nmodule = %q\n", p)
}

// percentile returns the p-th percentile (0-100) of ds, sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p/100))]
}

// BenchmarkKafkaMapRuleExactlyOnce is figure 1 of issue 14: Kafka → map
// rule (bench_map) → Kafka with checkpoints (the default 500ms interval,
// each committed in the sink's transaction with its checkpoint record),
// 1M JSON events of 10K students pre-produced to 12 partitions, 3 kfake
// brokers and the built-in connectors in the benchmark's process:
// events/s from the start of the run to its last commit, and the pause of
// the sources at each checkpoint.
//
//	go test ./connectors/kafka -run '^$' -bench KafkaMapRuleExactlyOnce -benchtime 3x
func BenchmarkKafkaMapRuleExactlyOnce(b *testing.B) {
	const n = 1_000_000
	// VIGIE_BENCH_CHECKPOINT_INTERVAL compares intervals ("1h": a single
	// checkpoint, at the end).
	interval := "500ms"
	if s := os.Getenv("VIGIE_BENCH_CHECKPOINT_INTERVAL"); s != "" {
		interval = s
	}
	ctx := context.Background()
	rule := benchRule(b)
	for b.Loop() {
		b.StopTimer()
		c := kafkatest.Start(b, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 12, "out": 12}})
		benchEvents(ctx, b, c.Client(b, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20)), n)
		path := filepath.Join(b.TempDir(), "pipeline.toml")
		c.WritePipeline(b, path, fmt.Sprintf(`name = "bench_eo"
checkpoint_interval = %q
batch_rows = 8192
`, interval), benchColumns+"stop_at_end = true\n", rule, "score")
		b.StartTimer()
		start := time.Now()
		sum, cps, err := pipelinetest.RunCheckpoints(b, path, pipeline.RunOptions{Buffer: benchBuffer()})
		el := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if got := sum.Stages[len(sum.Stages)-1].RowsOut; got != n {
			b.Fatalf("wrote %d rows, want %d", got, n)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		b.ReportMetric(float64(cps.Taken), "checkpoints")
		b.ReportMetric(float64(percentile(cps.Pauses, 50).Microseconds())/1000, "pause-p50-ms")
		b.ReportMetric(float64(percentile(cps.Pauses, 99).Microseconds())/1000, "pause-p99-ms")
		b.StartTimer()
	}
}

// BenchmarkKafkaLatencyExactlyOnce is figure 3 of issue 14 for the map
// rule: the pipeline of figure 1 runs continuously while events are
// produced at VIGIE_BENCH_RATE events/s (default 100000, half of figure
// 1's target) for 10 s; a read_committed consumer of the output records,
// for each row, the time it became visible minus its produce time (the
// ts column, carried through the rule). p50/p99 after a 2 s warm-up, and
// the checkpoint pauses.
//
//	go test ./connectors/kafka -run '^$' -bench KafkaLatencyExactlyOnce -benchtime 1x
func BenchmarkKafkaLatencyExactlyOnce(b *testing.B) {
	rate := 100_000
	if s := os.Getenv("VIGIE_BENCH_RATE"); s != "" {
		var err error
		if rate, err = strconv.Atoi(s); err != nil || rate <= 0 {
			b.Fatalf("VIGIE_BENCH_RATE=%q: want events per second", s)
		}
	}
	const (
		run    = 10 * time.Second
		warmup = 2 * time.Second
		tick   = 10 * time.Millisecond
	)
	ctx := context.Background()
	rule := benchRule(b)
	for b.Loop() {
		c := kafkatest.Start(b, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 12, "out": 12}})
		path := filepath.Join(b.TempDir(), "pipeline.toml")
		c.WritePipeline(b, path, `name = "bench_latency"
checkpoint_interval = "500ms"
batch_rows = 8192
max_delay = "50ms"
`, benchColumns, rule, "score")
		stop := make(chan struct{})
		type result struct {
			cps pipeline.CheckpointStats
			err error
		}
		done := make(chan result, 1)
		go func() {
			_, cps, err := pipelinetest.RunCheckpoints(b, path, pipeline.RunOptions{Stop: stop})
			done <- result{cps, err}
		}()
		// The producer: rate/100 events every 10ms.
		prod := c.Client(b, kgo.ProducerLinger(time.Millisecond))
		pctx, pcancel := context.WithTimeout(ctx, run)
		var produced atomic.Int64
		go func() {
			t := time.NewTicker(tick)
			defer t.Stop()
			per, i := rate*int(tick)/int(time.Second), 0
			for {
				select {
				case <-pctx.Done():
					return
				case <-t.C:
				}
				for range per {
					id := fmt.Sprintf("S%05d", i%10000)
					v := fmt.Sprintf(`{"student_id": %q, "n": %d, "ts": %d, "a": 0.5, "b": 0.1, "c": 1}`, id, i, time.Now().UnixMicro())
					prod.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte(id), Value: []byte(v)}, nil)
					i++
				}
				produced.Store(int64(i))
			}
		}()
		out := c.CommittedConsumer(b, "out")
		begin := time.Now()
		var lat []time.Duration
		var seen int64
		for time.Since(begin) < run+2*time.Second {
			kafkatest.Poll(ctx, b, out, 200*time.Millisecond, func(r *kgo.Record) {
				now := time.Now()
				seen++
				if now.Sub(begin) < warmup {
					return
				}
				var row struct{ TS int64 }
				if err := json.Unmarshal(r.Value, &row); err != nil {
					b.Fatalf("output %s: %v", r.Value, err)
				}
				lat = append(lat, now.Sub(time.UnixMicro(row.TS)))
			})
		}
		pcancel()
		close(stop)
		res := <-done
		if res.err != nil && !errors.Is(res.err, stream.ErrInterrupted) {
			b.Fatal(res.err)
		}
		b.ReportMetric(float64(produced.Load())/run.Seconds(), "produced/s")
		b.ReportMetric(float64(seen), "rows-read")
		b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "latency-p50-ms")
		b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "latency-p99-ms")
		b.ReportMetric(float64(percentile(res.cps.Pauses, 50).Microseconds())/1000, "pause-p50-ms")
		b.ReportMetric(float64(percentile(res.cps.Pauses, 99).Microseconds())/1000, "pause-p99-ms")
	}
}

// benchBuffer is VIGIE_BENCH_BUFFER, the channel capacity in batches (0:
// the engine's default, 4).
func benchBuffer() int {
	n, _ := strconv.Atoi(os.Getenv("VIGIE_BENCH_BUFFER"))
	return n
}
