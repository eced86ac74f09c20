package conformance

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
	"github.com/vigie-edu/vigie/rules/ruletest"
)

// TestArenaSteady runs 150 batches of growing then steady size through one
// instance of the C, AssemblyScript and Rust absence ports and checks that
// the instance's memory stops growing: each SDK empties its arena when a
// cycle starts. (The Go SDK has its own test in internal/wasmhost.)
func TestArenaSteady(t *testing.T) {
	for _, g := range absenceGuests()[1:] {
		t.Run(g.name, func(t *testing.T) {
			ctx := context.Background()
			rt := hosttest.NewRuntime(t)
			m, err := rt.Load(ctx, g.build(t), wasmhost.NewLoadConfig())
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := absenceBatch(mem, 4096)
			defer rec.Release()
			b, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig())
			if err != nil {
				t.Fatal(err)
			}
			inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithParams(map[string]any{"threshold": 0.05}))
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			checkSteadyMemory(t, inst, func(i int) {
				n := int64(4096)
				if i < 10 {
					n = int64(1 + i*400) // growing batches first
				}
				slice := rec.NewSlice(0, n)
				out, err := inst.EvalMap(ctx, b, slice, mem)
				slice.Release()
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				defer out.Release()
				if i == 1 || i == 149 {
					reason := out.Column(int(out.NumCols()) - 1).(*array.String)
					if want := "absent 1 of 7 half-days (14.3 %) >= 5 % threshold"; reason.Value(1) != want {
						t.Errorf("batch %d: reason %q, want %q", i, reason.Value(1), want)
					}
				}
			})
		})
	}
}

// checkSteadyMemory evaluates 150 batches (batch(i) evaluates, checks
// and releases batch i) and fails when the instance's memory grew after
// the 20th.
func checkSteadyMemory(t *testing.T, inst *wasmhost.Instance, batch func(i int)) {
	t.Helper()
	var after20 uint32
	for i := range 150 {
		batch(i)
		if i == 19 {
			after20 = inst.MemorySize()
		}
	}
	if got := inst.MemorySize(); got != after20 {
		t.Errorf("memory grew from %d bytes after 20 batches to %d after 150", after20, got)
	}
	t.Logf("memory %d bytes", inst.MemorySize())
}

// absenceBatch returns n rows: absent = row % 7, half_days = 7 (every
// 13th row null).
func absenceBatch(mem memory.Allocator, n int) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "absent_half_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "half_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := range n {
		if i%13 == 12 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int32Builder).Append(int32(i % 7))
		}
		b.Field(1).(*array.Int32Builder).Append(7)
	}
	return b.NewRecordBatch()
}

// TestEmptyBatch runs a batch of zero rows. The host of commit dca6269
// panicked on it (an empty Arrow array has no data buffer: copyin.go); the
// test reports that as a skip naming the cause until the host handles it.
func TestEmptyBatch(t *testing.T) {
	s, err := ruletest.Load(emptyCases)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range absenceGuests() {
		t.Run(g.name, func(t *testing.T) {
			module := g.build(t)
			ctx := context.Background()
			r, err := newRunner(t, nil).Run(ctx, module, s)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Passed() {
				t.Errorf("%s", r)
			}
		})
	}
}
