package wasmhost

// TestRuleCPUHost is a measuring tool, skipped unless EW_MODULES is set:
// it is examples/rules/early_warning's TestRuleCPU (the same students, the
// same batches of 352 groups), but each module of EW_MODULES runs under
// each host variant of EW_HOST (a comma-separated list, default
// "checks,nochecks"), all of them alternated for three rounds, and it logs
// the CPU time of the calling thread for each pair. The variants:
//
//   - checks: the host as it runs rules (instrument.Rewrite);
//   - nochecks: the globals but no check, what the interrupt checks cost;
//   - nodirect: Go's forward jumps left going through the dispatch loop;
//   - everyloop: a check at every function start and loop head, as the
//     rewrite did before it recognised Go's dispatch loops
//
// (instrument.Options). It fails when two pairs' outputs differ. The data
// are EW_DATA (default /dev/shm/ac2, see docs/performance.md).
//
//	EW_HOST=everyloop,nodirect,checks,nochecks EW_STUDENTS=3000 EW_MODULES=/tmp/ew.wasm \
//	    go test ./internal/wasmhost -run RuleCPUHost -count=1 -v

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost/instrument"
	"github.com/vigie-edu/vigie/internal/wasmhost/rulecpu"
)

// hostVariants are the host configurations TestRuleCPUHost compares.
var hostVariants = map[string]RuntimeConfig{
	"checks":    NewRuntimeConfig(),
	"nochecks":  {rewrite: rewriteWith(instrument.Options{NoChecks: true})},
	"nodirect":  {rewrite: rewriteWith(instrument.Options{NoDirectJumps: true})},
	"everyloop": {rewrite: rewriteWith(instrument.Options{EveryLoop: true})},
}

func rewriteWith(o instrument.Options) func([]byte) ([]byte, error) {
	return func(wasm []byte) ([]byte, error) { return instrument.RewriteWith(wasm, o) }
}

func TestRuleCPUHost(t *testing.T) {
	mods := strings.Split(os.Getenv("EW_MODULES"), ",")
	if mods[0] == "" {
		t.Skip("EW_MODULES")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) }) // after the batches' release
	batches := rulecpu.Batches(t, mem, rulecpu.Dir(), rulecpu.Students(10000))
	hosts := strings.Split(os.Getenv("EW_HOST"), ",")
	if hosts[0] == "" {
		hosts = []string{"checks", "nochecks"}
	}
	ctx := context.Background()
	var subjects []rulecpu.Subject
	for _, h := range hosts {
		cfg, ok := hostVariants[h]
		if !ok {
			t.Fatalf("EW_HOST: unknown variant %q", h)
		}
		rt, err := NewRuntime(ctx, cfg.WithCacheDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close(ctx)
		for _, p := range mods {
			mod, err := rt.Load(ctx, p, NewLoadConfig())
			if err != nil {
				t.Fatal(err)
			}
			b, err := mod.Bind(rulecpu.Schema, NewBindConfig())
			if err != nil {
				t.Fatal(err)
			}
			inst, err := mod.NewInstance(ctx, NewInstanceConfig().WithParams(map[string]any{"raise_at": 0.65, "clear_below": 0.3}))
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			subjects = append(subjects, rulecpu.Subject{Name: fmt.Sprintf("%s [%s]", p, h), Eval: func(bt rulecpu.Batch) (arrow.RecordBatch, error) {
				return inst.EvalGroup(ctx, b, bt.Rec, bt.Offsets, mem)
			}})
		}
	}
	rulecpu.Compare(t, 3, batches, subjects)
}
