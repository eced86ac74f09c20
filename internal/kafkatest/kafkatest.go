// Package kafkatest starts an in-process Kafka cluster for tests: franz-go's
// pkg/kfake, which speaks the Kafka protocol on loopback ports and supports
// consumer groups, transactions, read_committed, several brokers and fault
// injection (kfake.Fault, Cluster.ControlKey).
//
// A test calls Start, which closes the cluster with t.Cleanup, then talks to
// it with any Kafka client (Client gives a franz-go one with the seed
// brokers set, closed the same way).
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config says what cluster to start. The zero value is one broker and no
// topics.
type Config struct {
	// Brokers is the number of brokers (0: 1).
	Brokers int
	// Topics are created before Start returns: name → partitions.
	Topics map[string]int32
	// Extra are further kfake options (TLS, SASL users, BrokerConfigs...),
	// applied after the ones Config implies.
	Extra []kfake.Opt
}

// Cluster is a running in-process cluster.
type Cluster struct {
	*kfake.Cluster
	// Addrs are the brokers' host:port, for seed brokers.
	Addrs []string
}

// Start starts a cluster for t and closes it when t ends.
func Start(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	n := max(cfg.Brokers, 1)
	opts := []kfake.Opt{kfake.NumBrokers(n)}
	// SeedTopics takes one partition count per call: one call per topic,
	// in a fixed order so a failing test is reproducible.
	for _, name := range slices.Sorted(maps.Keys(cfg.Topics)) {
		opts = append(opts, kfake.SeedTopics(cfg.Topics[name], name))
	}
	opts = append(opts, cfg.Extra...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Cluster: c, Addrs: c.ListenAddrs()}
}

// Client returns a franz-go client seeded with the cluster's brokers, with
// opts applied after, closed when t ends.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ReadCommitted reads topic from its start with the read_committed
// isolation level (what a downstream consumer of an exactly-once pipeline
// sees) until it has n records, and returns them in the order received
// (per partition, in offset order). It fails t if ctx ends first or a
// fetch fails. Records of aborted transactions are never returned; to
// check that none exist, follow them with committed records in the same
// partition and read until those.
func (c *Cluster) ReadCommitted(ctx context.Context, t testing.TB, topic string, n int) []*kgo.Record {
	t.Helper()
	return c.read(ctx, t, topic, n, kgo.ReadCommitted())
}

// ReadUncommitted is ReadCommitted with the read_uncommitted isolation
// level: records of open and aborted transactions are returned too.
func (c *Cluster) ReadUncommitted(ctx context.Context, t testing.TB, topic string, n int) []*kgo.Record {
	t.Helper()
	return c.read(ctx, t, topic, n, kgo.ReadUncommitted())
}

func (c *Cluster) read(ctx context.Context, t testing.TB, topic string, n int, level kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Addrs...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level),
	)
	if err != nil {
		t.Fatalf("kafka reader: %v", err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %d of %d records before %v", topic, len(out), n, err)
		}
		if err := firstErr(fs); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// CommittedConsumer returns a client (closed when t ends) that consumes
// topic from its start with the read_committed isolation level, for a test
// that polls it as records arrive (see Poll).
func (c *Cluster) CommittedConsumer(t testing.TB, topic string) *kgo.Client {
	t.Helper()
	return c.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
}

// Poll polls cl once for at most d (bounded by ctx too) and calls each for
// every record fetched. A fetch error other than the poll's deadline
// passing fails t.
func Poll(ctx context.Context, t testing.TB, cl *kgo.Client, d time.Duration, each func(*kgo.Record)) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	fs := cl.PollFetches(pctx)
	for _, fe := range fs.Errors() {
		if !errors.Is(fe.Err, context.DeadlineExceeded) {
			t.Fatalf("read %s: %v", fe.Topic, fe.Err)
		}
	}
	fs.EachRecord(each)
}

// BrokersTOML is the cluster's broker addresses as a TOML array, for the
// brokers option of a pipeline's kafka connectors.
func (c *Cluster) BrokersTOML() string {
	return `["` + strings.Join(c.Addrs, `", "`) + `"]`
}

// WritePipeline writes at path a pipeline file that copies topic "events"
// of the cluster to topic "out": its [pipeline] table holds the lines
// pipeline; a source "events" (connector kafka) reads topic "events" with
// the further option lines source; middle (rules, may be empty) follows;
// a sink "out" (connector kafka_topic) writes the stage input to topic
// "out" keyed by student_id.
func (c *Cluster) WritePipeline(t testing.TB, path, pipeline, source, middle, input string) {
	t.Helper()
	brokers := c.BrokersTOML()
	toml := fmt.Sprintf(`[pipeline]
%s
[[source]]
name = "events"
connector = "kafka"
[source.options]
brokers = %s
topics = ["events"]
%s
%s
[[sink]]
name = "out"
input = %q
connector = "kafka_topic"
[sink.options]
brokers = %s
topic = "out"
key_column = "student_id"
`, pipeline, brokers, source, middle, input, brokers)
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
}

func firstErr(fs kgo.Fetches) error {
	for _, e := range fs.Errors() {
		return fmt.Errorf("topic %s partition %d: %w", e.Topic, e.Partition, e.Err)
	}
	return nil
}
