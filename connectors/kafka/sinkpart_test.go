package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/kafka"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// partitionSink is the setup of the partition_column tests: a cluster
// with the output topic, the input schema (student_id, kafka_partition),
// the sink's config, and an allocator checked when the test ends.
type partitionSink struct {
	t      *testing.T
	ctx    context.Context
	c      *kafkatest.Cluster
	mem    memory.Allocator
	schema *arrow.Schema
	cfg    protocol.Config
	id     uint64 // of the last checkpoint
}

func newPartitionSink(t *testing.T) *partitionSink {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"out": 1}})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	cfg := protocol.Config{Pipeline: "p", Stage: "out", Options: map[string]any{
		"brokers": brokerList(c), "topic": "out", "key_column": "student_id", "partition_column": "kafka_partition",
	}}
	return &partitionSink{t: t, ctx: testCtx(t), c: c, mem: mem, schema: schema, cfg: cfg}
}

// open opens a writer of the sink (one instance's).
func (f *partitionSink) open() protocol.Writer {
	f.t.Helper()
	w, err := kafka.Sink{}.Open(f.ctx, f.cfg, f.mem, f.schema)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// write writes rows (JSON) with w.
func (f *partitionSink) write(w protocol.Writer, rows string) {
	f.t.Helper()
	rec, _, err := array.RecordFromJSON(f.mem, f.schema, strings.NewReader(rows))
	if err != nil {
		f.t.Fatal(err)
	}
	defer rec.Release()
	if err := w.Write(f.ctx, rec); err != nil {
		f.t.Fatal(err)
	}
}

// checkpoint flushes w at the next checkpoint, whose kafka source
// position has offsets (input partition → next offset, JSON) and, unless
// empty, since (sourcePosition.Since, JSON).
func (f *partitionSink) checkpoint(w protocol.Writer, offsets, since string) error {
	f.t.Helper()
	f.id++
	pos := `{"offsets": {"events": ` + offsets + `}`
	if since != "" {
		pos += `, "since": ` + since
	}
	_, err := w.(protocol.Checkpointer).FlushCheckpoint(f.ctx, protocol.Checkpoint{ID: f.id,
		Data: json.RawMessage(`{"sources": {"events": ` + pos + `}}}`)})
	return err
}

// TestPartitionSinkFencing pins the sink's rules with partition_column
// (one transactional producer per input partition): a partition fenced by
// its next owner with no rows pending is let go and the others go on; one
// fenced with rows pending fails the checkpoint and its rows never become
// visible.
func TestPartitionSinkFencing(t *testing.T) {
	f := newPartitionSink(t)
	ctx, c := f.ctx, f.c
	if cp, err := (kafka.Sink{}).LastCheckpoint(ctx, f.cfg); err != nil || cp != nil {
		t.Fatalf("LastCheckpoint = %v, %v: want none (per-partition records are the source's)", cp, err)
	}
	w := f.open()
	write := func(rows string) { t.Helper(); f.write(w, rows) }
	checkpoint := func(offsets string) error { t.Helper(); return f.checkpoint(w, offsets, "") }
	fence := func(p string) {
		t.Helper()
		cl := c.Client(t, kgo.TransactionalID("vigie.p.p"+p))
		if _, _, err := cl.ProducerID(ctx); err != nil {
			t.Fatal(err)
		}
	}
	read := readBack(c, "out")

	write(`[{"student_id": "S1", "kafka_partition": 0}, {"student_id": "S2", "kafka_partition": 1}, {"student_id": "S3", "kafka_partition": 0}]`)
	if err := checkpoint(`{"0": 2, "1": 1}`); err != nil {
		t.Fatal(err)
	}
	// Partition 0 moves: its next owner fences it. This writer's record
	// for it would move over a control record (no rows): let go.
	fence("0")
	write(`[{"student_id": "S4", "kafka_partition": 1}]`)
	if err := checkpoint(`{"0": 3, "1": 2}`); err != nil {
		t.Fatalf("checkpoint after partition 0 moved without rows pending: %v", err)
	}
	if got := read(t); len(got) != 4 {
		t.Fatalf("committed %d rows, want 4: %v", len(got), got)
	}
	// Rows of partition 1 pending when it is fenced: the checkpoint fails
	// and they are never visible.
	write(`[{"student_id": "S5", "kafka_partition": 1}]`)
	fence("1")
	if err := checkpoint(`{"1": 3}`); err == nil {
		t.Fatal("checkpoint with fenced rows pending: no error")
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(t); len(got) != 0 {
		t.Fatalf("rows of a fenced transaction visible: %v", got)
	}
}

// TestPartitionSinkReplay pins offset_column: a partition's next owner,
// replaying the partition from its start to rebuild its state (source
// restore = "replay"), writes only the rows at or above the offset of the
// partition's last committed record, and never commits a record below it
// while it replays.
func TestPartitionSinkReplay(t *testing.T) {
	ctx := testCtx(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"out": 1, "p.checkpoints": 1}})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "arrival_partition", Type: arrow.PrimitiveTypes.Int32},
		{Name: "arrival_seq", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	cfg := protocol.Config{Pipeline: "p", Stage: "out", Options: map[string]any{
		"brokers": brokerList(c), "topic": "out", "key_column": "student_id",
		"partition_column": "arrival_partition", "offset_column": "arrival_seq",
	}}
	open := func() protocol.Writer {
		t.Helper()
		w, err := kafka.Sink{}.Open(ctx, cfg, mem, schema)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	write := func(w protocol.Writer, from, to int) {
		t.Helper()
		var rows []string
		for o := from; o < to; o++ {
			rows = append(rows, fmt.Sprintf(`{"student_id": "S%d", "arrival_partition": 0, "arrival_seq": %d}`, o, o))
		}
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader("["+strings.Join(rows, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	var id uint64
	checkpoint := func(w protocol.Writer, next int) {
		t.Helper()
		id++
		if _, err := w.(protocol.Checkpointer).FlushCheckpoint(ctx, protocol.Checkpoint{ID: id,
			Data: json.RawMessage(fmt.Sprintf(`{"sources": {"events": {"offsets": {"events": {"0": %d}}}}}`, next))}); err != nil {
			t.Fatal(err)
		}
	}
	// committed returns the arrival_seq of every committed row, in order,
	// and the last of the records checkpoints of which were committed.
	committed := func(records int) ([]int64, int64) {
		t.Helper()
		cl := c.Client(t)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "out", Value: []byte("sentinel")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for n := 1; ; n++ {
			if rs = c.ReadCommitted(ctx, t, "out", n); string(rs[len(rs)-1].Value) == "sentinel" {
				break
			}
		}
		var seqs []int64
		for _, r := range rs {
			var row struct {
				Seq int64 `json:"arrival_seq"`
			}
			if string(r.Value) != "sentinel" && json.Unmarshal(r.Value, &row) == nil {
				seqs = append(seqs, row.Seq)
			}
		}
		var last int64 = -1
		for _, r := range c.ReadCommitted(ctx, t, "p.checkpoints", records) {
			var cp struct {
				Data struct{ Offset int64 }
			}
			if err := json.Unmarshal(r.Value, &cp); err != nil {
				t.Fatal(err)
			}
			last = cp.Data.Offset
		}
		return seqs, last
	}

	first := open()
	write(first, 0, 3)
	checkpoint(first, 3)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The next owner replays from offset 0: what it reads below 3 was
	// committed by the first; a checkpoint in the middle of the replay
	// commits nothing (no record either) and keeps the record at 3.
	second := open()
	defer second.Close(ctx)
	write(second, 0, 2)
	checkpoint(second, 2)
	if seqs, last := committed(1); !slices.Equal(seqs, []int64{0, 1, 2}) || last != 3 {
		t.Fatalf("mid-replay: committed rows %v, record %d; want [0 1 2], 3", seqs, last)
	}
	write(second, 2, 5)
	checkpoint(second, 5)
	if seqs, last := committed(2); !slices.Equal(seqs, []int64{0, 1, 2, 3, 4}) || last != 5 {
		t.Fatalf("after the replay: committed rows %v, record %d; want [0 1 2 3 4], 5", seqs, last)
	}
}

// TestPartitionSinkSecondOwner: instance A took partition 0 when the
// checkpoint topic ended at offset 0 (the source's "since"), lost it to B,
// which committed rows and a record of it, and then rows of partition 0
// that A read before the loss reach A's sink. A's new producer for the
// partition fences B, but A must not commit: B already committed rows A
// would write again. The checkpoint fails, A's rows never become
// visible, and B's committed rows stay.
func TestPartitionSinkSecondOwner(t *testing.T) {
	f := newPartitionSink(t)
	ctx, c := f.ctx, f.c
	if _, err := (kafka.Sink{}).LastCheckpoint(ctx, f.cfg); err != nil {
		t.Fatal(err)
	}
	a, b := f.open(), f.open()
	write, checkpoint := f.write, f.checkpoint
	read := readBack(c, "out")

	// A owns partitions 0 and 1 since offset 0 of the checkpoint topic.
	write(a, `[{"student_id": "S1", "kafka_partition": 1}]`)
	if err := checkpoint(a, `{"0": 5, "1": 1}`, `{"0": 0, "1": 0}`); err != nil {
		t.Fatal(err)
	}
	// B takes partition 0 (after A's record of partition 1) and commits.
	write(b, `[{"student_id": "S2", "kafka_partition": 0}]`)
	if err := checkpoint(b, `{"0": 6}`, `{"0": 2}`); err != nil {
		t.Fatal(err)
	}
	if got := read(t); len(got) != 2 {
		t.Fatalf("committed %d rows, want 2: %v", len(got), got)
	}
	// A row of partition 0 that A read before it lost the partition.
	write(a, `[{"student_id": "S3", "kafka_partition": 0}]`)
	err := checkpoint(a, `{"0": 6, "1": 1}`, `{"0": 0, "1": 0}`)
	if err == nil || !strings.Contains(err.Error(), "another instance committed") {
		t.Fatalf("checkpoint of a partition another instance committed meanwhile: err = %v", err)
	}
	if errors.Is(err, protocol.ErrTemporary) {
		t.Errorf("err = %v: temporary, so retried in the run", err)
	}
	for _, w := range []protocol.Writer{a, b} {
		if err := w.Abort(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t); len(got) != 0 {
		t.Fatalf("rows of the refused transaction visible: %v", got)
	}
}

// TestPartitionSinkOwnRecords: the records a stage committed itself since
// its source took a partition do not stop a writer opened again in the
// same run (after a connector failure) from committing it, because the
// flush's position carries them; a writer opened without that position
// cannot tell them from another instance's and refuses.
func TestPartitionSinkOwnRecords(t *testing.T) {
	f := newPartitionSink(t)
	ctx := f.ctx
	if _, err := (kafka.Sink{}).LastCheckpoint(ctx, f.cfg); err != nil {
		t.Fatal(err)
	}
	w := f.open()
	f.write(w, `[{"student_id": "S1", "kafka_partition": 0}]`)
	f.id++
	pos, err := w.(protocol.Checkpointer).FlushCheckpoint(ctx, protocol.Checkpoint{ID: f.id,
		Data: json.RawMessage(`{"sources": {"events": {"offsets": {"events": {"0": 1}}, "since": {"0": 0}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	reopen := func(resume protocol.Position) error {
		t.Helper()
		cfg := f.cfg
		cfg.Resume = resume
		w, err := kafka.Sink{}.Open(ctx, cfg, f.mem, f.schema)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort(ctx)
		f.write(w, `[{"student_id": "S2", "kafka_partition": 0}]`)
		return f.checkpoint(w, `{"0": 2}`, `{"0": 0}`)
	}
	if err := reopen(nil); err == nil || !strings.Contains(err.Error(), "another instance committed") {
		t.Fatalf("reopened without the position: err = %v, want a refusal", err)
	}
	if err := reopen(pos); err != nil {
		t.Fatalf("reopened with the position of its own flush: %v", err)
	}
}
