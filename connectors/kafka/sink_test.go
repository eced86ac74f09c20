package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/kafka"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

var alertSchema = arrow.NewSchema([]arrow.Field{
	{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "risk", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "open", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

var alertBatches = []string{
	`[{"student_id": "S1", "risk": 0.5, "day": "2025-09-01", "open": true}, {"student_id": "S2", "risk": null, "day": null, "open": false}]`,
	`[{"student_id": "S3", "risk": 0.25, "day": "2025-10-01", "open": null}]`,
	`[{"student_id": null, "risk": 1, "day": "2026-01-05", "open": true}, {"student_id": "S4", "risk": 0, "day": "2026-01-06", "open": false}]`,
	`[{"student_id": "S5", "risk": 0.75, "day": "2026-02-01", "open": true}]`,
}

func brokerList(c *kafkatest.Cluster) []any {
	out := make([]any, len(c.Addrs))
	for i, a := range c.Addrs {
		out[i] = a
	}
	return out
}

// readBack returns what was written to topic (one partition) since the
// previous call, read with read_committed: it ends each read with a
// sentinel record, so everything before it, and nothing after, is read.
func readBack(c *kafkatest.Cluster, topic string) func(t *testing.T) []string {
	var seen int
	return func(t *testing.T) []string {
		t.Helper()
		ctx := testCtx(t)
		cl := c.Client(t)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("sentinel")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for n := seen + 1; ; n++ {
			rs = c.ReadCommitted(ctx, t, topic, n)
			if string(rs[len(rs)-1].Value) == "sentinel" {
				break
			}
		}
		var vals []string
		for _, r := range rs[seen:] {
			if string(r.Value) != "sentinel" {
				vals = append(vals, string(r.Value))
			}
		}
		seen = len(rs)
		rec, _, err := array.RecordFromJSON(memory.NewGoAllocator(), alertSchema, strings.NewReader("["+strings.Join(vals, ",")+"]"))
		if err != nil {
			t.Fatalf("messages %q do not read back as rows: %v", vals, err)
		}
		defer rec.Release()
		return conformance.Rows(rec)
	}
}

// sinkWrite checks the sink options raw, opens the Kafka sink with them as
// stage stage of pipeline, writes rec and closes the sink, failing t on
// any error; it returns the checked options.
func sinkWrite(ctx context.Context, t *testing.T, raw map[string]any, pipeline, stage string, mem memory.Allocator, rec arrow.RecordBatch) map[string]any {
	t.Helper()
	opts, err := kafka.Sink{}.Spec().Check(raw)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kafka.Sink{}.Open(ctx, protocol.Config{Pipeline: pipeline, Stage: stage, Options: opts}, mem, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return opts
}

// sourceReadAll checks the source options raw (which should stop at the
// end), reads with the Kafka source in batches of 10 rows and returns the
// rows read, failing t on any error.
func sourceReadAll(ctx context.Context, t *testing.T, raw map[string]any, mem memory.Allocator) []string {
	t.Helper()
	opts, err := kafka.Source{}.Spec().Check(raw)
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	if err := (kafka.Source{}).Read(ctx, protocol.Config{Options: opts, BatchRows: 10}, mem, col); err != nil {
		t.Fatal(err)
	}
	return col.rows
}

func TestSinkConformance(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"alerts": 1, "alerts2": 1}})
	for _, tc := range []struct {
		name  string
		topic string
		snk   func(t *testing.T) protocol.Sink
	}{
		{"in-process", "alerts", func(*testing.T) protocol.Sink { return kafka.Sink{} }},
		{"through a plugin", "alerts2", func(t *testing.T) protocol.Sink {
			return conformance.ThroughPlugin(t, kafka.Sink{}).(protocol.Sink)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]any{"brokers": brokerList(c), "topic": tc.topic, "key_column": "student_id", "transactional_id": "vigie-test-" + tc.topic}
			conformance.TestSink(t, tc.snk(t), conformance.SinkCase{
				Options:  opts,
				Schema:   alertSchema,
				Batches:  alertBatches,
				ReadBack: readBack(c, tc.topic),
				Bad: []conformance.BadCase{
					{Options: map[string]any{"brokers": brokerList(c)}, Want: `option "topic": required option is missing`},
					{Options: map[string]any{"brokers": brokerList(c), "topic": "t", "sasl_mechanism": "SCRAM-SHA-256"}, Want: "VIGIE_KAFKA_USER and VIGIE_KAFKA_PASSWORD"},
					{Options: map[string]any{"brokers": brokerList(c), "topic": "t", "tls_ca_file": "/no/such/ca.pem"}, Want: "/no/such/ca.pem"},
				},
			})
		})
	}
}

// TestSinkKeysAndHeaders: the key column's value is the message key (so a
// student's rows share a partition) and every message carries the
// provenance headers.
func TestSinkKeysAndHeaders(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"alerts": 4}})
	md := arrow.NewMetadata([]string{"vigie.rule.name", "vigie.rule.sha256", "other"}, []string{"early_warning", "abc123", "x"})
	schema := arrow.NewSchema(alertSchema.Fields(), &md)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rows []string
	for i := range 40 {
		rows = append(rows, fmt.Sprintf(`{"student_id": "S%d", "risk": 0.5}`, i%5))
	}
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader("["+strings.Join(rows, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	sinkWrite(ctx, t, map[string]any{"brokers": brokerList(c), "topic": "alerts", "key_column": "student_id"}, "live", "out", mem, rec)
	partOf := map[string]int32{}
	for _, r := range c.ReadCommitted(ctx, t, "alerts", 40) {
		if !bytes.Contains(r.Value, append([]byte(`"student_id":"`), append(r.Key, '"')...)) {
			t.Errorf("key %q is not the value's student_id: %s", r.Key, r.Value)
		}
		if p, ok := partOf[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("key %s in partitions %d and %d", r.Key, p, r.Partition)
		}
		partOf[string(r.Key)] = r.Partition
		got := map[string]string{}
		for _, h := range r.Headers {
			got[h.Key] = string(h.Value)
		}
		want := map[string]string{"vigie.pipeline": "live", "vigie.stage": "out", "vigie.rule.name": "early_warning", "vigie.rule.sha256": "abc123"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("headers %v, want %v", got, want)
		}
	}
	if len(partOf) != 5 {
		t.Errorf("%d distinct keys, want 5", len(partOf))
	}
}

// TestSASL: source and sink authenticate with PLAIN and SCRAM, the
// credentials taken from the environment variables the options name; a
// wrong password fails.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			ctx := testCtx(t)
			c := kafkatest.Start(t, kafkatest.Config{
				Topics: map[string]int32{"events": 1},
				Extra:  []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(mech, "vigie", "s3cret")},
			})
			t.Setenv("VIGIE_TEST_USER", "vigie")
			t.Setenv("VIGIE_TEST_PASS", "s3cret")
			auth := map[string]any{"sasl_mechanism": mech, "sasl_user_env": "VIGIE_TEST_USER", "sasl_password_env": "VIGIE_TEST_PASS"}
			sinkOpts := map[string]any{"brokers": brokerList(c), "topic": "events"}
			for k, v := range auth {
				sinkOpts[k] = v
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
			rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[{"id": 1}, {"id": 2}]`))
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Release()
			checked := sinkWrite(ctx, t, sinkOpts, "p", "s", mem, rec)
			srcOpts := map[string]any{"brokers": brokerList(c), "topics": []any{"events"}, "columns": map[string]any{"id": "int64"}, "stop_at_end": true}
			for k, v := range auth {
				srcOpts[k] = v
			}
			if rows := sourceReadAll(ctx, t, srcOpts, mem); strings.Join(rows, ",") != "1,2" {
				t.Errorf("read back %q, want 1,2", rows)
			}

			t.Setenv("VIGIE_TEST_PASS", "wrong")
			// kfake drops the connection of a failed authentication, which
			// franz-go retries: bound the attempt.
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if _, err := (kafka.Sink{}).Open(wctx, protocol.Config{Pipeline: "p", Stage: "s", Options: checked}, mem, schema); err == nil {
				t.Error("a wrong password was accepted")
			}
		})
	}
}
