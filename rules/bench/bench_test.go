package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/rules/abi"
	"github.com/vigie-edu/vigie/rules/host/hosttest"
)

var allTypes = []abi.Column{
	{Name: "b", Type: abi.Bool}, {Name: "i", Type: abi.Int32}, {Name: "l", Type: abi.Int64},
	{Name: "f", Type: abi.Float64}, {Name: "s", Type: abi.Utf8}, {Name: "ts", Type: abi.TimestampUS},
	{Name: "d", Type: abi.Date32},
}

// TestInput: one column per input, of its type, about 5 % nulls, the same
// rows for the same seed and others for another.
func TestInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 4000
	a, b, c := Input(mem, allTypes, n, 1), Input(mem, allTypes, n, 1), Input(mem, allTypes, n, 2)
	defer a.Release()
	defer b.Release()
	defer c.Release()
	if a.NumRows() != n || int(a.NumCols()) != len(allTypes) {
		t.Fatalf("%d rows, %d columns", a.NumRows(), a.NumCols())
	}
	for i, col := range allTypes {
		f := a.Schema().Field(i)
		if f.Name != col.Name || f.Type.ID() != a.Column(i).DataType().ID() {
			t.Errorf("column %d: %s %s", i, f.Name, f.Type)
		}
		if nulls := a.Column(i).NullN(); nulls < n/40 || nulls > n/10 {
			t.Errorf("%s: %d nulls of %d, want about 5 %%", col.Name, nulls, n)
		}
	}
	if !array.RecordEqual(a, b) {
		t.Error("seed 1 twice: different rows")
	}
	if array.RecordEqual(a, c) {
		t.Error("seeds 1 and 2: the same rows")
	}
}

// TestRun benches the echo test rule of rules/host: whole batches up to
// Rows, the bytes it read and wrote, and the printed figures.
func TestRun(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "host", "testdata", "echo"))
	ctx := context.Background()
	rt := hosttest.NewRuntime(t)
	r, err := Run(ctx, rt, wasm, Options{Rows: 10000, BatchRows: 4096, GroupRows: 16, Seed: 1, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows != 12288 || r.Batches != 3 || r.BatchRows != 4096 || r.Manifest.Name != "echo" {
		t.Errorf("got %d rows in %d batches of %d, rule %q", r.Rows, r.Batches, r.BatchRows, r.Manifest.Name)
	}
	if r.InBytes <= 0 || r.OutBytes <= 0 {
		t.Errorf("in %d bytes, out %d bytes", r.InBytes, r.OutBytes)
	}
	var out bytes.Buffer
	r.Print(&out)
	for _, want := range []string{`rule "echo" 0.1.0 (map`, "12288 rows in 3 batches", "rows/s", "b bool, i int32"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed figures lack %q:\n%s", want, out.String())
		}
	}
	if _, err := Run(ctx, rt, wasm, Options{Rows: 10, BatchRows: 0, GroupRows: 16}); err == nil {
		t.Error("no error for zero batch rows")
	}
}
