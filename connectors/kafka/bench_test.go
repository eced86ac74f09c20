package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
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
