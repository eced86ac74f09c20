package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// Scale-out figures (issue 15). Both start `vigie run` processes of the
// scaled map-rule pipeline of the scale-out tests (Kafka → bench_map →
// Kafka, per-partition checkpoints every 100 ms, 12 partitions, 3 kfake
// brokers in the benchmark process) over pre-produced events of 10K
// students; VIGIE_BENCH_EVENTS sets how many (default 1M).
//
//	go test ./cmd/vigie -run '^$' -bench ScaleOutThroughput -benchtime 1x
//	go test ./cmd/vigie -run '^$' -bench ScaleOutFailover -benchtime 3x

func benchScaleOut(b *testing.B, events int) *scaleOut {
	b.Helper()
	vigie(b) // built once, outside the timings
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	b.Cleanup(cancel)
	c := kafkatest.Start(b, kafkatest.Config{
		Brokers: 3,
		Topics:  map[string]int32{"events": sigkillPartitions, "ref": sigkillPartitions, "scale": sigkillPartitions},
		Extra:   []kfake.Opt{kfake.GroupMinSessionTimeout(500 * time.Millisecond)},
	})
	s := &scaleOut{t: b, ctx: ctx, c: c, dir: b.TempDir(), events: events, rng: rand.New(rand.NewPCG(15, 15))}
	s.write("scale", true)
	s.produce(0, events)
	return s
}

func benchEvents(b *testing.B) int {
	b.Helper()
	events := 1_000_000
	if v := os.Getenv("VIGIE_BENCH_EVENTS"); v != "" {
		var err error
		if events, err = strconv.Atoi(v); err != nil {
			b.Fatalf("VIGIE_BENCH_EVENTS=%q: %v", v, err)
		}
	}
	return events
}

// BenchmarkScaleOutThroughput: 1, 2 and 3 instances started together over
// the same input; events/s from the first start to the per-partition
// checkpoint records covering every event (process start, group joins and
// the first rebalances included).
func BenchmarkScaleOutThroughput(b *testing.B) {
	events := benchEvents(b)
	for _, k := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("instances=%d", k), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s := benchScaleOut(b, events)
				b.StartTimer()
				start := time.Now()
				var running []*instance
				for range k {
					running = append(running, s.start())
				}
				s.waitCovered(events, running)
				el := time.Since(start)
				b.StopTimer()
				for _, in := range running {
					in.kill()
					<-in.exited
				}
				b.ReportMetric(float64(events)/el.Seconds(), "events/s")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkScaleOutFailover: three instances; once a third of the input is
// covered one is SIGKILLed (with its plugins); the time from the kill to
// every partition's checkpoint record moving past where it was at the
// kill (so the dead instance's partitions producing again on the
// survivors): the session timeout (2 s here, session_timeout), the
// rebalance, fencing and the checkpoint read, one checkpoint.
func BenchmarkScaleOutFailover(b *testing.B) {
	events := benchEvents(b)
	for b.Loop() {
		b.StopTimer()
		s := benchScaleOut(b, events)
		running := []*instance{s.start(), s.start(), s.start()}
		s.members(3)
		s.waitCovered(events/3, running)
		at := partitionCheckpoints(s.ctx, b, s.c, "scale")
		b.StartTimer()
		start := time.Now()
		running[0].kill()
		<-running[0].exited
		for {
			now := partitionCheckpoints(s.ctx, b, s.c, "scale")
			moved := 0
			for p, next := range at {
				if now[p] > next {
					moved++
				}
			}
			if moved == len(at) {
				break
			}
			if s.covered() >= int64(events) {
				b.Fatal("the input ended before every partition moved: raise VIGIE_BENCH_EVENTS")
			}
			time.Sleep(10 * time.Millisecond)
		}
		el := time.Since(start)
		b.StopTimer()
		for _, in := range running[1:] {
			in.kill()
			<-in.exited
		}
		b.ReportMetric(float64(el.Milliseconds()), "failover-ms")
		b.StartTimer()
	}
}
