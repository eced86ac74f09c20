package wasmhost_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

func loadMeanScore(t testing.TB) *wasmhost.Module {
	t.Helper()
	m, err := newRuntime(t).Load(context.Background(), hosttest.BuildGoRule(t, "testdata/meanscore"), wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scoreRecord returns a record with a key column and a score column; nil
// scores are null.
func scoreRecord(mem memory.Allocator, keys []string, scores []*float64) arrow.RecordBatch {
	kb := array.NewStringBuilder(mem)
	defer kb.Release()
	kb.AppendValues(keys, nil)
	sb := array.NewFloat64Builder(mem)
	defer sb.Release()
	for _, s := range scores {
		if s == nil {
			sb.AppendNull()
		} else {
			sb.Append(*s)
		}
	}
	k, s := kb.NewArray(), sb.NewArray()
	defer k.Release()
	defer s.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student", Type: arrow.BinaryTypes.String},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{k, s}, int64(len(keys)))
}

func f(v float64) *float64 { return &v }

func TestEvalGroup(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m := loadMeanScore(t)
	rec := scoreRecord(mem, []string{"ana", "ana", "bob", "bob", "bob"},
		[]*float64{f(10), f(20), nil, f(4), f(8)})
	defer rec.Release()
	b, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := b.OutputSchema().String(); !strings.Contains(got, "mean: type=float64") || strings.Contains(got, "student") {
		t.Errorf("group output schema = %s, want the outputs only", got)
	}
	keys := []arrow.Field{{Name: "student", Type: arrow.BinaryTypes.String}}
	full, err := b.GroupOutputSchema(keys)
	if err != nil {
		t.Fatal(err)
	}
	if full.NumFields() != 3 || full.Field(0).Name != "student" || full.Field(1).Name != "mean" {
		t.Errorf("GroupOutputSchema = %s", full)
	}
	if _, err := b.GroupOutputSchema([]arrow.Field{{Name: "mean", Type: arrow.BinaryTypes.String}}); err == nil ||
		!strings.Contains(err.Error(), `output column "mean" clashes with a group key column`) {
		t.Errorf("clash err = %v", err)
	}
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)

	// ana: [10, 20]; an empty group; bob: [null, 4, 8].
	out, err := inst.EvalGroup(ctx, b, rec, []uint32{0, 2, 2, 5}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if !out.Schema().Equal(b.OutputSchema()) || out.NumRows() != 3 {
		t.Fatalf("result %s with %d rows", out.Schema(), out.NumRows())
	}
	mean, n := out.Column(0).(*array.Float64), out.Column(1).(*array.Int32)
	if mean.Value(0) != 15 || !mean.IsNull(1) || mean.Value(2) != 6 || mean.NullN() != 1 {
		t.Errorf("mean = %v", mean)
	}
	if got := n.Int32Values(); got[0] != 2 || got[1] != 0 || got[2] != 2 {
		t.Errorf("n = %v", got)
	}

	bad := []struct {
		offsets []uint32
		want    string
	}{
		{nil, "group offsets: empty"},
		{[]uint32{1, 5}, "group offsets: first is 1, want 0"},
		{[]uint32{0, 4}, "group offsets: last is 4, want num_rows 5"},
		{[]uint32{0, 3, 2, 5}, "group offsets: entry 2 (2) is below entry 1 (3)"},
	}
	for _, tt := range bad {
		if _, err := inst.EvalGroup(ctx, b, rec, tt.offsets, mem); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("offsets %v: err = %v, want %q", tt.offsets, err, tt.want)
		}
	}
	if _, err := inst.EvalMap(ctx, b, rec, mem); !errors.Is(err, wasmhost.ErrWrongKind) {
		t.Errorf("EvalMap of a group rule: err = %v, want ErrWrongKind", err)
	}
}
