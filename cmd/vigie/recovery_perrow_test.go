package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/engine/state"
	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// Figure 4 of issue 14 with keyed state: recovery after an engine
// SIGKILL of the pipeline of TestEngineSIGKILLAlerts (Kafka → the
// early-warning rule per row → alert changes → Kafka) holding 100K
// students' timelines in its state dir.
const (
	recStudents = 100_000
	recHistory  = 30 // stored rows per student before the run (school days)
	recDays     = 2  // new events per student in the input topic
)

// BenchmarkRecoveryAfterSIGKILLPerRow: the state dir is preloaded with
// recHistory days of 100K students (3M rows, written as the stage stores
// them, compacted); a continuous `vigie run` (connectors in plugin
// processes, checkpoints every 100 ms) reads recDays new events per
// student and is SIGKILLed once its last committed checkpoint covers half
// of them, then started again. Reported: recovery-ms, the new process's
// start to its first committed checkpoint; and its parts, read from the
// new process's log: resume-ms, start to "resuming from checkpoint"
// (plugins started, the killed transaction fenced, the checkpoint record
// read); open-ms, the per-row stage's opening of the pebble store (its
// log replay included); first-batch-ms, start to the stage's receiving
// its first micro-batch (the source resumed); the rest is evaluating the
// rows that followed the cut, up to the first checkpoint's cut (the
// batches in flight when it starts), and committing it. rollback-ms is
// measured apart, on a copy of the state dir taken right after the kill:
// Store.DeleteAbove of both stateful stages in every partition at the
// checkpoint's cut, what a restart that rolls the state back pays (the
// engine does not call it today: the state is versioned by offset and the
// replay recomputes the same rows, docs/design/streaming.md section 6).
//
//	go test ./cmd/vigie -run '^$' -bench RecoveryAfterSIGKILLPerRow -benchtime 1x -count 2
func BenchmarkRecoveryAfterSIGKILLPerRow(b *testing.B) {
	rule := hosttest.BuildGoRule(b, filepath.Join("..", "..", "examples", "rules", "early_warning"))
	ctx := context.Background()
	events := recStudents * recDays
	for b.Loop() {
		b.StopTimer()
		c := kafkatest.Start(b, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions, "rec": sigkillPartitions}})
		produceRecEvents(ctx, b, c)
		dir := b.TempDir()
		stateDir := filepath.Join(dir, "rec.state")
		start := time.Now()
		if err := preloadRecState(stateDir); err != nil {
			b.Fatal(err)
		}
		b.Logf("preloaded %d students x %d rows in %s", recStudents, recHistory, time.Since(start).Round(time.Millisecond))
		brokers := c.BrokersTOML()
		// Continuous: the run waits for more events instead of ending.
		toml := strings.Replace(alertsPipeline("rec", brokers, rule), "stop_at_end = true\n", "", 1)
		if err := os.WriteFile(filepath.Join(dir, "rec.toml"), []byte(toml), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd, out, exited := startVigieArgs(ctx, b, dir, "run", "--log-level=info", "rec.toml")
		for _, covered := lastCheckpoint(ctx, b, c, "rec.checkpoints"); covered < int64(events/2); _, covered = lastCheckpoint(ctx, b, c, "rec.checkpoints") {
			select {
			case code := <-exited:
				b.Fatalf("vigie exited %d:\n%s", code, out)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		<-exited
		before, cut := lastCheckpointOffsets(ctx, b, c, "rec.checkpoints")
		copyDir := filepath.Join(dir, "copy.state")
		if out, err := exec.Command("cp", "-r", stateDir, copyDir).CombinedOutput(); err != nil {
			b.Fatalf("copy the state dir: %v\n%s", err, out)
		}

		b.StartTimer()
		start = time.Now()
		cmd, out, exited = startVigieArgs(ctx, b, dir, "run", "--log-level=info", "rec.toml")
		for id, _ := lastCheckpoint(ctx, b, c, "rec.checkpoints"); id == before; id, _ = lastCheckpoint(ctx, b, c, "rec.checkpoints") {
			select {
			case code := <-exited:
				b.Fatalf("vigie exited %d:\n%s", code, out)
			case <-time.After(5 * time.Millisecond):
			}
		}
		el := time.Since(start)
		b.StopTimer()
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		log := out.String()
		resumed, err := logTime(log, "resuming from checkpoint")
		if err != nil {
			b.Fatal(err)
		}
		opened, err := logTook(log, "per-row state opened")
		if err != nil {
			b.Fatal(err)
		}
		firstBatch, err := logTime(log, "per-row first micro-batch received")
		if err != nil {
			b.Fatal(err)
		}
		rollback, err := rollBack(copyDir, cut)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "level=INFO") {
				if m := logTimeRE.FindStringSubmatch(l); m != nil {
					if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
						b.Logf("+%dms %s", at.Sub(start).Milliseconds(), l[len(m[0]):])
					}
				}
			}
		}
		b.ReportMetric(float64(el.Milliseconds()), "recovery-ms")
		b.ReportMetric(float64(resumed.Sub(start).Milliseconds()), "resume-ms")
		b.ReportMetric(float64(opened.Milliseconds()), "open-ms")
		b.ReportMetric(float64(firstBatch.Sub(start).Milliseconds()), "first-batch-ms")
		b.ReportMetric(float64(rollback.Milliseconds()), "rollback-ms")
		b.StartTimer()
	}
}

// produceRecEvents produces recDays events per student after the
// preloaded history, student s to partition s mod 12.
func produceRecEvents(ctx context.Context, b testing.TB, c *kafkatest.Cluster) {
	b.Helper()
	cl := c.Client(b, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for day := range recDays {
		date := recDate(recHistory + day).Format(time.DateOnly)
		for s := range recStudents {
			id := fmt.Sprintf("S%06d", s)
			v := fmt.Sprintf(`{"student_id": %q, "date": %q}`, id, date)
			if s%4 == 0 || (day+s)%11 == 5 {
				v = fmt.Sprintf(`{"student_id": %q, "date": %q, "half": %q, "justified": %t}`, id, date, []string{"AM", "PM"}[(day+s)%2], (day+s)%9 == 0)
			}
			cl.Produce(ctx, &kgo.Record{Topic: "events", Partition: int32(s % sigkillPartitions), Key: []byte(id), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Errorf("produce: %v", err)
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// recDate is school day n (weekends skipped) from 1 September 2025.
func recDate(n int) time.Time {
	return time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n+2*(n/5))
}

// preloadRecState writes recHistory rows (one per school day: an absent
// half-day for one student in four and now and then for the others, else
// a day with no absence) of every student into the state dir, as the
// early-warning stage of alertsPipeline stores them: the Kafka source's
// declared columns by name, the student's partition, sequence 0 (before
// any offset of the run, so that no rollback removes them).
func preloadRecState(dir string) error {
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	stored := arrow.NewSchema([]arrow.Field{
		{Name: "corrects", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "half", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "justified", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "mark", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "period", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "recorded_at", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "subject", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	arr, err := st.Arrivals(state.Spec{Stage: "early_warning", Schema: stored, Keys: []int{8}, Order: 1})
	if err != nil {
		return err
	}
	mem := memory.NewGoAllocator()
	const chunk = 10_000 // students per write
	for lo := 0; lo < recStudents; lo += chunk {
		rb := array.NewRecordBuilder(mem, stored)
		for s := lo; s < min(lo+chunk, recStudents); s++ {
			for day := range recHistory {
				f := rb.Fields()
				for _, k := range []int{0, 4, 5, 6, 7, 9} {
					f[k].AppendNull()
				}
				f[1].(*array.Date32Builder).Append(arrow.Date32FromTime(recDate(day)))
				if (s%4 == 0 && day%3 != 2) || (day+s)%11 == 5 {
					f[2].(*array.StringBuilder).Append([]string{"AM", "PM"}[(day+s)%2])
					f[3].(*array.BooleanBuilder).Append((day+s)%9 == 0)
				} else {
					f[2].AppendNull()
					f[3].AppendNull()
				}
				f[8].(*array.StringBuilder).Append(fmt.Sprintf("S%06d", s))
			}
		}
		rec := rb.NewRecordBatch()
		rb.Release()
		w := state.Write{Progress: map[uint32]state.Progress{}}
		for i := range int(rec.NumRows()) {
			s := lo + i/recHistory
			p := uint32(s % sigkillPartitions)
			g, o, r := arr.Encode(rec, i)
			w.Put = append(w.Put, state.Entry{Partition: p, Group: g, Order: o, Seq: 0, Row: r})
			v, _ := arr.OrderValue(o)
			if pr := w.Progress[p]; !pr.Any || v > pr.Mark {
				w.Progress[p] = state.Progress{Mark: v, Marked: true, Seq: 0, Any: true}
			}
		}
		err := arr.Commit(w)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return st.Compact()
}

// rollBack opens the state dir and rolls both stateful stages of
// alertsPipeline back to the checkpoint's cut in every partition
// (partition → next offset), as a restart that rolls back would; it
// returns the time DeleteAbove took.
func rollBack(dir string, next map[string]int64) (time.Duration, error) {
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	start := time.Now()
	for p, n := range next {
		part, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("checkpoint partition %q: %w", p, err)
		}
		for _, stage := range []string{"early_warning", "changes"} {
			if n == 0 {
				continue // nothing covered: the cut is before the first offset
			}
			if err := st.DeleteAbove(stage, uint32(part), uint64(n-1)); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(start), nil
}

var logTimeRE = regexp.MustCompile(`time=(\S+)`)

// logTime returns the time of the first log line of out holding msg.
func logTime(out, msg string) (time.Time, error) {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, msg) {
			m := logTimeRE.FindStringSubmatch(l)
			if m == nil {
				break
			}
			return time.Parse(time.RFC3339Nano, m[1])
		}
	}
	return time.Time{}, fmt.Errorf("no log line %q in:\n%s", msg, out)
}

var tookRE = regexp.MustCompile(`took=(\S+)`)

// logTook returns the took= duration of the first log line holding msg.
func logTook(out, msg string) (time.Duration, error) {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, msg) {
			if m := tookRE.FindStringSubmatch(l); m != nil {
				return time.ParseDuration(m[1])
			}
		}
	}
	return 0, fmt.Errorf("no log line %q with took= in:\n%s", msg, out)
}
