package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// TestPoolHammer has more workers than instances evaluate batches at once,
// some of them failing, and checks every result.
func TestPoolHammer(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/trap.wasm")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := m.NewPool(ctx, nil, wasmhost.Limits{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(ctx)
	probe := int32Record(mem, "x", 1)
	b, err := m.Bind(probe.Schema())
	probe.Release()
	if err != nil {
		t.Fatal(err)
	}
	const workers, batches = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Go(func() {
			for k := range batches {
				x := int32(w*1000 + k)
				if k%7 == 3 {
					x = -x - 1 // traps
				}
				rec := int32Record(mem, "x", x, x+1)
				inst, err := pool.Get(ctx)
				if err != nil {
					errs <- err
					rec.Release()
					return
				}
				out, err := inst.EvalMap(ctx, b, rec, mem)
				pool.Put(inst)
				rec.Release()
				switch {
				case x < 0 && err == nil:
					out.Release()
					errs <- fmt.Errorf("x = %d: no error", x)
				case x < 0:
				case err != nil:
					errs <- fmt.Errorf("x = %d: %w", x, err)
				default:
					if y := out.Column(1).(*array.Int32).Int32Values(); y[0] != x || y[1] != x+1 {
						errs <- fmt.Errorf("x = %d: y = %v", x, y)
					}
					out.Release()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPoolGetWaits(t *testing.T) {
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/fail.wasm")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := m.NewPool(ctx, nil, wasmhost.Limits{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := pool.Get(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a full pool: err = %v, want DeadlineExceeded", err)
	}
	pool.Put(inst)
	again, err := pool.Get(ctx)
	if err != nil || again != inst {
		t.Fatalf("Get after Put = %p, %v, want the instance put back", again, err)
	}
	pool.Put(again)
	if err := pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Get(ctx); !errors.Is(err, wasmhost.ErrPoolClosed) {
		t.Fatalf("Get after Close: err = %v", err)
	}
}
