package wasmhost_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

func TestReplaceUpstreamColumn(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m := loadAbsence(t, newRuntime(t))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "flag", Type: arrow.BinaryTypes.String, Nullable: true}, // an older flag, to be replaced
		{Name: "absent_half_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "half_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	}, nil)

	if _, err := m.Bind(schema, wasmhost.NewBindConfig()); err == nil || !strings.Contains(err.Error(), `output column "flag" clashes with an upstream column`) {
		t.Fatalf("clash without replace: err = %v", err)
	}
	if _, err := m.Bind(schema, wasmhost.NewBindConfig().WithReplace("student_id")); err == nil || !strings.Contains(err.Error(), `cannot replace "student_id"`) {
		t.Fatalf("replacing a non-output: err = %v", err)
	}
	b, err := m.Bind(schema, wasmhost.NewBindConfig().WithReplace("flag"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range b.OutputSchema().Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "student_id,absent_half_days,half_days,absence_rate,flag,reason" {
		t.Fatalf("output columns %s", got)
	}
	rec := recordFromJSON(t, mem, schema, `[{"student_id":"S1","flag":"old","absent_half_days":8,"half_days":40},
		{"student_id":"S2","flag":null,"absent_half_days":1,"half_days":40}]`)
	defer rec.Release()
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	out, err := inst.EvalMap(ctx, b, rec, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	flag, ok := out.Column(4).(*array.Boolean)
	if !ok || !flag.Value(0) || flag.Value(1) || out.NumCols() != 6 {
		t.Errorf("replaced flag column = %v", out.Column(4))
	}
}
