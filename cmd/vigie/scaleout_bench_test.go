package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// BenchmarkScaleOutRestore: the restore time of moved partitions with
// keyed state. The stateful pipeline of TestScaleOutSIGKILLState
// (lastalerts per row, alerts stage) over VIGIE_BENCH_STUDENTS students
// (default 100K) with VIGIE_BENCH_EVENTS events (default 300K: three per
// student, each student then holds three timeline rows and one announced
// alert). One instance processes them all and is SIGKILLed; 2,000 more
// events, each opening an alert, are produced (every partition gets some); a second instance with
// an empty state directory (another machine) is started in a new group
// (so no session timeout is waited for) and takes the 12 partitions:
// the time from its start to every partition's checkpoint record moving
// past where it was, i.e. the instance producing again. With restore =
// "replay" it first re-reads every partition from its start (the whole
// state rebuilt); restore=none is the same without (the state not
// restored: what a stateless pipeline pays), the baseline of process
// start, group join, fencing and one checkpoint.
//
//	go test ./cmd/vigie -run '^$' -bench ScaleOutRestore -benchtime 1x
func BenchmarkScaleOutRestore(b *testing.B) {
	events, students := 300_000, 100_000
	if v := os.Getenv("VIGIE_BENCH_EVENTS"); v != "" {
		events = benchEvents(b)
	}
	if v := os.Getenv("VIGIE_BENCH_STUDENTS"); v != "" {
		var err error
		if students, err = strconv.Atoi(v); err != nil || students <= 0 {
			b.Fatalf("VIGIE_BENCH_STUDENTS=%q: want a positive number", v)
		}
	}
	const tail = 2000
	for _, restore := range []string{"replay", "none"} {
		b.Run("restore="+restore, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				vigie(b)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				c := kafkatest.Start(b, kafkatest.Config{
					Brokers: 3,
					Topics:  map[string]int32{"events": sigkillPartitions, "scale": sigkillPartitions},
					Extra:   []kfake.Opt{kfake.GroupMinSessionTimeout(500 * time.Millisecond)},
				})
				s := &scaleOut{t: b, ctx: ctx, c: c, dir: b.TempDir(), events: events, rng: rand.New(rand.NewPCG(15, 15)),
					stateful: true, students: students}
				s.write("scale", true)
				s.produce(0, events)
				first := s.start()
				fill := time.Now()
				s.waitCovered(events, []*instance{first})
				b.Logf("%d events of %d students processed by one instance in %s", events, students, time.Since(fill).Round(time.Millisecond))
				first.kill()
				<-first.exited
				at := partitionCheckpoints(ctx, b, c, "scale")
				// The tail opens an alert for tail students (phase 1 of
				// statefulEvent), so it has output with or without the
				// state and every partition's record moves.
				k := (events + students - 1) / students
				for (k+1)%statefulPeriod != 1 {
					k++
				}
				s.produce(k*students, k*students+tail)
				// The second instance: another group (nobody to wait
				// for), the restore option under test.
				toml, err := os.ReadFile(filepath.Join(s.dir, "scale.toml"))
				if err != nil {
					b.Fatal(err)
				}
				toml = bytes.Replace(toml, []byte(`group = "`+scaleOutGroup+`"`), []byte(`group = "`+scaleOutGroup+`-b"`), 1)
				toml = bytes.Replace(toml, []byte(`restore = "replay"`), []byte(`restore = "`+restore+`"`), 1)
				if err := os.WriteFile(filepath.Join(s.dir, "scale.toml"), toml, 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				second := s.start()
				for {
					now := partitionCheckpoints(ctx, b, c, "scale")
					moved := 0
					for p, next := range at {
						if now[p] > next {
							moved++
						}
					}
					if moved == len(at) {
						break
					}
					if time.Since(start) > 5*time.Minute {
						second.quit()
						<-second.exited
						b.Fatalf("not every partition moved in 5 minutes (%v, was %v):\n%s", now, at, second.out)
					}
					time.Sleep(10 * time.Millisecond)
				}
				el := time.Since(start)
				b.StopTimer()
				second.kill()
				<-second.exited
				cancel()
				b.ReportMetric(float64(el.Milliseconds()), "restore-ms")
				b.StartTimer()
			}
		})
	}
}
