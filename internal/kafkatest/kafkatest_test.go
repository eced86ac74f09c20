package kafkatest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// These tests check the pieces of franz-go and kfake that
// docs/design/streaming.md builds exactly-once on, at the versions in
// go.mod.

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStart(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"in": 6, "out": 2}})
	if len(c.Addrs) != 3 {
		t.Fatalf("got %d broker addresses, want 3", len(c.Addrs))
	}
	adm := kadm.NewClient(c.Client(t))
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Errorf("metadata lists %d brokers, want 3", len(md.Brokers))
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"in": 6, "out": 2} {
		if got := len(topics[name].Partitions); got != want {
			t.Errorf("topic %q has %d partitions, want %d", name, got, want)
		}
	}
}

// produceTxn produces values to the given partitions of topic in one
// transaction of cl, ended with commit.
func produceTxn(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, values map[int32][]string, commit kgo.TransactionEndTry) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for p, vs := range values {
		for _, v := range vs {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		t.Fatal(err)
	}
}

func values(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	slices.Sort(out)
	return out
}

// TestTransactionVisibility: the records of an aborted transaction are
// invisible to a read_committed consumer (though they are in the log), a
// committed transaction's are visible. After the transaction under test,
// a committed one writes one end record per partition: a read_committed
// reader that got every end record has read past anything the first
// transaction left in the log, so "not seen" means "not visible".
func TestTransactionVisibility(t *testing.T) {
	const parts = 3
	tests := []struct {
		name    string
		end     kgo.TransactionEndTry
		visible bool
	}{
		{"aborted is invisible", kgo.TryAbort, false},
		{"committed is visible", kgo.TryCommit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"out": parts}})
			cl := c.Client(t, kgo.TransactionalID("vigie-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			first, ends := map[int32][]string{}, map[int32][]string{}
			var wantFirst []string
			for p := range int32(parts) {
				for i := range 4 {
					v := fmt.Sprintf("row-%d-%d", p, i)
					first[p] = append(first[p], v)
					wantFirst = append(wantFirst, v)
				}
				ends[p] = []string{fmt.Sprintf("end-%d", p)}
			}
			produceTxn(ctx, t, cl, "out", first, tt.end)
			produceTxn(ctx, t, cl, "out", ends, kgo.TryCommit)

			total := parts * 5
			if got := len(c.ReadUncommitted(ctx, t, "out", total)); got != total {
				t.Fatalf("read_uncommitted: %d records, want %d (both transactions in the log)", got, total)
			}
			want := parts
			if tt.visible {
				want = total
			}
			got := c.ReadCommitted(ctx, t, "out", want)
			var rows, endRows []string
			for _, v := range values(got) {
				if strings.HasPrefix(v, "end-") {
					endRows = append(endRows, v)
				} else {
					rows = append(rows, v)
				}
			}
			if len(endRows) != parts {
				t.Fatalf("read_committed: %d end records, want %d", len(endRows), parts)
			}
			slices.Sort(wantFirst)
			if tt.visible && !slices.Equal(rows, wantFirst) {
				t.Errorf("read_committed rows of the committed transaction: %v, want %v", rows, wantFirst)
			}
			if !tt.visible && len(rows) > 0 {
				t.Errorf("read_committed sees %d rows of the aborted transaction: %v", len(rows), rows)
			}
		})
	}
}

// TestGroupTransactSession is the consume-transform-produce loop: a
// GroupTransactSession consumes "in" in a group and produces to "out";
// its first transaction is aborted, the others committed. Every input
// must then be in "out" exactly once for a read_committed reader, the
// aborted outputs must not, and the group's committed offsets must be
// the ends of "in": the offsets were committed in the transactions.
func TestGroupTransactSession(t *testing.T) {
	const (
		inParts = 3
		perPart = 10
		group   = "vigie-group"
	)
	ctx := testCtx(t)
	// One partition for "out": the aborted outputs come first in its log,
	// so reading the committed ones reads past them.
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"in": inParts, "out": 1}})
	in := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var inputs []string
	for p := range int32(inParts) {
		for i := range perPart {
			v := fmt.Sprintf("in-%d-%d", p, i)
			inputs = append(inputs, v)
			if err := in.ProduceSync(ctx, &kgo.Record{Topic: "in", Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(c.Addrs...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID("vigie-pipeline"),
		kgo.DefaultProduceTopic("out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	aborted := 0
	done := map[string]int{}
	for len(done) < len(inputs) {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d of %d inputs committed before %v", len(done), len(inputs), err)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("poll: topic %s partition %d: %v", e.Topic, e.Partition, e.Err)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		abort := aborted == 0
		var out []*kgo.Record
		for _, r := range recs {
			prefix := "out-"
			if abort {
				prefix = "aborted-"
			}
			out = append(out, &kgo.Record{Value: []byte(prefix + string(r.Value))})
		}
		if err := sess.ProduceSync(ctx, out...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if abort {
			committed, err := sess.End(ctx, kgo.TryAbort)
			if err != nil || committed {
				t.Fatalf("End(TryAbort) = %v, %v; want false, nil", committed, err)
			}
			aborted = len(recs)
			continue
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil || !committed {
			t.Fatalf("End(TryCommit) = %v, %v; want true, nil", committed, err)
		}
		for _, r := range recs {
			done[string(r.Value)]++
		}
	}
	// The aborted records were consumed again after the abort (the session
	// rewinds to the committed offsets), and nothing twice.
	for v, n := range done {
		if n != 1 {
			t.Errorf("input %s processed in %d committed transactions", v, n)
		}
	}

	if got := len(c.ReadUncommitted(ctx, t, "out", len(inputs)+aborted)); got != len(inputs)+aborted {
		t.Fatalf("read_uncommitted: %d records, want %d", got, len(inputs)+aborted)
	}
	var want []string
	for _, v := range inputs {
		want = append(want, "out-"+v)
	}
	slices.Sort(want)
	if got := values(c.ReadCommitted(ctx, t, "out", len(inputs))); !slices.Equal(got, want) {
		t.Errorf("read_committed out:\n got %v\nwant %v", got, want)
	}

	adm := kadm.NewClient(c.Client(t))
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(inParts) {
		o, ok := offs.Lookup("in", p)
		if !ok || o.Err != nil || o.At != perPart {
			t.Errorf("group offset of in/%d: %+v (found %v), want %d", p, o.Offset, ok, perPart)
		}
	}
}

// TestRestartFencesOpenTransaction is an engine killed in the middle of a
// transaction and started again: the new client, with the same
// transactional id, loads its producer id (InitProducerID), which aborts
// the dead one's open transaction. Its records stay invisible, the topic's
// last stable offset moves past them (a read_committed reader is not
// blocked behind them) and the dead client can no longer commit.
func TestRestartFencesOpenTransaction(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"out": 1}})
	// A transaction timeout beyond the test's: only fencing can end the
	// dead client's transaction in time.
	dead := c.Client(t, kgo.TransactionalID("vigie-pipeline"), kgo.TransactionTimeout(5*time.Minute))
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := dead.ProduceSync(ctx, &kgo.Record{Topic: "out", Value: []byte("from the killed run")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	restarted := c.Client(t, kgo.TransactionalID("vigie-pipeline"))
	if _, _, err := restarted.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	produceTxn(ctx, t, restarted, "out", map[int32][]string{0: {"after restart"}}, kgo.TryCommit)

	if got := values(c.ReadCommitted(ctx, t, "out", 1)); !slices.Equal(got, []string{"after restart"}) {
		t.Errorf("read_committed: %v, want only the restarted run's record", got)
	}
	if got := len(c.ReadUncommitted(ctx, t, "out", 2)); got != 2 {
		t.Fatalf("read_uncommitted: %d records, want 2 (the killed run's is in the log)", got)
	}
	if err := dead.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the fenced client committed its transaction")
	}
}

// TestFaultInjection: kfake fails the first produce requests with a
// retriable error; franz-go retries inside the transaction, which commits
// every record once. This is how the engine's tests inject broker faults.
func TestFaultInjection(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"out": 1}})
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 2})
	// A retriable produce error refreshes metadata first: without a short
	// minimum age each retry would wait the default 5s.
	cl := c.Client(t, kgo.TransactionalID("vigie-pipeline"), kgo.MetadataMinAge(10*time.Millisecond))
	produceTxn(ctx, t, cl, "out", map[int32][]string{0: {"a", "b", "c"}}, kgo.TryCommit)
	if n := h.Hits(); n != 2 {
		t.Errorf("fault hit %d produce requests, want 2", n)
	}
	if got := values(c.ReadCommitted(ctx, t, "out", 3)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("read_committed: %v, want a b c once each", got)
	}
	if got := len(c.ReadUncommitted(ctx, t, "out", 3)); got != 3 {
		t.Errorf("read_uncommitted: %d records, want 3 (no duplicate from the retries)", got)
	}
}

// TestEndCommitsEverythingPolled pins the constraint the engine's
// checkpoints are designed around (docs/design/streaming.md): End commits
// the offsets of every record PollFetches returned, whether or not its
// output was produced. So a source must not poll past a checkpoint's
// barrier until that checkpoint's End has returned.
func TestEndCommitsEverythingPolled(t *testing.T) {
	const n = 20
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"in": 1, "out": 1}})
	in := c.Client(t)
	for i := range n {
		if err := in.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(c.Addrs...),
		kgo.ConsumerGroup("g"),
		kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID("t"),
		kgo.DefaultProduceTopic("out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var polled []*kgo.Record
	for len(polled) < n {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		polled = append(polled, fs.Records()...)
	}
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	// Only the first record's output: the others are "still in the
	// pipeline" when the transaction ends.
	if err := sess.ProduceSync(ctx, &kgo.Record{Value: polled[0].Value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if ok, err := sess.End(ctx, kgo.TryCommit); !ok || err != nil {
		t.Fatalf("End(TryCommit) = %v, %v", ok, err)
	}
	offs, err := kadm.NewClient(c.Client(t)).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("in", 0); !ok || o.At != n {
		t.Errorf("committed offset of in/0: %d (found %v), want %d: every polled record", o.At, ok, n)
	}
}
