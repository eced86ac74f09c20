package wasmhost_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// The modules in testdata are written in WAT; the .wasm files next to them
// are committed (built with wat2wasm) so that tests do not need wabt. Each
// hostile module behaves (y = x, s = "") unless the first x of a batch is
// negative.

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
			_, err := rt.Load(context.Background(), tt.file, wasmhost.NewLoadConfig())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// hostileLimits are small so that the tests run fast.
var hostileLimits = wasmhost.Limits{
	MemoryPages:    64, // 4 MiB
	Timeout:        200 * time.Millisecond,
	MaxOutputBytes: 64 << 10,
	MaxLogBytes:    4 << 10,
}

func TestHostileEval(t *testing.T) {
	tests := []struct {
		file    string
		bad     []int32 // the batch that misbehaves
		want    string
		isLimit bool
	}{
		{"fail", []int32{-1}, `rule "hostile": vigie_eval returned 7: bad batch: x is negative`, false},
		{"out_of_bounds", []int32{-1}, `rule "hostile": output "s": data at 4294967040 (16 bytes) is outside memory (131072 bytes)`, false},
		{"bad_utf8", []int32{-1}, `rule "hostile": output "s": row 0 is not valid UTF-8`, false},
		{"trap", []int32{-1}, `rule "hostile": vigie_eval: wasm error: unreachable`, false},
		{"loop", []int32{-1}, `rule "hostile": vigie_eval: limit exceeded: time limit of 200ms per call`, true},
		{"memory_bomb", []int32{-1}, `rule "hostile": vigie_eval: limit exceeded: memory limit of 64 pages (4 MiB)`, true},
		{"memory_bomb", make([]int32, 2<<20), // 8 MiB of input: vigie_alloc cannot grow memory enough
			`rule "hostile": vigie_alloc(8388712): limit exceeded: memory limit of 64 pages (4 MiB)`, true},
		{"huge_output", []int32{-1}, `rule "hostile": limit exceeded: output limit of 65536 bytes per batch (the rule produced 100012 bytes)`, true},
		{"log_flood", []int32{-1}, `rule "hostile": vigie_eval: limit exceeded: log limit of 4096 bytes per batch`, true},
	}
	ctx := context.Background()
	rt := newRuntime(t)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			m, err := rt.Load(ctx, "testdata/"+tt.file+".wasm", wasmhost.NewLoadConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			good := int32Record(mem, "x", 1, 2, 3)
			defer good.Release()
			bad := int32Record(mem, "x", tt.bad...)
			defer bad.Release()
			b, inst := bindInstance(t, m, good.Schema(), nil, hostileLimits)
			defer inst.Close(ctx)
			evalGood(t, inst, b, good, mem)
			for range 2 { // the instance recovers, more than once
				start := time.Now()
				out, err := inst.EvalMap(ctx, b, bad, mem)
				if err == nil {
					out.Release()
					t.Fatal("EvalMap succeeded")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.want)
				}
				if got := errors.Is(err, wasmhost.ErrLimit); got != tt.isLimit {
					t.Errorf("errors.Is(err, ErrLimit) = %v, want %v", got, tt.isLimit)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("the failing batch took %s", d)
				}
				evalGood(t, inst, b, good, mem)
			}
		})
	}
}

// evalGood evaluates rec (x = 1, 2, 3) and checks that y = x.
func evalGood(t *testing.T, inst *wasmhost.Instance, b *wasmhost.Binding, rec arrow.RecordBatch, mem memory.Allocator) {
	t.Helper()
	out, err := inst.EvalMap(context.Background(), b, rec, mem)
	if err != nil {
		t.Fatalf("good batch: %v", err)
	}
	defer out.Release()
	y := out.Column(out.Schema().FieldIndices("y")[0]).(*array.Int32)
	if got := y.Int32Values(); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("good batch: y = %v, want [1 2 3]", got)
	}
}

func TestMemoryLimitBelowModuleMinimum(t *testing.T) {
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/fail.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithLimits(wasmhost.Limits{MemoryPages: 1}))
	want := `rule "hostile": memory starts at 2 pages: limit exceeded: memory limit of 1 pages (64 KiB)`
	if err == nil || err.Error() != want || !errors.Is(err, wasmhost.ErrLimit) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestCancelledContext(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/loop.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	bad := int32Record(mem, "x", -1)
	defer bad.Release()
	good := int32Record(mem, "x", 1, 2, 3)
	defer good.Release()
	b, err := m.Bind(bad.Schema(), wasmhost.NewBindConfig())
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = inst.EvalMap(cctx, b, bad, mem)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, wasmhost.ErrLimit) {
		t.Fatalf("err = %v, want the caller's context.DeadlineExceeded, not a limit", err)
	}
	evalGood(t, inst, b, good, mem)
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

// TestGoRuleInterrupted: a Go SDK rule stuck in a busy loop (Go's own
// runtime in the guest) is stopped at its time limit like a WAT one, and
// the instance works again afterwards.
func TestGoRuleInterrupted(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, hosttest.BuildGoRule(t, "testdata/spin"), wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithLimits(wasmhost.Limits{Timeout: 300 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	bad := int32Record(mem, "x", 1, -1)
	defer bad.Release()
	good := int32Record(mem, "x", 1, 2, 3)
	defer good.Release()
	b, err := m.Bind(bad.Schema(), wasmhost.NewBindConfig())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = inst.EvalMap(ctx, b, bad, mem)
	if !errors.Is(err, wasmhost.ErrLimit) || !strings.Contains(err.Error(), "time limit of 300ms") {
		t.Fatalf("err = %v, want the time limit", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopped after %s", d)
	}
	evalGood(t, inst, b, good, mem)
}

// TestInterruptDuringGC: a guest that spins while the garbage collector
// stops the world must not hang the process. Compiled guest code cannot be
// preempted; the loop check leaves it for Go every few thousand iterations
// so that the collection, and then the timer that interrupts the guest,
// can run. Without that, this test hangs.
func TestInterruptDuringGC(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/loop.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	bad := int32Record(mem, "x", -1)
	defer bad.Release()
	b, err := m.Bind(bad.Schema(), wasmhost.NewBindConfig())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	for range 3 { // both workers of a 2-core machine, more on a larger one
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithLimits(wasmhost.Limits{Timeout: 100 * time.Millisecond}))
				if err != nil {
					t.Error(err)
					return
				}
				defer inst.Close(ctx)
				if _, err := inst.EvalMap(ctx, b, bad, mem); !errors.Is(err, wasmhost.ErrLimit) {
					t.Errorf("err = %v, want the time limit", err)
				}
			}()
		}
		wg.Wait()
	}
}
