package transport

import (
	"context"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-plugin"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// wideRows makes a batch of wideSource 8 MiB: more than messageTargetBytes,
// less than the ring.
const wideRows = 1 << 20

// wideSource emits "batches" batches of wideRows int64 rows, then one of
// "tail" rows: batches that must be sliced when they go inline.
type wideSource struct{}

func (wideSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "wide", Kind: protocol.KindSource, Version: "1", Doc: "test source", Options: []protocol.Option{
		{Name: "batches", Type: protocol.TypeInt, Default: int64(3), Doc: "batches"},
		{Name: "tail", Type: protocol.TypeInt, Default: int64(1000), Doc: "rows of the last batch"},
	}}
}

func (wideSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return bigSchema, nil
}

func (wideSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	var next int64
	n := cfg.Int("batches")
	for i := range n + 1 {
		rows := int64(wideRows)
		if i == n {
			rows = cfg.Int("tail")
		}
		b := array.NewInt64Builder(mem)
		for range rows {
			b.Append(next)
			next++
		}
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(bigSchema, []arrow.Array{col}, rows)
		col.Release()
		pos, _ := protocol.NewPosition(next)
		err := out.Emit(ctx, rec, pos)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// sizes records the row count of every batch it is given and checks that
// the values run on from the previous batch.
type sizes struct {
	mu   sync.Mutex
	rows []int64
	next int64
	bad  int
	pos  int
}

func (s *sizes) add(rec arrow.RecordBatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, rec.NumRows())
	for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
		if v != s.next {
			s.bad++
		}
		s.next++
	}
}

func (s *sizes) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	s.add(rec)
	if pos != nil {
		s.pos++
	}
	return nil
}

func (s *sizes) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

// TestBatchesKeepTheirSizeAcrossTheBoundary: whether the Arrow bodies go
// through the shared memory ring or inline (sliced under
// messageTargetBytes), a source's batches reach the host, and the host's
// batches reach a sink, with the sizes they had.
func TestBatchesKeepTheirSizeAcrossTheBoundary(t *testing.T) {
	want := []int64{wideRows, wideRows, wideRows, 1000}
	for _, tc := range []struct {
		name     string
		plugin   func(*protocol.Registry) plugin.Plugin
		ringSize int
		inline   bool // bodies go inline, so big batches are sliced
		noRing   bool // the peer has no rings: nothing goes through one
	}{
		{"through the ring", func(r *protocol.Registry) plugin.Plugin { return &GRPCPlugin{Registry: r} }, ringBytes, false, false},
		{"inline to a peer without rings", func(r *protocol.Registry) plugin.Plugin { return &oldPlugin{reg: r} }, ringBytes, true, true},
		{"inline when the ring is too small", func(r *protocol.Registry) plugin.Plugin { return &GRPCPlugin{Registry: r} }, 4 << 20, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.inline {
				skipWithoutRings(t)
			}
			defer func(n int) { ringBytes = n }(ringBytes)
			ringBytes = tc.ringSize
			snk := &sizes{}
			ws := &writeSink{name: "sizes", write: func(_ context.Context, rec arrow.RecordBatch) error {
				snk.add(rec)
				return nil
			}}
			reg := protocol.NewRegistry(wideSource{}, ws)
			_, src := dialPlugin(t, tc.plugin(reg), "wide")
			_, sink := dialPlugin(t, tc.plugin(reg), "sizes")
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx := context.Background()

			before := ReceivedStats()
			got := &sizes{}
			if err := src.(protocol.Source).Read(ctx, protocol.Config{Connector: "wide"}, mem, got); err != nil {
				t.Fatal(err)
			}
			after := ReceivedStats()
			inline, ring := after.InlineBodies-before.InlineBodies, after.RingBodies-before.RingBodies
			t.Logf("source: %d bodies inline, %d through the ring", inline, ring)
			// Slices of a batch too big for a small ring may still go
			// through it, each waiting for the reader to free room.
			if tc.inline && inline+ring <= int64(len(want)) {
				t.Errorf("source: %d bodies inline and %d through the ring; 8 MiB batches must be sliced", inline, ring)
			}
			if tc.noRing && ring != 0 {
				t.Errorf("source: %d bodies through the ring of a peer without rings", ring)
			}
			if !tc.inline && (ring != int64(len(want)) || inline != 0) {
				t.Errorf("source: %d bodies through the ring and %d inline; want one body per batch, none sliced", ring, inline)
			}
			if !equalSizes(got.rows, want) || got.bad != 0 || got.pos != len(want) {
				t.Errorf("source: batches of %v rows (%d out of order, %d positions), want %v", got.rows, got.bad, got.pos, want)
			}

			w, err := sink.(protocol.Sink).Open(ctx, protocol.Config{Connector: "sizes"}, mem, bigSchema)
			if err != nil {
				t.Fatal(err)
			}
			if err := (wideSource{}).Read(ctx, protocol.Config{Options: map[string]any{"batches": int64(3), "tail": int64(1000)}}, mem, &sinkWriterEmitter{w: w}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if !equalSizes(snk.rows, want) || snk.bad != 0 {
				t.Errorf("sink: batches of %v rows (%d out of order), want %v", snk.rows, snk.bad, want)
			}
		})
	}
}

func equalSizes(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
