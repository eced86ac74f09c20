package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// rowsSource plays rows[:upto] batch rows at a time, its position the
// index of the next row, and ends. Its spec says it is unbounded, so a
// pipeline reading it takes checkpoints and resumes from them. With
// offset it adds each row's index as the column "offset".
type rowsSource struct {
	rows   []eventRow
	upto   int
	batch  int
	offset bool
}

type rowsPosition struct {
	Next int `json:"next"`
}

func (s *rowsSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "rows", Kind: protocol.KindSource, Version: "1", Doc: "test", Unbounded: true}
}
func (s *rowsSource) Validate(context.Context, protocol.Config) error { return nil }
func (s *rowsSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	fields := []arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32},
		{Name: "x", Type: arrow.PrimitiveTypes.Int32},
	}
	if s.offset {
		fields = append(fields, arrow.Field{Name: "offset", Type: arrow.PrimitiveTypes.Int64})
	}
	return arrow.NewSchema(fields, nil), nil
}
func (s *rowsSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	schema, _ := s.Schema(ctx, cfg)
	var from rowsPosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
	}
	for i := from.Next; i < s.upto; i += s.batch {
		end := min(i+s.batch, s.upto)
		b := array.NewRecordBuilder(mem, schema)
		for j := i; j < end; j++ {
			r := s.rows[j]
			b.Field(0).(*array.StringBuilder).Append(r.id)
			b.Field(1).(*array.Date32Builder).Append(arrow.Date32(20332 + r.day))
			b.Field(2).(*array.Int32Builder).Append(int32(r.x))
			if s.offset {
				b.Field(3).(*array.Int64Builder).Append(int64(j))
			}
		}
		rec := b.NewRecordBatch()
		b.Release()
		pos, err := protocol.NewPosition(rowsPosition{Next: end})
		if err == nil {
			err = out.Emit(ctx, rec, pos)
		}
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestPerRowRestartRollsBackWatermark: a continuous run killed after its
// per-row stage went past its last checkpoint (its watermark moved on) is
// restarted from that checkpoint; the rows after the cut come again and
// must be judged late, and numbered, exactly as in an uninterrupted run.
// The kill is simulated: a run reads rows [0, 200) and checkpoints; a
// second one resumes and reads [200, 450), moving the watermark some 40
// days on, and checkpoints; then the first checkpoint record is put back,
// as if the second run had been killed before committing anything, and a
// third run resumes from it and reads to the end. The outputs of the
// first and third runs, and their late rows, must be the uninterrupted
// run's. With the arrival sequence from an offset column and counted by
// the stage.
func TestPerRowRestartRollsBackWatermark(t *testing.T) {
	rows := perRowEvents()
	want, wantLate := expectPerRow(rows, 2)
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "trend"))
	for _, offset := range []bool{true, false} {
		t.Run(fmt.Sprint("offset_column=", offset), func(t *testing.T) {
			dir := t.TempDir()
			extra := ""
			if offset {
				extra = "offset_column = \"offset\"\n"
			}
			cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), fmt.Appendf(nil, `
[pipeline]
name = "p"
batch_rows = 25
state_dir = "state"
checkpoint_interval = "1h"

[[source]]
name = "events"
connector = "rows"

[[rule]]
name = "trend"
input = "events"
module = %q
group_by = ["student_id"]
order_by = "date"
emit = "per_row"
keep_state = true
allowed_lateness = "2d"
late = "dead_letter"
%s
[[sink]]
name = "out"
input = "trend"
connector = "per_row"
`, wasm, extra))
			if err != nil {
				t.Fatal(err)
			}
			run := func(upto int) ([]string, int64) {
				t.Helper()
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				got := &perRowRows{}
				src := &rowsSource{rows: rows, upto: upto, batch: 25, offset: offset}
				plan := prepare(t, cfg, mem, map[string]protocol.Connector{"per_row": got, "rows": src})
				defer plan.Close(context.Background())
				sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
				if err != nil {
					t.Fatal(err)
				}
				st, _ := sum.Stage("trend")
				return got.rows, st.Late
			}
			record := filepath.Join(dir, "state", "checkpoint.json")

			first, late1 := run(200)
			cp1, err := os.ReadFile(record)
			if err != nil {
				t.Fatal(err)
			}
			run(450) // killed before its checkpoints committed:
			if err := os.WriteFile(record, cp1, 0o644); err != nil {
				t.Fatal(err)
			}
			third, late3 := run(len(rows))

			got := append(first, third...)
			if late1+late3 != int64(wantLate) {
				t.Errorf("late rows: %d before the kill and %d after the restart, want %d in all", late1, late3, wantLate)
			}
			if !slices.Equal(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("row %d: got %s, want %s (%d rows, want %d)", i, got[i], want[i], len(got), len(want))
					}
				}
				t.Fatalf("got %d rows, want %d", len(got), len(want))
			}
		})
	}
}
