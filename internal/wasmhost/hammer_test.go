package wasmhost_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// TestInstancesHammer runs one instance per worker of one module, as the
// engine does, with batches of which some trap (and re-instantiate their
// instance), and checks every result.
func TestInstancesHammer(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/trap.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	probe := int32Record(mem, "x", 1)
	b, err := m.Bind(probe.Schema(), wasmhost.NewBindConfig())
	probe.Release()
	if err != nil {
		t.Fatal(err)
	}
	const workers, batches = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		wg.Go(func() {
			for k := range batches {
				x := int32(w*1000 + k)
				if k%7 == 3 {
					x = -x - 1 // traps
				}
				rec := int32Record(mem, "x", x, x+1)
				out, err := inst.EvalMap(ctx, b, rec, mem)
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
