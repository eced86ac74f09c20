package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// Scale-out tests (issue 15, docs/design/streaming.md section 10): several
// `vigie run` processes of one pipeline in one consumer group, on a
// 3-broker kfake cluster, Kafka → map rule → Kafka with per-partition
// checkpoints (source partitioned_by, sink partition_column). Each test
// disturbs the group mid-run (an instance SIGKILLed, an instance added, a
// broker restarted and the coordinators moved), waits until the
// per-partition checkpoint records cover the whole input, and compares the
// output read with read_committed with a single-instance run's, row for
// row per student. VIGIE_SCALEOUT_EVENTS sets the number of events
// (default scaleOutDefaultEvents; the figure is 1000000),
// VIGIE_SIGKILL_SEED the seed of the disturbance points.
const (
	scaleOutDefaultEvents = 100_000
	scaleOutGroup         = "scale"
)

// scaleOut is one scale-out test's cluster, input and pipelines.
type scaleOut struct {
	t      testing.TB
	ctx    context.Context
	c      *kafkatest.Cluster
	dir    string
	events int
	rng    *rand.Rand
	n      int // instances started
	// restarts counts instances that exited by themselves.
	restarts int
	// stateful: the per-row group rule lastalerts and an alerts stage
	// (keyed state in each instance's store, restored by replay) instead
	// of the map rule.
	stateful bool
	// students is the number of students (sigkillStudents by default).
	students int
}

func newScaleOut(t *testing.T) *scaleOut {
	t.Helper()
	return newScaleOutWith(t, false)
}

func newScaleOutWith(t *testing.T, stateful bool) *scaleOut {
	t.Helper()
	events, rng := sigkillParams(t, "VIGIE_SCALEOUT_EVENTS", scaleOutDefaultEvents, sigkillStudents)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	c := kafkatest.Start(t, kafkatest.Config{
		Brokers: 3,
		Topics:  map[string]int32{"events": sigkillPartitions, "ref": sigkillPartitions, "scale": sigkillPartitions},
		// A member SIGKILLed is dropped after session_timeout (2s).
		Extra: []kfake.Opt{kfake.GroupMinSessionTimeout(500 * time.Millisecond)},
	})
	s := &scaleOut{t: t, ctx: ctx, c: c, dir: t.TempDir(), events: events, rng: rng, stateful: stateful, students: sigkillStudents}
	s.write("ref", false)
	s.write("scale", true)
	return s
}

// produce produces events [from, to) of produceEvents' sequence.
func (s *scaleOut) produce(from, to int) {
	s.t.Helper()
	cl := s.c.Client(s.t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	for i := from; i < to; i++ {
		id := fmt.Sprintf("S%05d", i%s.students)
		v := fmt.Sprintf(`{"student_id": %q, "n": %d, "a": %g, "b": %g, "c": %g}`, id, i, float64(i%7)/7, float64(i%10)/10, float64(i%3)/3)
		if s.stateful {
			v = statefulEvent(i, s.students)
		}
		cl.Produce(s.ctx, &kgo.Record{Topic: "events", Key: []byte(id), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				s.t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	cl.Close()
}

// write writes name.toml: the map-rule pipeline of TestEngineSIGKILL with
// the input partition as a column; scaled, as a member of a group with
// per-partition checkpoints (continuous), else reading every partition to
// its end.
func (s *scaleOut) write(name string, scaled bool) {
	s.t.Helper()
	brokers := s.c.BrokersTOML()
	src, snk := "stop_at_end = true", ""
	if scaled {
		src = fmt.Sprintf("group = %q\npartitioned_by = \"student_id\"\nsession_timeout = \"2s\"", scaleOutGroup)
		snk = `partition_column = "kafka_partition"`
	}
	rule, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		s.t.Fatal(err)
	}
	if s.stateful {
		s.writeStateful(name, brokers, scaled)
		return
	}
	toml := fmt.Sprintf(`[pipeline]
name = %[1]q
batch_rows = 8192
max_delay = "50ms"
checkpoint_interval = "100ms"
dead_letter = "%[1]s.dead.csv"

[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %[2]s
topics = ["events"]
metadata = ["partition"]
%[3]s
columns = { student_id = "utf8", n = "int64", a = "float64", b = "float64", c = "float64" }

[[rule]]
name = "score"
input = "events"
module = %[4]q

[[sink]]
name = "out"
input = "score"
connector = "kafka_topic"
[sink.options]
brokers = %[2]s
topic = %[1]q
key_column = "student_id"
%[5]s
`, name, brokers, src, rule, snk)
	if err := os.WriteFile(filepath.Join(s.dir, name+".toml"), []byte(toml), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// instance is one running `vigie run scale.toml`.
type instance struct {
	id     int
	dir    string
	kill   func()
	quit   func() // SIGQUIT: the engine process dumps its goroutines
	out    fmt.Stringer
	exited <-chan int
	// earlier holds the logs of the instance's earlier runs (it is
	// restarted when it exits by itself), printed with the last one's when
	// the test fails.
	earlier []fmt.Stringer
}

// logs returns every run's log of the instance, oldest first.
func (in *instance) logs() string {
	var b strings.Builder
	for i, out := range slices.Concat(in.earlier, []fmt.Stringer{in.out}) {
		fmt.Fprintf(&b, "instance %d, run %d:\n%s\n", in.id, i+1, out)
	}
	return b.String()
}

// start starts an instance in its own directory (its own dead-letter
// file), like a process on another machine.
func (s *scaleOut) start() *instance {
	s.t.Helper()
	s.n++
	dir := filepath.Join(s.dir, "i"+strconv.Itoa(s.n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "scale.toml"))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scale.toml"), b, 0o644); err != nil {
		s.t.Fatal(err)
	}
	in := &instance{id: s.n, dir: dir}
	s.run(in)
	return in
}

func (s *scaleOut) run(in *instance) {
	// Info level: the partitions assigned, revoked and moved, for the
	// logs of a failure.
	cmd, out, exited := startVigieArgs(s.ctx, s.t, in.dir, "run", "--log-level", "info", "--progress", "none", "scale.toml")
	if in.out != nil {
		in.earlier = append(in.earlier, in.out)
	}
	in.out, in.exited = out, exited
	in.kill = func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	in.quit = func() { syscall.Kill(cmd.Process.Pid, syscall.SIGQUIT) }
}

// covered returns how many input events the committed per-partition
// checkpoint records of the scaled pipeline cover.
func (s *scaleOut) covered() int64 {
	s.t.Helper()
	last := partitionCheckpoints(s.ctx, s.t, s.c, "scale")
	var n int64
	for _, next := range last {
		n += next
	}
	return n
}

// waitCovered waits until the records cover n events. An instance that
// exits by itself is restarted (what a supervisor does), logged and
// counted.
func (s *scaleOut) waitCovered(n int, running []*instance) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for s.covered() < int64(n) {
		if time.Now().After(deadline) {
			for _, in := range running {
				s.t.Log(in.logs())
			}
			if gi := s.c.GroupInfo(scaleOutGroup); gi != nil {
				for _, m := range gi.Members {
					s.t.Logf("group %s: member %s: %v", gi.State, m.MemberID, m.Assignment)
				}
			}
			s.t.Fatalf("%d events not covered in 2 minutes (%d covered: %v)", n, s.covered(), partitionCheckpoints(s.ctx, s.t, s.c, "scale"))
		}
		for _, in := range running {
			select {
			case code := <-in.exited:
				s.restarts++
				s.t.Logf("instance %d exited %d by itself, restarted:\n%s\n%s", in.id, code, groupLines(in.out.String()), summaryOf(in.out.String()))
				if s.restarts > 5 {
					s.t.Fatalf("%d instances exited by themselves", s.restarts)
				}
				s.run(in)
			default:
			}
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("%d events not covered in time (%d covered)", n, s.covered())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// members waits until the group is stable with n members and returns how
// many partitions each has.
func (s *scaleOut) members(n int) []int {
	s.t.Helper()
	gi, err := s.c.WaitGroupInfo(s.ctx, scaleOutGroup, func(gi *kfake.GroupInfo) bool {
		if gi == nil || gi.State != "Stable" || len(gi.Members) != n || gi.NumAssigned() != sigkillPartitions {
			return false
		}
		for i := range gi.Members {
			if gi.Members[i].NumAssigned() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		s.t.Fatalf("group %q never stable with %d members each with partitions: %v", scaleOutGroup, n, err)
	}
	var out []int
	for i := range gi.Members {
		out = append(out, gi.Members[i].NumAssigned())
	}
	return out
}

// finish produces the second half of the input, waits until it is
// covered, stops the instances, runs the reference (one instance, no
// group, reading every partition to its end) and compares the outputs.
func (s *scaleOut) finish(running []*instance) {
	s.t.Helper()
	t := s.t.(*testing.T)
	start := time.Now()
	s.produce(s.events/2, s.events)
	s.waitCovered(s.events, running)
	s.t.Logf("second half of the input produced and covered in %s; %d instances exited by themselves", time.Since(start).Round(time.Millisecond), s.restarts)
	for _, in := range running {
		in.kill()
		<-in.exited
	}
	start = time.Now()
	out, code := runToEnd(s.ctx, t, s.dir, "ref.toml")
	if code != 0 {
		s.t.Fatalf("reference run: exit %d\n%s", code, out)
	}
	s.t.Logf("reference run (one instance, no group): %s", time.Since(start).Round(time.Millisecond))
	ref, scaled := readToEnd(s.ctx, t, s.c, "ref"), readToEnd(s.ctx, t, s.c, "scale")
	if n := total(ref); !s.stateful && n != s.events {
		s.t.Errorf("reference output: %d rows, want %d", n, s.events)
	} else if s.stateful && n < s.events/statefulPeriod {
		s.t.Errorf("reference output: %d alert changes, want at least %d", n, s.events/statefulPeriod)
	}
	s.t.Logf("reference output: %d rows of %d students", total(ref), len(ref))
	sameRows(t, ref, scaled)
	if s.t.Failed() {
		for _, in := range running {
			s.t.Log(in.logs())
		}
	}
}

// begin produces the first half of the input, starts k instances, waits
// until the group is stable and a random 20% to 80% of that half is
// covered, and returns the instances and that share.
func (s *scaleOut) begin(k int) ([]*instance, float64) {
	s.t.Helper()
	s.produce(0, s.events/2)
	var running []*instance
	for range k {
		running = append(running, s.start())
	}
	s.t.Logf("partitions per member: %v", s.members(k))
	share := 0.2 + 0.6*s.rng.Float64()
	s.waitCovered(int(share*float64(s.events/2)), running)
	return running, share
}

// TestScaleOutSIGKILL: three instances share the 12 partitions; one is
// SIGKILLed (with its plugins) mid-run; the others take its partitions
// over (fencing its transactions, resuming from its committed records);
// the output equals a single-instance run's.
func TestScaleOutSIGKILL(t *testing.T) {
	s := newScaleOut(t)
	running, share := s.begin(3)
	victim := s.rng.IntN(len(running))
	running[victim].kill()
	<-running[victim].exited
	t.Logf("instance %d SIGKILLed at %.0f%% of the first half", running[victim].id, 100*share)
	running = append(running[:victim], running[victim+1:]...)
	t.Logf("partitions per member after the kill: %v", s.members(2))
	s.finish(running)
}

// TestScaleOutSIGKILLState is TestScaleOutSIGKILL with keyed state: a
// per-row group rule (lastalerts, a student's open alerts as of each row)
// and an alerts stage (what it announced per student, in the instance's
// store). The source restores a moved partition by replay (restore =
// "replay") and the sink drops what its checkpoint record covers
// (offset_column): the alert changes, alert id for alert id, equal a
// single-instance run's. Without the restore the new owner announces
// again alerts the killed one announced.
func TestScaleOutSIGKILLState(t *testing.T) {
	s := newScaleOutWith(t, true)
	running, share := s.begin(3)
	victim := s.rng.IntN(len(running))
	running[victim].kill()
	<-running[victim].exited
	t.Logf("instance %d SIGKILLed at %.0f%% of the first half", running[victim].id, 100*share)
	running = append(running[:victim], running[victim+1:]...)
	t.Logf("partitions per member after the kill: %v", s.members(2))
	s.finish(running)
}

// TestScaleOutAddInstance: two instances, a third added mid-run takes
// partitions (revoked from the others, which commit what they read of
// them first); the output equals a single-instance run's.
func TestScaleOutAddInstance(t *testing.T) {
	s := newScaleOut(t)
	running, share := s.begin(2)
	running = append(running, s.start())
	t.Logf("instance 3 added at %.0f%% of the first half; partitions per member: %v", 100*share, s.members(3))
	s.finish(running)
}

// TestScaleOutAddInstanceState is TestScaleOutAddInstance with the keyed
// state of TestScaleOutSIGKILLState: the partitions the new instance takes
// are revoked from live owners (which commit what they read of them
// first) and replayed by the new one.
func TestScaleOutAddInstanceState(t *testing.T) {
	s := newScaleOutWith(t, true)
	running, share := s.begin(2)
	running = append(running, s.start())
	t.Logf("instance 3 added at %.0f%% of the first half; partitions per member: %v", 100*share, s.members(3))
	s.finish(running)
}

// TestScaleOutBrokerRestart: three instances; mid-run the group's
// coordinator broker "restarts": for 1.5 s it closes every connection
// made to it as soon as a request arrives, every partition's leader is
// elected anew (leader epochs bumped) and every group and transaction
// coordinator moves; the output equals a single-instance run's. (kfake's
// RemoveNode and AddNode keep the removed broker's open connections
// served by a broker that leads nothing, which no real restart does: the
// clients then never fetch again from that node.)
func TestScaleOutBrokerRestart(t *testing.T) {
	s := newScaleOut(t)
	running, share := s.begin(3)
	node := s.c.CoordinatorFor(scaleOutGroup)
	up := time.Now().Add(1500 * time.Millisecond)
	s.c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		s.c.KeepControl()
		if time.Now().After(up) {
			s.c.DropControl()
			return nil, nil, false
		}
		if s.c.CurrentNode() != node {
			return nil, nil, false
		}
		return nil, errors.New("broker restarting"), true
	})
	s.c.ShufflePartitionLeaders()
	s.c.RehashCoordinators()
	t.Logf("broker %d (the group's coordinator) down for 1.5s at %.0f%% of the first half, leaders elected anew, coordinators moved (group's now on %d)", node, 100*share, s.c.CoordinatorFor(scaleOutGroup))
	// The test's own producer of the second half would fail while the
	// broker is down: the instances ride through it, not the producer.
	time.Sleep(time.Until(up) + 200*time.Millisecond)
	s.finish(running)
}

// partitionCheckpoints returns the last committed per-partition checkpoint
// record of pipeline: input partition → next offset.
func partitionCheckpoints(ctx context.Context, t testing.TB, c *kafkatest.Cluster, pipeline string) map[int32]int64 {
	t.Helper()
	topic := pipeline + ".checkpoints"
	acl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer acl.Close()
	ends, err := kadm.NewClient(acl).ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	end := ends[topic][0].Offset
	out := map[int32]int64{}
	if end == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	prefix := "vigie." + pipeline + ".p"
	for read := int64(0); read < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read = max(read, r.Offset+1)
			if r.Attrs.IsControl() || !strings.HasPrefix(string(r.Key), prefix) {
				return
			}
			var cp struct {
				Data struct {
					Partition int32
					Offset    int64
				}
			}
			if err := json.Unmarshal(r.Value, &cp); err != nil {
				t.Fatalf("checkpoint record %s: %v", r.Value, err)
			}
			out[cp.Data.Partition] = cp.Data.Offset
		})
	}
	return out
}

// groupLines returns the log lines of out about the group's partitions.
func groupLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "partition") && strings.Contains(l, "level=") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// statefulPeriod is how many of a student's events an alert of the
// stateful pipeline spans: open for two of every four.
const statefulPeriod = 4

// statefulEvent is event i of the stateful scale-out pipeline: the k-th
// event of student i%students, day k; with q = k+1, alert A<q/4> is open
// on the events where q%4 is 1 or 2 (its level rising on the second), so
// each alert is opened, updated and cleared, and one is open across the
// middle of the input (k = 4 to 5 with 10 events per student), where the
// tests move partitions.
func statefulEvent(i, students int) string {
	id := fmt.Sprintf("S%06d", i%students)
	k := i / students
	q := k + 1
	open, codes, level := "", "", "ok"
	if ph := q % statefulPeriod; ph == 1 || ph == 2 {
		open = fmt.Sprintf("%s-A%d:ABS:%d", id, q/statefulPeriod, k-ph+1)
		codes, level = "ABS", "watch"
		if ph == 2 {
			level = "high"
		}
	}
	return fmt.Sprintf(`{"student_id": %q, "day": %d, "open": %q, "codes": %q, "level": %q, "score": %g}`, id, k, open, codes, level, float64(k%10)/10)
}

// writeStateful writes name.toml for the stateful pipeline: Kafka →
// lastalerts (emit = "per_row") → alerts → Kafka.
func (s *scaleOut) writeStateful(name, brokers string, scaled bool) {
	s.t.Helper()
	src, snk := "stop_at_end = true", ""
	if scaled {
		src = fmt.Sprintf("group = %q\npartitioned_by = \"student_id\"\nsession_timeout = \"2s\"\nrestore = \"replay\"", scaleOutGroup)
		snk = "partition_column = \"arrival_partition\"\noffset_column = \"arrival_seq\""
	}
	toml := fmt.Sprintf(`[pipeline]
name = %[1]q
batch_rows = 8192
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
metadata = ["partition", "offset"]
%[3]s
columns = { student_id = "utf8", day = "int32", open = "utf8", codes = "utf8", level = "utf8", score = "float64" }

[[rule]]
name = "ew"
input = "events"
module = %[4]q
group_by = ["student_id"]
order_by = "day"
emit = "per_row"
partition_column = "kafka_partition"
offset_column = "kafka_offset"

[[alerts]]
name = "changes"
input = "ew"
update_on = ["alert_level"]

[[sink]]
name = "out"
input = "changes"
connector = "kafka_topic"
[sink.options]
brokers = %[2]s
topic = %[1]q
key_column = "student_id"
%[5]s
`, name, brokers, src, s.lastAlerts(), snk)
	if err := os.WriteFile(filepath.Join(s.dir, name+".toml"), []byte(toml), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// lastAlerts builds engine/pipeline/testdata/lastalerts once per test.
func (s *scaleOut) lastAlerts() string {
	s.t.Helper()
	return hosttest.BuildGoRule(s.t, filepath.Join("..", "..", "engine", "pipeline", "testdata", "lastalerts"))
}
