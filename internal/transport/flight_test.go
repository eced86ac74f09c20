package transport_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-plugin"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/transport"
)

// seqSource emits the integers 0..rows-1 in batches, and one dead letter
// per batch when dead_letters is set.
type seqSource struct{}

var seqSchema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func (seqSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "seq", Kind: protocol.KindSource, Version: "1", Doc: "test source", Options: []protocol.Option{
		{Name: "rows", Type: protocol.TypeInt, Required: true, Doc: "rows to emit"},
		{Name: "dead_letters", Type: protocol.TypeBool, Default: false, Doc: "emit a dead letter per batch"},
		{Name: "fail", Type: protocol.TypeString, Enum: []string{"", "config", "temporary", "plain"}, Default: "", Doc: "fail after the first batch"},
	}}
}

func (seqSource) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	return seqSchema, nil
}

func (seqSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	rows := cfg.Int("rows")
	var from struct{ Next int64 }
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
	}
	for start := from.Next; start < rows; start += int64(cfg.BatchRows) {
		end := min(rows, start+int64(cfg.BatchRows))
		nb := array.NewInt64Builder(mem)
		lb := array.NewStringBuilder(mem)
		for i := start; i < end; i++ {
			nb.Append(i)
			if i%3 == 0 {
				lb.AppendNull()
			} else {
				lb.Append(fmt.Sprintf("row %d", i))
			}
		}
		n, l := nb.NewArray(), lb.NewArray()
		nb.Release()
		lb.Release()
		rec := array.NewRecordBatch(seqSchema, []arrow.Array{n, l}, end-start)
		n.Release()
		l.Release()
		pos, _ := protocol.NewPosition(struct{ Next int64 }{end})
		err := out.Emit(ctx, rec, pos)
		rec.Release()
		if err != nil {
			return err
		}
		if cfg.Bool("dead_letters") {
			if err := out.DeadLetter(ctx, []protocol.DeadLetter{{Origin: "seq", Line: end, Reason: "test"}}); err != nil {
				return err
			}
		}
		switch cfg.String("fail") {
		case "config":
			return fmt.Errorf("bad setting: %w", protocol.ErrConfig)
		case "temporary":
			return fmt.Errorf("server busy: %w", protocol.ErrTemporary)
		case "plain":
			return errors.New("it broke")
		}
	}
	return nil
}

// memSink keeps what it is given, by stage, once closed.
type memSink struct {
	mu     sync.Mutex
	closed map[string][]int64
}

func (s *memSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "mem", Kind: protocol.KindSink, Version: "1", Doc: "test sink", Options: []protocol.Option{
		{Name: "fail_on_close", Type: protocol.TypeBool, Doc: "fail in Close"},
	}}
}

func (s *memSink) Validate(ctx context.Context, cfg protocol.Config) error { return nil }

func (s *memSink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	if !schema.Equal(seqSchema) {
		return nil, fmt.Errorf("unexpected schema %s: %w", schema, protocol.ErrConfig)
	}
	return &memWriter{s: s, cfg: cfg}, nil
}

type memWriter struct {
	s    *memSink
	cfg  protocol.Config
	rows []int64
}

func (w *memWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	col := rec.Column(0).(*array.Int64)
	w.rows = append(w.rows, col.Int64Values()...)
	return nil
}

func (w *memWriter) Close(ctx context.Context) error {
	if w.cfg.Bool("fail_on_close") {
		return errors.New("disk full")
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.closed[w.cfg.Stage] = w.rows
	return nil
}

func (w *memWriter) Abort(ctx context.Context) error { return nil }

// collect is an Emitter that keeps everything.
type collect struct {
	rows      []int64
	labels    []string
	batches   int
	positions []string // "" for a batch without position
	dead      []protocol.DeadLetter
}

func (c *collect) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	c.batches++
	c.positions = append(c.positions, string(pos))
	n := rec.Column(0).(*array.Int64)
	l := rec.Column(1).(*array.String)
	for i := range n.Len() {
		c.rows = append(c.rows, n.Value(i))
		if l.IsNull(i) {
			c.labels = append(c.labels, "<null>")
		} else {
			c.labels = append(c.labels, l.Value(i))
		}
	}
	return nil
}

func (c *collect) DeadLetter(ctx context.Context, rows []protocol.DeadLetter) error {
	c.dead = append(c.dead, rows...)
	return nil
}

// connectGRPC serves a registry over a real gRPC connection, in-process.
func connectGRPC(t *testing.T, reg *protocol.Registry) *transport.Client {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		transport.PluginName: &transport.GRPCPlugin{Registry: reg},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(transport.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*transport.Client)
}

func source(t *testing.T, c *transport.Client) protocol.Source {
	t.Helper()
	conn, err := c.Connector(context.Background(), "seq")
	if err != nil {
		t.Fatal(err)
	}
	return conn.(protocol.Source)
}

func TestSourceOverGRPC(t *testing.T) {
	sink := &memSink{closed: map[string][]int64{}}
	c := connectGRPC(t, protocol.NewRegistry(seqSource{}, sink))
	ctx := context.Background()

	specs, err := c.Specs(ctx)
	if err != nil || len(specs) != 2 || specs[0].Name != "seq" || specs[1].Kind != protocol.KindSink {
		t.Fatalf("specs = %+v, %v", specs, err)
	}
	src := source(t, c)
	schema, err := src.Schema(ctx, protocol.Config{Connector: "seq", Options: map[string]any{"rows": int64(1)}})
	if err != nil || !schema.Equal(seqSchema) {
		t.Fatalf("schema = %v, %v", schema, err)
	}

	t.Run("rows, nulls and dead letters arrive in order", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		got := &collect{}
		cfg := protocol.Config{Connector: "seq", BatchRows: 4, Options: map[string]any{"rows": int64(10), "dead_letters": true}}
		if err := src.Read(ctx, cfg, mem, got); err != nil {
			t.Fatal(err)
		}
		if got.batches != 3 || len(got.rows) != 10 {
			t.Fatalf("got %d batches, %d rows", got.batches, len(got.rows))
		}
		for i, v := range got.rows {
			if v != int64(i) {
				t.Fatalf("row %d = %d", i, v)
			}
		}
		if got.labels[0] != "<null>" || got.labels[1] != "row 1" || got.labels[3] != "<null>" {
			t.Errorf("labels = %v", got.labels)
		}
		if len(got.dead) != 3 || got.dead[2].Line != 10 {
			t.Errorf("dead letters = %+v", got.dead)
		}
	})

	t.Run("batches larger than a gRPC message keep their size", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		got := &collect{}
		// 1M rows of int64 + strings is ~20 MB in one batch: far above the
		// 4 MiB default gRPC limit. Sliced when it goes inline, it is
		// joined again before it is emitted (batchsize_test.go).
		cfg := protocol.Config{Connector: "seq", BatchRows: 1 << 20, Options: map[string]any{"rows": int64(1 << 20)}}
		if err := src.Read(ctx, cfg, mem, got); err != nil {
			t.Fatal(err)
		}
		if len(got.rows) != 1<<20 || got.rows[len(got.rows)-1] != 1<<20-1 {
			t.Fatalf("got %d rows", len(got.rows))
		}
		if got.batches != 1 || len(got.positions) != 1 || got.positions[0] != `{"Next":1048576}` {
			t.Errorf("a ~20 MB batch arrived as %d batches with positions %q; want one, with its position", got.batches, got.positions)
		}
	})

	t.Run("errors keep their kind", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		for _, tc := range []struct {
			opts map[string]any
			kind error
			text string
		}{
			{map[string]any{"rows": int64(5), "fail": "config"}, protocol.ErrConfig, "bad setting"},
			{map[string]any{"rows": int64(5), "fail": "temporary"}, protocol.ErrTemporary, "server busy"},
			{map[string]any{"rows": int64(5), "fail": "plain"}, nil, "it broke"},
			{map[string]any{"rows": "many"}, protocol.ErrConfig, `option "rows": expected an integer, got a string`},
			{map[string]any{"rws": int64(1)}, protocol.ErrConfig, `option "rws": unknown option (did you mean "rows"?)`},
			{map[string]any{}, protocol.ErrConfig, `option "rows": required option is missing`},
			{map[string]any{"rows": int64(1), "fail": "sometimes"}, protocol.ErrConfig, `"sometimes" is not one of`},
		} {
			err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 2, Options: tc.opts}, mem, &collect{})
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("%v: err = %v, want %q", tc.opts, err, tc.text)
				continue
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("%v: err %v lost its kind %v", tc.opts, err, tc.kind)
			}
		}
		if _, err := c.Connector(ctx, "sqe"); !errors.Is(err, protocol.ErrNotFound) || !strings.Contains(err.Error(), `did you mean "seq"`) {
			t.Errorf("unknown connector: err = %v", err)
		}
	})

	t.Run("sink acknowledges after close", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		conn, err := c.Connector(ctx, "mem")
		if err != nil {
			t.Fatal(err)
		}
		snk := conn.(protocol.Sink)
		w, err := snk.Open(ctx, protocol.Config{Connector: "mem", Stage: "out"}, mem, seqSchema)
		if err != nil {
			t.Fatal(err)
		}
		e := &sinkEmitter{ctx: ctx, w: w}
		if err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 1 << 19, Options: map[string]any{"rows": int64(1<<20 + 7)}}, mem, e); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		sink.mu.Lock()
		rows := sink.closed["out"]
		sink.mu.Unlock()
		if len(rows) != 1<<20+7 || rows[1<<20+6] != 1<<20+6 {
			t.Fatalf("sink kept %d rows", len(rows))
		}

		w, err = snk.Open(ctx, protocol.Config{Connector: "mem", Stage: "bad", Options: map[string]any{"fail_on_close": true}}, mem, seqSchema)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("close of a failing sink: err = %v", err)
		}
	})
}

type sinkEmitter struct {
	ctx context.Context
	w   protocol.Writer
}

func (e *sinkEmitter) Emit(ctx context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	return e.w.Write(ctx, rec)
}
func (e *sinkEmitter) DeadLetter(context.Context, []protocol.DeadLetter) error {
	return nil
}

func TestPositionsAndResumeOverGRPC(t *testing.T) {
	c := connectGRPC(t, protocol.NewRegistry(seqSource{}))
	src := source(t, c)
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := protocol.Config{Connector: "seq", BatchRows: 4, Options: map[string]any{"rows": int64(10)}}
	all := &collect{}
	if err := src.Read(ctx, cfg, mem, all); err != nil {
		t.Fatal(err)
	}
	if want := []string{`{"Next":4}`, `{"Next":8}`, `{"Next":10}`}; fmt.Sprint(all.positions) != fmt.Sprint(want) {
		t.Fatalf("positions = %v, want %v", all.positions, want)
	}
	for i, pos := range all.positions {
		cfg.Resume = protocol.Position(pos)
		rest := &collect{}
		if err := src.Read(ctx, cfg, mem, rest); err != nil {
			t.Fatal(err)
		}
		want := all.rows[min(10, 4*(i+1)):]
		if fmt.Sprint(rest.rows) != fmt.Sprint(want) {
			t.Errorf("resume from %s: rows %v, want %v", pos, rest.rows, want)
		}
	}
	cfg.Resume = protocol.Position(`"nonsense"`)
	if err := src.Read(ctx, cfg, mem, &collect{}); !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), "resume position") {
		t.Errorf("bad position: err = %v", err)
	}
}

// flushSink is a sink whose writers are Flushers returning the number of
// rows written as their position, and resume from it.
type flushSink struct {
	mu   sync.Mutex
	rows map[string][]int64
}

func (s *flushSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "flush", Kind: protocol.KindSink, Version: "1", Doc: "test sink"}
}
func (s *flushSink) Validate(context.Context, protocol.Config) error { return nil }
func (s *flushSink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	w := &flushWriter{s: s, stage: cfg.Stage}
	if cfg.Resume != nil {
		var n int
		if err := protocol.DecodePosition(cfg.Resume, &n); err != nil {
			return nil, err
		}
		s.mu.Lock()
		w.rows = append([]int64(nil), s.rows[cfg.Stage][:n]...)
		s.mu.Unlock()
	}
	return w, nil
}

type flushWriter struct {
	s     *flushSink
	stage string
	rows  []int64
}

func (w *flushWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	w.rows = append(w.rows, rec.Column(0).(*array.Int64).Int64Values()...)
	return nil
}
func (w *flushWriter) Flush(ctx context.Context) (protocol.Position, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.rows[w.stage] = append([]int64(nil), w.rows...)
	return protocol.NewPosition(len(w.rows))
}
func (w *flushWriter) Close(ctx context.Context) error { _, err := w.Flush(ctx); return err }
func (w *flushWriter) Abort(ctx context.Context) error { return nil }

func TestSinkFlushAcknowledgesOverGRPC(t *testing.T) {
	snkImpl := &flushSink{rows: map[string][]int64{}}
	c := connectGRPC(t, protocol.NewRegistry(seqSource{}, snkImpl))
	src := source(t, c)
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	conn, err := c.Connector(ctx, "flush")
	if err != nil {
		t.Fatal(err)
	}
	snk := conn.(protocol.Sink)
	w, err := snk.Open(ctx, protocol.Config{Connector: "flush", Stage: "a"}, mem, seqSchema)
	if err != nil {
		t.Fatal(err)
	}
	f := w.(protocol.Flusher)
	if pos, err := f.Flush(ctx); err != nil || pos != nil {
		t.Fatalf("flush before any data: %s, %v", pos, err)
	}
	e := &sinkEmitter{ctx: ctx, w: w}
	if err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 3, Options: map[string]any{"rows": int64(7)}}, mem, e); err != nil {
		t.Fatal(err)
	}
	pos, err := f.Flush(ctx)
	if err != nil || string(pos) != "7" {
		t.Fatalf("flush: %s, %v", pos, err)
	}
	// More rows, never flushed: a crash (here an abort) loses them, and a
	// writer opened at pos continues after row 7.
	if err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 3, Options: map[string]any{"rows": int64(2)}}, mem, e); err != nil {
		t.Fatal(err)
	}
	w.Abort(ctx)
	w, err = snk.Open(ctx, protocol.Config{Connector: "flush", Stage: "a", Resume: pos}, mem, seqSchema)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	if err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 3, Options: map[string]any{"rows": int64(10)}, Resume: protocol.Position(`{"Next":7}`)}, mem, e); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(snkImpl.rows["a"]); got != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Errorf("rows = %s", got)
	}
}

func TestVersion1PeersHaveNoPositions(t *testing.T) {
	snkImpl := &flushSink{rows: map[string][]int64{}}
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		transport.PluginName: &transport.GRPCPlugin{Registry: protocol.NewRegistry(seqSource{}, snkImpl), Version: 1},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(transport.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*transport.Client)
	if c.Version() != 1 {
		t.Fatalf("version = %d", c.Version())
	}
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got := &collect{}
	if err := source(t, c).Read(ctx, protocol.Config{Connector: "seq", BatchRows: 4, Options: map[string]any{"rows": int64(6)}}, mem, got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.positions) != "[ ]" || len(got.rows) != 6 {
		t.Errorf("positions %q, rows %v", got.positions, got.rows)
	}
	conn, _ := c.Connector(ctx, "flush")
	w, err := conn.(protocol.Sink).Open(ctx, protocol.Config{Connector: "flush", Stage: "v1"}, mem, seqSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := source(t, c).Read(ctx, protocol.Config{Connector: "seq", BatchRows: 4, Options: map[string]any{"rows": int64(6)}}, mem, &sinkEmitter{ctx: ctx, w: w}); err != nil {
		t.Fatal(err)
	}
	if pos, err := w.(protocol.Flusher).Flush(ctx); pos != nil || err != nil {
		t.Errorf("version 1 flush = %s, %v; want nil, nil", pos, err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// cpSink is a sink that records checkpoints: FlushCheckpoint keeps the
// rows written so far with the checkpoint, LastCheckpoint returns it.
type cpSink struct {
	mu   sync.Mutex
	last *protocol.Checkpoint
	rows int64
}

func (s *cpSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "cp", Kind: protocol.KindSink, Version: "1", Doc: "test sink", Checkpoints: true}
}
func (s *cpSink) Validate(context.Context, protocol.Config) error { return nil }
func (s *cpSink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	return &cpWriter{s: s}, nil
}
func (s *cpSink) LastCheckpoint(ctx context.Context, cfg protocol.Config) (*protocol.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

type cpWriter struct {
	s    *cpSink
	rows int64
}

func (w *cpWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	w.rows += rec.NumRows()
	return nil
}
func (w *cpWriter) FlushCheckpoint(ctx context.Context, cp protocol.Checkpoint) (protocol.Position, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.last, w.s.rows = &cp, w.rows
	return protocol.NewPosition(w.rows)
}
func (w *cpWriter) Close(ctx context.Context) error { return nil }
func (w *cpWriter) Abort(ctx context.Context) error { return nil }

// TestCheckpointsOverGRPC: a checkpoint reaches the plugin's writer with
// the flush, also before any row was written (an empty batch then carries
// the schema the server opens the sink with) and when no row was written
// since the last one; LastCheckpoint reads it back through the plugin.
func TestCheckpointsOverGRPC(t *testing.T) {
	impl := &cpSink{}
	c := connectGRPC(t, protocol.NewRegistry(seqSource{}, impl))
	src := source(t, c)
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	conn, err := c.Connector(ctx, "cp")
	if err != nil {
		t.Fatal(err)
	}
	snk := conn.(protocol.Sink)
	if !conn.Spec().Checkpoints {
		t.Fatal("the spec lost Checkpoints on the way")
	}
	cs := conn.(protocol.CheckpointSink)
	if cp, err := cs.LastCheckpoint(ctx, protocol.Config{Connector: "cp"}); err != nil || cp != nil {
		t.Fatalf("last checkpoint before any: %v, %v", cp, err)
	}
	w, err := snk.Open(ctx, protocol.Config{Connector: "cp", Stage: "a"}, mem, seqSchema)
	if err != nil {
		t.Fatal(err)
	}
	cw := w.(protocol.Checkpointer)
	check := func(id uint64, rows int64) {
		t.Helper()
		pos, err := cw.FlushCheckpoint(ctx, protocol.Checkpoint{ID: id, Data: []byte(fmt.Sprintf(`{"k":%d}`, id))})
		if err != nil || string(pos) != fmt.Sprint(rows) {
			t.Fatalf("checkpoint %d: %s, %v; want position %d", id, pos, err, rows)
		}
		cp, err := cs.LastCheckpoint(ctx, protocol.Config{Connector: "cp"})
		if err != nil || cp == nil || cp.ID != id || string(cp.Data) != fmt.Sprintf(`{"k":%d}`, id) || impl.rows != rows {
			t.Fatalf("after checkpoint %d: last %+v, %v, %d rows", id, cp, err, impl.rows)
		}
	}
	check(1, 0)
	if err := src.Read(ctx, protocol.Config{Connector: "seq", BatchRows: 3, Options: map[string]any{"rows": int64(7)}}, mem, &sinkEmitter{ctx: ctx, w: w}); err != nil {
		t.Fatal(err)
	}
	check(2, 7)
	check(3, 7)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
