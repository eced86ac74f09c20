package sdk_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

var numSchema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

// numbers is an SDK source over its "input" option: each item is a row if
// it is a number, else a dead letter. Its position is the index of the
// next item.
func numbers() protocol.Source {
	spec := protocol.Spec{Name: "numbers", Version: "1", Doc: "test source", Options: []protocol.Option{
		{Name: "input", Type: protocol.TypeStringList, Required: true, Doc: "items"},
	}}
	schema := func(context.Context, protocol.Config) (*arrow.Schema, error) { return numSchema, nil }
	read := func(ctx context.Context, cfg protocol.Config, r *sdk.Reader) error {
		var from int
		if _, err := r.Resume(&from); err != nil {
			return err
		}
		items := cfg.StringList("input")
		for i := from; i < len(items); i++ {
			v, err := strconv.ParseInt(items[i], 10, 64)
			if err != nil {
				if err := r.DeadLetter(ctx, protocol.DeadLetter{Line: int64(i + 1), Reason: "not a number"}); err != nil {
					return err
				}
				continue
			}
			r.Builder().Field(0).(*array.Int64Builder).Append(v)
			if err := r.Next(ctx, i+1); err != nil {
				return err
			}
		}
		return r.Flush(ctx, len(items))
	}
	return sdk.NewSource(spec, schema, read)
}

// events records what reaches the engine, in order, and the last position.
type events struct {
	log  []string
	last protocol.Position
}

func (e *events) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	e.log = append(e.log, fmt.Sprintf("batch %d @%s", rec.NumRows(), pos))
	e.last = pos
	return nil
}

func (e *events) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	for _, d := range rows {
		e.log = append(e.log, fmt.Sprintf("dead %d", d.Line))
	}
	return nil
}

// TestReaderPositionsCoverDeadLetters: every dead letter is sent before a
// batch whose position covers it, a tail of only bad rows included (an
// empty batch carries the position), so that a read resumed from the last
// position reports none again.
func TestReaderPositionsCoverDeadLetters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  string
	}{
		{"tail of only bad rows", "1 2 x y", "batch 2 @2; dead 3; dead 4; batch 0 @4"},
		{"bad rows inside a batch", "1 x 2 3", "dead 2; batch 2 @3; batch 1 @4"},
		{"bad rows after a full batch, then rows", "1 2 x 3", "batch 2 @2; dead 3; batch 1 @4"},
		{"only bad rows", "x y", "dead 1; dead 2; batch 0 @2"},
		{"nothing", "", ""},
		{"rows filling the last batch", "1 2", "batch 2 @2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx := context.Background()
			src := numbers()
			cfg := protocol.Config{Connector: "numbers", BatchRows: 2, Options: map[string]any{"input": strings.Fields(tc.input)}}
			got := &events{}
			if err := src.Read(ctx, cfg, mem, got); err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got.log, "; "); s != tc.want {
				t.Errorf("read:\n got %s\nwant %s", s, tc.want)
			}
			if got.last == nil {
				return
			}
			cfg.Resume = got.last
			again := &events{}
			if err := src.Read(ctx, cfg, mem, again); err != nil {
				t.Fatal(err)
			}
			if len(again.log) != 0 {
				t.Errorf("read resumed from %s got %v, want nothing", got.last, again.log)
			}
		})
	}
}

// TestReaderUsesThePreparedSchema: a ReadFunc's source is not asked its
// schema again when the engine gives the one it prepared the stage with.
func TestReaderUsesThePreparedSchema(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	calls := 0
	spec := protocol.Spec{Name: "one", Version: "1", Doc: "test source"}
	schema := func(context.Context, protocol.Config) (*arrow.Schema, error) { calls++; return numSchema, nil }
	read := func(ctx context.Context, cfg protocol.Config, r *sdk.Reader) error {
		r.Builder().Field(0).(*array.Int64Builder).Append(1)
		if err := r.Next(ctx, 1); err != nil {
			return err
		}
		return r.Flush(ctx, 1)
	}
	got := &events{}
	cfg := protocol.Config{Connector: "one", Schema: numSchema}
	if err := sdk.NewSource(spec, schema, read).Read(context.Background(), cfg, mem, got); err != nil {
		t.Fatal(err)
	}
	if calls != 0 || strings.Join(got.log, "; ") != "batch 1 @1" {
		t.Errorf("schema asked %d times, events %v; want 0, one batch", calls, got.log)
	}
}
