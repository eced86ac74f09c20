package host_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/rules/host"
)

// The modules in testdata are written in WAT; the .wasm files next to them
// are committed (built with wat2wasm) so that tests do not need wabt.

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"testdata/forbidden_import.wasm", `rule testdata/forbidden_import.wasm: forbidden import "env.now"`},
		{"testdata/abi2.wasm", "rule testdata/abi2.wasm: abi version 2, want 1"},
		{"testdata/missing.wasm", "load rule: open testdata/missing.wasm"},
		{"testdata/fail.wat", "rule testdata/fail.wat: compile"},
	}
	rt := newRuntime(t)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := rt.Load(context.Background(), tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestHostileEval(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"testdata/fail.wasm", `rule "hostile": vigie_eval returned 7: bad batch: x is negative`},
		{"testdata/out_of_bounds.wasm", `rule "hostile": output "s": data at 4294967040 (16 bytes) is outside memory (131072 bytes)`},
		{"testdata/bad_utf8.wasm", `rule "hostile": output "s": row 0 is not valid UTF-8`},
		{"testdata/trap.wasm", `rule "hostile": vigie_eval: wasm error: unreachable`},
	}
	ctx := context.Background()
	rt := newRuntime(t)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			m, err := rt.Load(ctx, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			rec := int32Record(mem, "x", 42)
			defer rec.Release()
			b, err := m.Bind(rec.Schema())
			if err != nil {
				t.Fatal(err)
			}
			inst, err := m.NewInstance(ctx, nil, host.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			out, err := inst.EvalMap(ctx, b, rec, mem)
			if err == nil {
				out.Release()
				t.Fatal("EvalMap succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// int32Record returns a one-column record.
func int32Record(mem memory.Allocator, name string, vals ...int32) arrow.RecordBatch {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	col := b.NewArray()
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int32}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{col}, int64(len(vals)))
}
