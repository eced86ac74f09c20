package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// Engine SIGKILL test (issue 14, docs/design/streaming.md section 11).
// VIGIE_SIGKILL_EVENTS sets the number of events (default
// sigkillDefaultEvents; the figure is 1000000) and
// VIGIE_SIGKILL_SEED the seed of the kill times (default: the clock,
// logged either way).
const (
	sigkillDefaultEvents = 200_000
	sigkillStudents      = 10_000
	sigkillPartitions    = 12
	sigkillAlertEvents   = 50_000
)

// TestEngineSIGKILL produces events of 10K students to a 12-partition
// topic and runs `vigie run` (Kafka source → map rule → Kafka sink, the
// connectors in plugin processes, checkpoints every 100ms) twice: a
// reference run without kills, and a run of another pipeline (its own
// transactional id, checkpoint record and output topic) whose engine
// process is SIGKILLed 3 to 5 times at random and restarted until it ends
// by itself. Both outputs, read with read_committed to their end, must
// hold the same rows in the same order for every student (the key, hence
// the partition): nothing lost, nothing twice.
func TestEngineSIGKILL(t *testing.T) {
	events, rng := sigkillParams(t, "VIGIE_SIGKILL_EVENTS", sigkillDefaultEvents, sigkillStudents)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions, "ref": sigkillPartitions, "killed": sigkillPartitions}})
	produceEvents(ctx, t, c, events)

	dir := t.TempDir()
	rule, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ref", "killed"} {
		writeSigkillPipeline(t, c, filepath.Join(dir, name+".toml"), name, rule)
	}

	killRuns(ctx, t, c, dir, events, rng)

	ref, killed := readToEnd(ctx, t, c, "ref"), readToEnd(ctx, t, c, "killed")
	if n := total(ref); n != events {
		t.Errorf("reference output: %d rows, want %d", n, events)
	}
	if len(ref) != sigkillStudents {
		t.Errorf("reference output: %d students, want %d", len(ref), sigkillStudents)
	}
	sameRows(t, ref, killed)
}

// sigkillParams returns the number of events (environment variable env,
// else def) and the random source of the kill points, seeded from
// VIGIE_SIGKILL_SEED or the clock (logged).
func sigkillParams(t *testing.T, env string, def, students int) (int, *rand.Rand) {
	t.Helper()
	events := def
	if s := os.Getenv(env); s != "" {
		var err error
		if events, err = strconv.Atoi(s); err != nil || events < students {
			t.Fatalf("%s=%q: want a number of at least %d (one event per student)", env, s, students)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VIGIE_SIGKILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("VIGIE_SIGKILL_SEED=%q: %v", s, err)
		}
	}
	t.Logf("%d events, %d students, seed %d (VIGIE_SIGKILL_SEED=%d to replay the kill times)", events, students, seed, seed)
	return events, rand.New(rand.NewPCG(seed, 14))
}

// sameRows fails t unless killed holds, for every key of ref, the same
// rows in the same order, and no other key.
func sameRows(t *testing.T, ref, killed map[string][]string) {
	t.Helper()
	diffs := 0
	for student, want := range ref {
		got := killed[student]
		if !slices.Equal(got, want) {
			if diffs++; diffs <= 5 {
				t.Errorf("student %s: %d rows after the kills, %d in the reference run; first difference at row %d", student, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	for student := range killed {
		if _, ok := ref[student]; !ok {
			t.Errorf("student %s is in the killed run's output only", student)
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d students differ (killed run: %d rows, reference: %d)", diffs, len(ref), total(killed), total(ref))
	}
}

// killRuns runs ref.toml in dir to its end, then killed.toml, SIGKILLed 3
// to 5 times at random points of its output and restarted until it ends
// by itself.
func killRuns(ctx context.Context, t *testing.T, c *kafkatest.Cluster, dir string, events int, rng *rand.Rand) {
	t.Helper()
	start := time.Now()
	out, code := runToEnd(ctx, t, dir, "ref.toml")
	if code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, out)
	}
	t.Logf("reference run: %s\n%s", time.Since(start).Round(time.Millisecond), summaryOf(out))
	start = time.Now()

	// Kill points: 3 to 5 random shares (10% to 75%) of the input, in
	// increasing order; each run is killed a random 0-30ms after the
	// killed pipeline's last committed checkpoint covers that share of
	// the events (its source offsets), so that every kill falls while the
	// run makes progress, whatever the machine's speed and however bursty
	// the output (alert changes), and well before the run could end.
	kills := 3 + rng.IntN(3)
	shares := make([]float64, kills)
	for i := range shares {
		shares[i] = 0.1 + 0.65*rng.Float64()
	}
	slices.Sort(shares)
	total := float64(events)
	// A run that fails by itself is restarted like a killed one (what a
	// supervisor does), logged and counted apart: exactly-once must hold
	// across any crash. (Seen: kfake refusing a transactional produce to
	// a never-written partition with OUT_OF_ORDER_SEQUENCE_NUMBER, its
	// KAFKA-15591 check, when the producer had several batches in
	// flight; the run fails with the transaction aborted.)
	runs, killed, failed, ended := 0, 0, 0, false
	failedRun := func(out string, code int) {
		t.Helper()
		failed++
		t.Logf("run %d failed by itself (exit %d), restarted:\n%s", runs, code, summaryOf(out))
		if failed > 5 {
			t.Fatalf("%d runs failed by themselves", failed)
		}
	}
	for i := 0; i < len(shares) && !ended; {
		share := shares[i]
		runs++
		extra := time.Duration(rng.IntN(30)) * time.Millisecond
		var out string
		var code int
		ended, out, code = runKilledAt(ctx, t, dir, "killed.toml", func() bool {
			_, covered := lastCheckpoint(ctx, t, c, "killed.checkpoints")
			return float64(covered) >= share*total
		}, extra)
		switch {
		case ended && code != 0:
			failedRun(out, code)
			ended = false
		case ended:
			t.Logf("run %d ended by itself before its kill at %.0f%% of the input", runs, 100*share)
		default:
			killed++
			i++
			t.Logf("run %d: SIGKILL at %.0f%% of the input (+%s)", runs, 100*share, extra)
		}
	}
	for !ended {
		runs++
		out, code := runToEnd(ctx, t, dir, "killed.toml")
		if ended = code == 0; !ended {
			failedRun(out, code)
		}
	}
	t.Logf("%d runs, %d killed, %d failed by themselves, %s in all", runs, killed, failed, time.Since(start).Round(time.Millisecond))
	if killed < 3 {
		t.Errorf("only %d of the runs were killed before they ended, want at least 3", killed)
	}
}

func produceEvents(ctx context.Context, t testing.TB, c *kafkatest.Cluster, events int) {
	t.Helper()
	cl := c.Client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	for i := range events {
		id := fmt.Sprintf("S%05d", i%sigkillStudents)
		v := fmt.Sprintf(`{"student_id": %q, "n": %d, "a": %g, "b": %g, "c": %g}`, id, i, float64(i%7)/7, float64(i%10)/10, float64(i%3)/3)
		cl.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte(id), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// writeSigkillPipeline writes a pipeline named name reading "events" to the
// end offsets it starts with, scoring every row with the map rule, writing
// to topic name keyed by student.
func writeSigkillPipeline(t testing.TB, c *kafkatest.Cluster, path, name, rule string) {
	t.Helper()
	brokers := c.BrokersTOML()
	toml := fmt.Sprintf(`[pipeline]
name = %q
batch_rows = 8192
max_delay = "50ms"
checkpoint_interval = "100ms"
dead_letter = "%s.dead.csv"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %s
topics = ["events"]
stop_at_end = true
columns = { student_id = "utf8", n = "int64", a = "float64", b = "float64", c = "float64" }

[[rule]]
name = "score"
input = "events"
module = %q

[[sink]]
name = "out"
input = "score"
connector = "kafka_topic"
[sink.options]
brokers = %s
topic = %q
key_column = "student_id"
`, name, name, brokers, rule, brokers, name)
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startVigie starts `vigie run file` in dir, in its own process group.
func startVigie(ctx context.Context, t testing.TB, dir, file string) (*exec.Cmd, *bytes.Buffer, <-chan int) {
	t.Helper()
	return startVigieArgs(ctx, t, dir, "run", file)
}

// startVigieArgs starts vigie with args in dir, in its own process group.
func startVigieArgs(ctx context.Context, t testing.TB, dir string, args ...string) (*exec.Cmd, *bytes.Buffer, <-chan int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, vigie(t), args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	exited := make(chan int, 1)
	go func() {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		exited <- code
	}()
	return cmd, &out, exited
}

func runToEnd(ctx context.Context, t *testing.T, dir, file string) (string, int) {
	t.Helper()
	_, out, exited := startVigie(ctx, t, dir, file)
	select {
	case code := <-exited:
		return out.String(), code
	case <-ctx.Done():
		t.Fatalf("%s did not end:\n%s", file, out)
		return "", 0
	}
}

// runKilledAt runs file and SIGKILLs the engine process (only it: its
// plugins notice their host is gone) extra after reached reports true,
// unless it ended before.
func runKilledAt(ctx context.Context, t *testing.T, dir, file string, reached func() bool, extra time.Duration) (ended bool, out string, code int) {
	t.Helper()
	cmd, buf, exited := startVigie(ctx, t, dir, file)
	for !reached() {
		select {
		case code := <-exited:
			return true, buf.String(), code
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case code := <-exited:
		return true, buf.String(), code
	case <-time.After(extra):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	return false, buf.String(), 0
}

// stableOffsets is the sum of topic's last stable offsets: rows and
// transaction markers committed or aborted so far.
func stableOffsets(ctx context.Context, t testing.TB, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// readKeyed reads topic with read_committed to its end and returns each
// key's record values in order.
func readKeyed(ctx context.Context, t *testing.T, c *kafkatest.Cluster, topic string) map[string][]string {
	t.Helper()
	ends, err := kadm.NewClient(c.Client(t)).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	out := map[string][]string{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %v (%d partitions not read to their end)", topic, err, len(left))
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("read %s: %v", topic, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
			}
		})
	}
	return out
}

// readToEnd reads topic with read_committed up to its last stable
// offsets and returns each key's values in order (readKeyed), failing
// unless every value is a row whose student_id is its key.
func readToEnd(ctx context.Context, t *testing.T, c *kafkatest.Cluster, topic string) map[string][]string {
	t.Helper()
	out := readKeyed(ctx, t, c, topic)
	for key, values := range out {
		for _, v := range values {
			var row struct {
				Student string `json:"student_id"`
			}
			if err := json.Unmarshal([]byte(v), &row); err != nil || row.Student != key {
				t.Fatalf("%s: record %s (key %s): want a row whose student_id is the key (%v)", topic, v, key, err)
			}
		}
	}
	return out
}

func total(rows map[string][]string) int {
	n := 0
	for _, v := range rows {
		n += len(v)
	}
	return n
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// BenchmarkRecoveryAfterSIGKILL is figure 4 of issue 14 for the map-rule
// pipeline of TestEngineSIGKILL (no keyed state): 200K events, a
// continuous `vigie run` (connectors in plugin processes) SIGKILLed once
// half of them are in the output, then started again: the time from the
// new process's start to its first committed checkpoint (the output's
// last stable offsets move), which covers starting the plugins, fencing
// the killed run's transaction, reading the last checkpoint record,
// resuming the source and the first checkpoint.
//
//	go test ./cmd/vigie -run '^$' -bench 'RecoveryAfterSIGKILL$' -benchtime 3x
func BenchmarkRecoveryAfterSIGKILL(b *testing.B) {
	const events = 200_000
	rule, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		c := kafkatest.Start(b, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions, "rec": sigkillPartitions}})
		produceEvents(ctx, b, c, events)
		dir := b.TempDir()
		path := filepath.Join(dir, "rec.toml")
		writeSigkillPipeline(b, c, path, "rec", rule)
		toml, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		// Continuous: the run waits for more events instead of ending.
		if err := os.WriteFile(path, bytes.Replace(toml, []byte("stop_at_end = true\n"), nil, 1), 0o644); err != nil {
			b.Fatal(err)
		}
		adm := kadm.NewClient(c.Client(b))
		cmd, out, exited := startVigie(ctx, b, dir, "rec.toml")
		for stableOffsets(ctx, b, adm, "rec") < events/2 {
			select {
			case code := <-exited:
				b.Fatalf("vigie exited %d:\n%s", code, out)
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		<-exited
		before, _ := lastCheckpoint(ctx, b, c, "rec.checkpoints")
		b.StartTimer()
		start := time.Now()
		cmd, out, exited = startVigie(ctx, b, dir, "rec.toml")
		for id, _ := lastCheckpoint(ctx, b, c, "rec.checkpoints"); id == before; id, _ = lastCheckpoint(ctx, b, c, "rec.checkpoints") {
			select {
			case code := <-exited:
				b.Fatalf("vigie exited %d:\n%s", code, out)
			case <-time.After(5 * time.Millisecond):
			}
		}
		el := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(el.Milliseconds()), "recovery-ms")
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		b.StartTimer()
	}
}

// lastCheckpoint returns the id of the last checkpoint record committed
// to topic (read_committed, to its last stable offset), 0 if none, and
// the number of events its source positions cover (the sum of the Kafka
// offsets). Its clients are its own: a client that found the topic
// missing would keep saying so for a while (metadata cache).
func lastCheckpoint(ctx context.Context, b testing.TB, c *kafkatest.Cluster, topic string) (uint64, int64) {
	b.Helper()
	id, next := lastCheckpointOffsets(ctx, b, c, topic)
	var covered int64
	for _, n := range next {
		covered += n
	}
	return id, covered
}

// lastCheckpointOffsets returns the id of the last checkpoint record
// committed to topic (0 if none) and its source positions: the next
// offset of every partition of every source topic, by partition.
func lastCheckpointOffsets(ctx context.Context, b testing.TB, c *kafkatest.Cluster, topic string) (uint64, map[string]int64) {
	b.Helper()
	acl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...))
	if err != nil {
		b.Fatal(err)
	}
	defer acl.Close()
	ends, err := kadm.NewClient(acl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, nil // the first run has not created it yet
	}
	if err != nil {
		b.Fatal(err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	if end == 0 {
		return 0, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var last uint64
	var covered map[string]int64
	for read := int64(0); read < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read = max(read, r.Offset+1)
			if r.Attrs.IsControl() {
				return
			}
			var cp struct {
				ID   uint64
				Data struct {
					Sources map[string]struct {
						Offsets map[string]map[string]int64
					}
				}
			}
			if err := json.Unmarshal(r.Value, &cp); err != nil {
				b.Fatalf("checkpoint record %s: %v", r.Value, err)
			}
			if cp.ID > last {
				last, covered = cp.ID, map[string]int64{}
				for _, src := range cp.Data.Sources {
					for _, parts := range src.Offsets {
						for p, next := range parts {
							covered[p] += next
						}
					}
				}
			}
		})
	}
	return last, covered
}

// TestEngineSIGKILLAlerts is TestEngineSIGKILL through the early-warning
// group rule with emit = "per_row" (state kept in state_dir, versioned by
// partition and offset) and the alerts stage: events of 10K students
// (one absent half-day or platform session per student and school day), the alert
// changes written to Kafka. After the kills, the alert changes read with
// read_committed equal the reference run's, row for row per student, and
// so alert id for alert id. VIGIE_SIGKILL_ALERT_EVENTS sets the number of
// events (default sigkillAlertEvents) and VIGIE_SIGKILL_ALERT_STUDENTS
// the number of students (default 10K, at least 10K): the 1M
// events of 100K students are ten school days each, where 1M events of
// 10K students would be a hundred, and each row rescores its student's
// whole timeline. The test's deadline grows with the events (15 minutes
// plus 90 per million).
func TestEngineSIGKILLAlerts(t *testing.T) {
	students := sigkillStudents
	if v := os.Getenv("VIGIE_SIGKILL_ALERT_STUDENTS"); v != "" {
		var err error
		if students, err = strconv.Atoi(v); err != nil || students < sigkillStudents || students > 999_999 {
			t.Fatalf("VIGIE_SIGKILL_ALERT_STUDENTS=%q: want a number from %d to 999999", v, sigkillStudents)
		}
	}
	events, rng := sigkillParams(t, "VIGIE_SIGKILL_ALERT_EVENTS", sigkillAlertEvents, students)
	rule := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "early_warning"))

	timeout := 15*time.Minute + time.Duration(events)*90*time.Minute/1_000_000
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions, "ref": sigkillPartitions, "killed": sigkillPartitions}})
	cl := c.Client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	day0 := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		// One event per student and school day.
		s, day := i%students, i/students
		id := fmt.Sprintf("S%05d", s)
		if students > 100_000 {
			id = fmt.Sprintf("S%06d", s)
		}
		date := day0.AddDate(0, 0, day+2*(day/5)).Format(time.DateOnly) // no weekends
		var v string
		// One student in four misses most days; the others log in to the
		// platform and miss a half-day now and then.
		if (s%4 == 0 && day%3 != 2) || (day+s)%11 == 5 {
			v = fmt.Sprintf(`{"student_id": %q, "date": %q, "half": %q, "justified": %t}`, id, date, []string{"AM", "PM"}[(day+s)%2], (day+s)%9 == 0)
		} else {
			v = fmt.Sprintf(`{"student_id": %q, "date": %q}`, id, date)
		}
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
		toml := alertsPipeline(name, brokers, rule)
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	killRuns(ctx, t, c, dir, events, rng)

	ref, killed := readToEnd(ctx, t, c, "ref"), readToEnd(ctx, t, c, "killed")
	ids := func(rows map[string][]string) map[string]bool {
		out := map[string]bool{}
		for _, vs := range rows {
			for _, v := range vs {
				var row struct {
					ID string `json:"alert_id"`
				}
				if err := json.Unmarshal([]byte(v), &row); err != nil || row.ID == "" {
					t.Fatalf("alert change %s: no alert_id (%v)", v, err)
				}
				out[row.ID] = true
			}
		}
		return out
	}
	refIDs, killedIDs := ids(ref), ids(killed)
	t.Logf("reference: %d alert changes of %d students, %d alert ids", total(ref), len(ref), len(refIDs))
	if len(refIDs) < 100 {
		t.Errorf("the reference run announced %d alerts: too few to test anything", len(refIDs))
	}
	if !maps.Equal(refIDs, killedIDs) {
		t.Errorf("alert ids: %d after the kills, %d in the reference run", len(killedIDs), len(refIDs))
	}
	sameRows(t, ref, killed)
}

// summaryOf returns the summary table vigie run prints at the end of out.
func summaryOf(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "level=") && strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// alertsPipeline is the pipeline of TestEngineSIGKILLAlerts named name:
// Kafka topic "events" (to the end offsets it starts with) → the
// early-warning rule per row, state kept in name.state → alert changes →
// Kafka topic name.
func alertsPipeline(name, brokers, rule string) string {
	return fmt.Sprintf(`[pipeline]
name = %[1]q
batch_rows = 4096
max_delay = "50ms"
checkpoint_interval = "100ms"
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
columns = { student_id = "utf8", date = "date32", half = "utf8", justified = "bool", corrects = "utf8", recorded_at = "utf8", subject = "utf8", period = "utf8", mark = "float64", status = "utf8" }

[[rule]]
name = "early_warning"
input = "events"
module = %[3]q
group_by = ["student_id"]
order_by = "date"
emit = "per_row"
keep_state = true
partition_column = "kafka_partition"
offset_column = "kafka_offset"
[rule.params]
as_of = "latest"
# Unjustified absences alone (ABS_UNJ, weight 0.10) open alerts.
w_abs_unj = 0.10
raise_at = 0.04
clear_below = 0.02

[[alerts]]
name = "changes"
input = "early_warning"

[[sink]]
name = "out"
input = "changes"
connector = "kafka_topic"
[sink.options]
brokers = %[2]s
topic = %[1]q
key_column = "student_id"
`, name, brokers, rule)
}
