package conformance

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
	"github.com/vigie-edu/vigie/rules/ruletest"
)

const (
	groupCases   = "group.cases.toml"
	goGroupDir   = "../sdk/vigie/examples/group_stats"
	goMutantsDir = "testdata/group_stats_mutants"
	pastEndDir   = "testdata/group_past_end"
	groupRule    = "group_stats"
)

// groupGuests are the ports of the group rule group_stats, one per SDK,
// and one in WAT written from the ABI alone.
func groupGuests() []guest {
	return []guest{
		{"go/" + groupRule, func(t *testing.T) string { return hosttest.BuildGoRule(t, goGroupDir) }},
		{"c/" + groupRule, func(t *testing.T) string { return buildC(t, groupRule) }},
		{"assemblyscript/" + groupRule, func(t *testing.T) string { return buildAS(t, groupRule) }},
		{"rust/" + groupRule, func(t *testing.T) string { return buildRust(t, groupRule) }},
		{"wat/" + groupRule, func(t *testing.T) string { return buildWAT(t, groupRule) }},
	}
}

func TestGroup(t *testing.T) {
	for _, g := range groupGuests() {
		t.Run(g.name, func(t *testing.T) { runCases(t, g.build(t), groupCases) })
	}
}

// mutants are the bugs of testdata/group_stats_mutants (its parameter
// "mutant"); keep the two lists in step.
var mutants = []string{
	"rows_count_non_null",
	"zero_sum_not_null",
	"nan_as_null",
	"empty_label_as_null",
	"first_label",
	"last_row_label",
	"drop_last_row",
	"even_groups",
	"skip_empty_groups",
	"sum_backwards",
	"rows_per_batch",
	"label_of_other_group",
}

// TestGroupCasesCatchMutants runs group.cases.toml against group_stats
// with deliberate bugs: each must fail at least one case on a wrong value
// (a diff, not an error), and the rule without a bug must pass them all.
func TestGroupCasesCatchMutants(t *testing.T) {
	module := hosttest.BuildGoRule(t, goMutantsDir)
	ctx := context.Background()
	runner := newRunner(t, nil)
	for _, m := range append([]string{""}, mutants...) {
		s, err := ruletest.Load(groupCases)
		if err != nil {
			t.Fatal(err)
		}
		for i := range s.Cases {
			s.Cases[i].Params = map[string]any{"mutant": m}
		}
		r, err := runner.Run(ctx, module, s)
		if err != nil {
			t.Fatal(err)
		}
		if m == "" {
			if !r.Passed() {
				t.Fatalf("the rule without a bug fails:\n%s", r)
			}
			continue
		}
		var caught []string
		for _, c := range r.Cases {
			if c.Err != "" {
				t.Errorf("mutant %s: case %q: %s", m, c.Name, c.Err)
			}
			if len(c.Diffs) > 0 {
				caught = append(caught, c.Name)
			}
		}
		sort.Strings(caught)
		if len(caught) == 0 {
			t.Errorf("mutant %s passes every case of %s", m, groupCases)
		} else {
			t.Logf("mutant %s: caught by %d cases, e.g. %q", m, len(caught), caught[0])
		}
	}
}

// TestGroupPastEnd runs, in each SDK, a group rule that asks for the
// bounds of the group after the last: the SDK's accessor must fail the
// batch with a message naming the group (testdata/group_past_end).
func TestGroupPastEnd(t *testing.T) {
	const name = "group_past_end"
	cases := filepath.Join(pastEndDir, name+".cases.toml")
	for _, g := range []guest{
		{"go/" + name, func(t *testing.T) string { return hosttest.BuildGoRule(t, filepath.Join(pastEndDir, "go")) }},
		{"c/" + name, func(t *testing.T) string { return buildCFile(t, "testdata/c/"+name, pastEndDir, name+".c") }},
		{"assemblyscript/" + name, func(t *testing.T) string {
			return buildASFile(t, "testdata/assemblyscript/"+name, filepath.Join(pastEndDir, name+".ts"))
		}},
		{"rust/" + name, func(t *testing.T) string {
			return buildRustFile(t, "testdata/rust/"+name, filepath.Join("..", "..", "conformance", pastEndDir, name+".rs"))
		}},
	} {
		t.Run(g.name, func(t *testing.T) { runCases(t, g.build(t), cases) })
	}
}

// TestGroupArenaSteady runs 150 batches of 4096 rows in groups of varying
// sizes (so a varying number of groups, and of output rows) through one
// instance of each compiled port of group_stats, and checks that the
// instance's memory stops growing, as TestArenaSteady does for map rules.
func TestGroupArenaSteady(t *testing.T) {
	for _, g := range groupGuests()[1:] { // the Go SDK's arena has its own test in internal/wasmhost
		t.Run(g.name, func(t *testing.T) {
			ctx := context.Background()
			rt := hosttest.NewRuntime(t)
			m, err := rt.Load(ctx, g.build(t), wasmhost.NewLoadConfig())
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			const n = 4096
			rec := groupBatch(mem, n)
			defer rec.Release()
			b, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig())
			if err != nil {
				t.Fatal(err)
			}
			inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			checkSteadyMemory(t, inst, func(i int) {
				size := 1 + i%7 // rows per group: 1 to 7, so 586 to 4096 groups
				offsets := []uint32{0}
				for end := size; ; end += size {
					if end >= n {
						offsets = append(offsets, n)
						break
					}
					offsets = append(offsets, uint32(end))
				}
				out, err := inst.EvalGroup(ctx, b, rec, offsets, mem)
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				if int(out.NumRows()) != len(offsets)-1 {
					t.Fatalf("batch %d: %d rows, want %d", i, out.NumRows(), len(offsets)-1)
				}
				// Group 1 is rows size to 2*size-1.
				want := "null"
				for r := 2*size - 1; r >= size; r-- {
					if r%3 != 2 {
						want = fmt.Sprintf("r%d", r)
						break
					}
				}
				got := "null"
				if labels := out.Column(2).(*array.String); labels.IsValid(1) {
					got = labels.Value(1)
				}
				if got != want {
					t.Errorf("batch %d: last_label of group 1 %q, want %q", i, got, want)
				}
				out.Release()
			})
		})
	}
}

// groupBatch returns n rows of group_stats' inputs: score = row (null
// every 4th row), label "r<row>" (null when row%3 == 2).
func groupBatch(mem memory.Allocator, n int) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := range n {
		if i%4 == 3 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Float64Builder).Append(float64(i))
		}
		if i%3 == 2 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("r%d", i))
		}
	}
	return b.NewRecordBatch()
}
