package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/kafka"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// events are message values: 4 good, 4 bad (an empty value, not JSON, a
// field of the wrong type, not an object).
var events = []string{
	`{"id": 1, "student": {"id": "S1"}, "score": 12.5, "day": "2025-09-01"}`,
	`{"id": 2, "student": {"id": "S2"}, "score": null}`,
	``,
	`not json`,
	`{"id": "three", "student": {"id": "S3"}}`,
	`[1, 2]`,
	`{"id": 4, "student": {"id": "S4"}, "score": 20, "day": "2026-01-05"}`,
	`{"id": 5, "student": {"id": "S5"}, "score": 1e1}`,
}

var (
	eventColumns = map[string]any{"id": "int64", "student.id": "utf8", "score": "float64", "day": "date32"}
	eventOrder   = []any{"id", "student.id", "score", "day"}
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// produce writes values to partition p of topic, keyed key-N.
func produce(ctx context.Context, t *testing.T, c *kafkatest.Cluster, topic string, p int32, values ...string) {
	t.Helper()
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i, v := range values {
		r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "key-%d", i), Value: []byte(v)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func sourceOptions(c *kafkatest.Cluster, extra map[string]any) map[string]any {
	brokers := make([]any, len(c.Addrs))
	for i, a := range c.Addrs {
		brokers[i] = a
	}
	o := map[string]any{"brokers": brokers, "topics": []any{"events"}, "columns": eventColumns, "order": eventOrder}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func TestSourceConformance(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 1}})
	produce(ctx, t, c, "events", 0, events...)
	opts := sourceOptions(c, map[string]any{"stop_at_end": true, "metadata": []any{"key", "offset"}})
	sc := conformance.SourceCase{
		Options: opts,
		WantRows: []string{
			"1|S1|12.5|2025-09-01|key-0|0",
			"2|S2|(null)|(null)|key-1|1",
			"4|S4|20|2026-01-05|key-6|6",
			"5|S5|10|(null)|key-7|7",
		},
		Bad: []conformance.BadCase{
			{Options: sourceOptions(c, map[string]any{"columns": map[string]any{"id": "integer"}, "order": []any{"id"}}), Want: `unknown type "integer"`},
			{Options: sourceOptions(c, map[string]any{"metadata": []any{"headers"}}), Want: `unknown metadata "headers"`},
			{Options: sourceOptions(c, map[string]any{"stop_at_end": true, "group": "g"}), Want: "cannot be used with group"},
			{Options: sourceOptions(c, map[string]any{"max_delay": "soon"}), Want: "expected a positive duration"},
			{Options: sourceOptions(c, map[string]any{"group": "g", "restore": "replay"}), Want: "replay needs partitioned_by"},
			{Options: sourceOptions(c, map[string]any{"group": "g", "partitioned_by": "id", "metadata": []any{"partition"}, "restore": "replay"}), Want: `replay needs metadata "offset"`},
			{Options: sourceOptions(c, map[string]any{"sasl_mechanism": "PLAIN", "sasl_password_env": "KAFKA_PASSWORD"}), Want: "must start with VIGIE_"},
			{Options: sourceOptions(c, map[string]any{"stop_at_end": true, "topics": []any{"nope"}}), Want: `topic "nope" does not exist`},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, kafka.Source{}, sc) })
	t.Run("through a plugin", func(t *testing.T) {
		conformance.TestSource(t, conformance.ThroughPlugin(t, kafka.Source{}).(protocol.Source), sc)
	})
}

// collector gathers what a source emits; stop is called once it has
// want rows.
type collector struct {
	mu      sync.Mutex
	rows    []string
	batches []int
	dead    []protocol.DeadLetter
	want    int
	// wantDead, when set, stops on that many dead letters instead.
	wantDead int
	stop     func()
}

func (c *collector) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, conformance.Rows(rec)...)
	c.batches = append(c.batches, int(rec.NumRows()))
	if c.stop != nil && c.wantDead == 0 && len(c.rows) >= c.want {
		c.stop()
	}
	return nil
}

func (c *collector) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = append(c.dead, rows...)
	if c.stop != nil && c.wantDead > 0 && len(c.dead) >= c.wantDead {
		c.stop()
	}
	return nil
}

// readUntil runs an unbounded read until it has emitted want rows.
func readUntil(ctx context.Context, t *testing.T, opts map[string]any, batchRows, want int) *collector {
	t.Helper()
	return readUntilCol(ctx, t, opts, batchRows, &collector{want: want})
}

func readUntilCol(ctx context.Context, t *testing.T, opts map[string]any, batchRows int, col *collector) *collector {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	checked, err := kafka.Source{}.Spec().Check(opts)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	col.stop = cancel
	err = kafka.Source{}.Read(rctx, protocol.Config{Connector: kafka.SourceName, Stage: "test", BatchRows: batchRows, Options: checked}, mem, col)
	if ctx.Err() != nil {
		t.Fatalf("read %d rows (want %d), %d dead letters (want %d) before %v", len(col.rows), col.want, len(col.dead), col.wantDead, ctx.Err())
	}
	if err != context.Canceled {
		t.Fatalf("read returned %v, want context.Canceled", err)
	}
	return col
}

func TestSourceDeadLetters(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 1}})
	produce(ctx, t, c, "events", 0, events...)
	col := readUntil(ctx, t, sourceOptions(c, nil), 100, 4)
	want := []struct {
		line         int64
		column, says string
	}{
		{2, "", "empty message value"},
		{3, "", "not JSON"},
		{4, "id", "expected int64"},
		{5, "", "expected a JSON object"},
	}
	if len(col.dead) != len(want) {
		t.Fatalf("dead letters: %+v, want %d", col.dead, len(want))
	}
	for i, w := range want {
		d := col.dead[i]
		if d.Origin != "events/0" || d.Line != w.line || d.Column != w.column || !strings.Contains(d.Reason, w.says) {
			t.Errorf("dead letter %d: %+v, want origin events/0, line (offset) %d, column %q, reason with %q", i, d, w.line, w.column, w.says)
		}
		if d.Raw != events[w.line] {
			t.Errorf("dead letter %d: raw %q, want %q", i, d.Raw, events[w.line])
		}
	}
}

// TestSourceDeadTail: bad messages with no good one after them still
// reach the dead letters within max_delay (not held for a next batch).
func TestSourceDeadTail(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 1}})
	produce(ctx, t, c, "events", 0, events[3], events[5])
	col := readUntilCol(ctx, t, sourceOptions(c, map[string]any{"max_delay": "20ms"}), 100, &collector{wantDead: 2})
	if len(col.dead) != 2 || col.dead[1].Line != 1 {
		t.Errorf("dead letters %+v, want offsets 0 and 1", col.dead)
	}
}

// TestSourceMaxDelay: with batch_rows far above what arrives, rows still
// leave in a batch once max_delay has passed since the first of them.
func TestSourceMaxDelay(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 1}})
	produce(ctx, t, c, "events", 0, events[0], events[1], events[6])
	col := readUntil(ctx, t, sourceOptions(c, map[string]any{"max_delay": "20ms"}), 100000, 3)
	if len(col.rows) != 3 {
		t.Errorf("rows %q, want 3", col.rows)
	}
}

// TestSourceGroup: a member of a group reads every partition; the group's
// offsets are committed as batches are handed over, so a second read of
// the same group (no position) gets only what was produced since.
func TestSourceGroup(t *testing.T) {
	ctx := testCtx(t)
	c := kafkatest.Start(t, kafkatest.Config{Brokers: 3, Topics: map[string]int32{"events": 3}})
	for p := range int32(3) {
		var vs []string
		for i := range 10 {
			vs = append(vs, fmt.Sprintf(`{"id": %d}`, int(p)*100+i))
		}
		produce(ctx, t, c, "events", p, vs...)
	}
	opts := sourceOptions(c, map[string]any{"group": "vigie", "columns": map[string]any{"id": "int64"}, "order": []any{"id"}})
	first := readUntil(ctx, t, opts, 7, 30)
	seen := map[string]bool{}
	for _, r := range first.rows {
		seen[r] = true
	}
	if len(first.rows) != 30 || len(seen) != 30 {
		t.Fatalf("first read: %d rows, %d distinct, want 30", len(first.rows), len(seen))
	}
	produce(ctx, t, c, "events", 1, `{"id": 999}`)
	second := readUntil(ctx, t, opts, 7, 1)
	if strings.Join(second.rows, ",") != "999" {
		t.Errorf("second read of the group: %q, want only the new row 999", second.rows)
	}
}
