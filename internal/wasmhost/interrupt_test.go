package wasmhost

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestInterruptRace runs calls whose time limit expires around the moment
// they return: each either succeeds or fails with the time limit, and the
// flag never stays raised for the next call.
func TestInterruptRace(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rt, err := NewRuntime(ctx, NewRuntimeConfig().WithCacheDir(""))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Load(ctx, "../../examples/rules/bench_map_c/bench_map.wasm", NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	// 1M rows: a call takes milliseconds, the scale of the timers' precision
	rec := floatRecord(mem, 1<<20)
	defer rec.Release()
	b, err := m.Bind(rec.Schema(), NewBindConfig())
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.NewInstance(ctx, NewInstanceConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	var ok, limited int
	for k := range 200 {
		inst.limits.Timeout = time.Duration(100+k*40) * time.Microsecond
		out, err := inst.EvalMap(ctx, b, rec, mem)
		switch {
		case err == nil:
			ok++
			out.Release()
		case errors.Is(err, ErrLimit):
			limited++
		default:
			t.Fatalf("call %d: %v", k, err)
		}
		inst.limits.Timeout = time.Minute
		out, err = inst.EvalMap(ctx, b, rec, mem)
		if err != nil {
			t.Fatalf("call %d after a limit raced the end of a call: %v", k, err)
		}
		out.Release()
	}
	if limited == 0 {
		t.Errorf("no call hit its time limit (%d succeeded): the race was not exercised", ok)
	}
	t.Logf("%d calls within the limit, %d past it", ok, limited)
}

func floatRecord(mem memory.Allocator, n int) arrow.RecordBatch {
	var cols []arrow.Array
	var fields []arrow.Field
	for _, name := range []string{"a", "b", "c"} {
		bld := array.NewFloat64Builder(mem)
		for i := range n {
			bld.Append(float64(i%100) / 100)
		}
		col := bld.NewArray()
		bld.Release()
		defer col.Release()
		cols = append(cols, col)
		fields = append(fields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64})
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
}
