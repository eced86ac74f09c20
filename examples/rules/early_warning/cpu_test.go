package main

// TestRuleCPU is a measuring tool, skipped unless EW_MODULES is set: the
// rule alone (wazero, the engine's host: internal/wasmhost) over the
// first EW_STUDENTS (default 10,000) students of the seed-2 academy in
// EW_DATA (default /dev/shm/ac2, see docs/performance.md), in batches of
// 352 groups as the 100K run makes them, for each module of EW_MODULES (a
// comma-separated list of .wasm files), three rounds alternated; it logs
// the CPU time of the calling thread per module and round, and fails when
// two modules' outputs differ. TestNativeProfile (EW_NATIVE=1) runs
// Evaluate natively over the same students, for go test -cpuprofile.
//
//	EW_MODULES=/tmp/before.wasm,examples/rules/early_warning/early_warning.wasm \
//	    go test ./examples/rules/early_warning -run RuleCPU -v

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/indicators"
	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/rulecpu"
)

func TestRuleCPU(t *testing.T) {
	mods := strings.Split(os.Getenv("EW_MODULES"), ",")
	if mods[0] == "" {
		t.Skip("EW_MODULES")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) }) // after the batches' release
	batches := rulecpu.Batches(t, mem, rulecpu.Dir(), rulecpu.Students(10000))
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	var subjects []rulecpu.Subject
	for _, p := range mods {
		mod, err := rt.Load(ctx, p, wasmhost.NewLoadConfig())
		if err != nil {
			t.Fatal(err)
		}
		b, err := mod.Bind(rulecpu.Schema, wasmhost.NewBindConfig())
		if err != nil {
			t.Fatal(err)
		}
		inst, err := mod.NewInstance(ctx, wasmhost.NewInstanceConfig().WithParams(map[string]any{"raise_at": 0.65, "clear_below": 0.3}))
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		subjects = append(subjects, rulecpu.Subject{Name: p, Eval: func(bt rulecpu.Batch) (arrow.RecordBatch, error) {
			return inst.EvalGroup(ctx, b, bt.Rec, bt.Offsets, mem)
		}})
	}
	rulecpu.Compare(t, 3, batches, subjects)
}

// TestNativeProfile: the rule's Evaluate natively over the same students,
// for a CPU profile (go test -cpuprofile).
func TestNativeProfile(t *testing.T) {
	if os.Getenv("EW_NATIVE") == "" {
		t.Skip("EW_NATIVE")
	}
	limit := rulecpu.LastStudent(rulecpu.Students(3000))
	per := map[string][]indicators.Event{}
	rulecpu.ReadCSV(t, rulecpu.Dir()+"/absences.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > limit {
			return false
		}
		if r[h["corrects"]] != "" {
			return true
		}
		d, _ := rulecpu.Day(r[h["date"]])
		per[s] = append(per[s], indicators.Event{Kind: indicators.Absence, Day: d, Justified: r[h["justified"]] == "true"})
		return true
	})
	rulecpu.ReadCSV(t, rulecpu.Dir()+"/grades.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > limit {
			return false
		}
		e := indicators.Event{Kind: indicators.Mark, Term: int(r[h["period"]][1] - '1'), Subject: r[h["subject"]], Mark: math.NaN()}
		switch r[h["status"]] {
		case "ok":
			e.Mark, _ = strconv.ParseFloat(r[h["mark"]], 64)
		case "absent", "not_graded", "missing":
		default:
			return true
		}
		per[s] = append(per[s], e)
		return true
	})
	rulecpu.ReadCSV(t, rulecpu.Dir()+"/activity.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > limit {
			return false
		}
		d, _ := rulecpu.Day(r[h["date"]])
		per[s] = append(per[s], indicators.Event{Kind: indicators.Activity, Day: d})
		return true
	})
	cfg := indicators.DefaultConfig()
	if err := cfg.Set("raise_at", 0.65); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("clear_below", 0.3); err != nil {
		t.Fatal(err)
	}
	memo := cfg.NewMemo(32 << 20)
	var ev []indicators.Event
	t0 := time.Now()
	for range 5 {
		for s, e := range per {
			ev = append(ev[:0], e...)
			memo.Evaluate(s, ev)
		}
	}
	t.Logf("%d students x5: %v", len(per), time.Since(t0))
}
