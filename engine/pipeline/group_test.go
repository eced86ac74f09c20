package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// groupRows keeps "student:first:last:n" of every output row.
type groupRows struct{ rows []string }

func (s *groupRows) Spec() protocol.Spec {
	return protocol.Spec{Name: "groups", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (s *groupRows) Validate(context.Context, protocol.Config) error { return nil }
func (s *groupRows) Open(_ context.Context, _ protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	if got := fieldList(schema); got != "student_id first last n" {
		return nil, fmt.Errorf("group output schema is %q", got)
	}
	return s, nil
}
func (s *groupRows) Write(ctx context.Context, rec arrow.RecordBatch) error {
	id := rec.Column(0).(*array.String)
	f, l, n := rec.Column(1).(*array.Int32), rec.Column(2).(*array.Int32), rec.Column(3).(*array.Int32)
	for i := range id.Len() {
		s.rows = append(s.rows, fmt.Sprintf("%s:%d:%d:%d", id.Value(i), f.Value(i), l.Value(i), n.Value(i)))
	}
	return nil
}
func (s *groupRows) Close(context.Context) error { return nil }
func (s *groupRows) Abort(context.Context) error { return nil }

func fieldList(s *arrow.Schema) string {
	names := []string{}
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	return strings.Join(names, " ")
}

// groupPipeline is a pipeline over marks.csv (student_id, month, x)
// whose group rule testdata/trend, by student in month order, writes to
// the "groups" sink in batches of 7 rows.
func groupPipeline(t *testing.T, marks string) *config.Pipeline {
	t.Helper()
	return groupPipelineWith(t, marks, "")
}

// groupPipelineWith is groupPipeline with more keys in the [[rule]] table.
func groupPipelineWith(t *testing.T, marks, ruleKeys string) *config.Pipeline {
	t.Helper()
	return pipelineIn(t, "marks.csv", marks, fmt.Sprintf(`
[pipeline]
name = "g"
batch_rows = 7

[[source]]
name = "marks"
connector = "csv"
[source.options]
path = "marks.csv"
columns = { x = "int32" }

[[rule]]
name = "trend"
input = "marks"
module = %q
group_by = ["student_id"]
order_by = "month"
%s
[[sink]]
name = "out"
input = "trend"
connector = "groups"
`, hosttest.BuildGoRule(t, filepath.Join("testdata", "trend")), ruleKeys))
}

func TestGroupRuleOrdersGroupsAndIsolatesPoison(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	// 40 students with 1..10 months each, rows shuffled; x = month number,
	// except student S019 whose rows carry the poison value.
	type row struct {
		id    string
		month int
	}
	var rows []row
	want := []string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for s := range 40 {
		months := 1 + s%10
		for m := range months {
			rows = append(rows, row{fmt.Sprintf("S%03d", s), m + 1})
		}
		if s != 19 {
			want = append(want, fmt.Sprintf("S%03d:1:%d:%d", s, months, months))
		}
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	var b strings.Builder
	b.WriteString("student_id,month,x\n")
	for _, r := range rows {
		x := r.month
		if r.id == "S019" {
			x = -1
		}
		fmt.Fprintf(&b, "%s,2025-%02d,%d\n", r.id, r.month, x)
	}
	cfg := groupPipeline(t, b.String())
	got := &groupRows{}
	plan := prepare(t, cfg, mem, map[string]protocol.Connector{"groups": got})
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.rows, " ") != strings.Join(want, " ") {
		t.Errorf("groups:\n got %v\nwant %v", got.rows, want)
	}
	if sum.DeadLettered() != 10 { // S019 has 10 rows
		t.Errorf("dead-lettered %d rows, want the poison group's 10", sum.DeadLettered())
	}
}

func TestGroupByOnMapRuleIsRefused(t *testing.T) {
	cfg := setup(t, 10, absenceRule(t)+"group_by = [\"student_id\"]\n", parquetSink)
	ctx := context.Background()
	_, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: connectors{}, Rules: hosttest.NewRuntime(t)})
	if err == nil || !strings.Contains(err.Error(), "rule[0].group_by: rule absence is a map rule: group_by applies to group rules only") {
		t.Errorf("err = %v", err)
	}
}

func TestGroupStateAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "trend"))
	pipelineFile := func(rescore string) string {
		return fmt.Sprintf(`
[pipeline]
name = "weekly"
state_dir = "state"

[[source]]
name = "marks"
connector = "csv"
[source.options]
path = "week.csv"
columns = { x = "int32", date = "date32" }

[[rule]]
name = "trend"
input = "marks"
module = %q
group_by = ["student_id"]
order_by = "date"
keep_state = true
retention = "60d"
rescore = %q

[[sink]]
name = "out"
input = "trend"
connector = "groups"
`, wasm, rescore)
	}
	run := func(week, rescore string) []string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "week.csv"), []byte("student_id,date,x\n"+week), 0o644); err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(pipelineFile(rescore)))
		if err != nil {
			t.Fatal(err)
		}
		got := &groupRows{}
		plan := prepare(t, cfg, mem, map[string]protocol.Connector{"groups": got})
		defer plan.Close(context.Background())
		if _, err := plan.Run(context.Background(), pipeline.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		return got.rows
	}
	week1 := "A,2025-09-01,1\nA,2025-09-03,2\nB,2025-09-02,10\n"
	week2 := "A,2025-09-10,3\nC,2025-09-09,7\n"
	if got := strings.Join(run(week1, "all"), " "); got != "A:1:2:2 B:10:10:1" {
		t.Fatalf("week 1: %s", got)
	}
	if got := strings.Join(run(week2, "touched"), " "); got != "A:1:3:3 C:7:7:1" {
		t.Fatalf("week 2, touched keys only: %s", got)
	}
	// Rerunning a week already kept changes nothing.
	if got := strings.Join(run(week2, "all"), " "); got != "A:1:3:3 B:10:10:1 C:7:7:1" {
		t.Fatalf("rerun of week 2: %s", got)
	}
	// Two months later, retention (60 days) forgets September.
	if got := strings.Join(run("A,2025-11-20,4\n", "all"), " "); got != "A:4:4:1" {
		t.Fatalf("after retention: %s", got)
	}
}

// TestGroupRuleDeadLetterThreshold: a group rule that fails on every group
// stops the run past the dead letter threshold, naming the stage and the
// rule.
func TestGroupRuleDeadLetterThreshold(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var b strings.Builder
	b.WriteString("student_id,month,x\n")
	for s := range 50 {
		for m := range 3 {
			fmt.Fprintf(&b, "S%03d,2025-%02d,-1\n", s, m+1)
		}
	}
	cfg := groupPipeline(t, b.String())
	plan := prepare(t, cfg, mem, map[string]protocol.Connector{"groups": &groupRows{}})
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `stage "trend": rule `) || !strings.Contains(err.Error(), "150 of the last 150 rows dead-lettered (100.0%)") {
		t.Fatalf("err = %v (%s)", err, sum.Line())
	}
}

// TestGroupRuleParallelCalls runs the group calls at the end of input on
// one to four instances side by side, in calls of call_rows rows: the
// output is in key order whatever call finishes first, one call per group
// when call_rows is 1, poisoned groups go to the dead letters (found by
// bisection within their own call) and with on_error = "fail" the run
// stops with the rule's error; no Arrow memory is left behind either way.
func TestGroupRuleParallelCalls(t *testing.T) {
	// 120 students with 1..12 months each, rows shuffled; x = month number,
	// except the poisoned students whose rows carry -1.
	poison := map[int]bool{7: true, 50: true, 51: true, 118: true}
	var b strings.Builder
	b.WriteString("student_id,month,x\n")
	var lines, want []string
	deadRows := 0
	for s := range 120 {
		months := 1 + (s*7)%12
		for m := range months {
			x := m + 1
			if poison[s] {
				x, deadRows = -1, deadRows+1
			}
			lines = append(lines, fmt.Sprintf("S%03d,2025-%02d,%d\n", s, m+1, x))
		}
		if !poison[s] {
			want = append(want, fmt.Sprintf("S%03d", s))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	for _, l := range lines {
		b.WriteString(l)
	}
	for _, tc := range []struct {
		name    string
		workers int
		rows    int
		fail    bool
	}{
		{"one instance, 1 row per call", 1, 1, false},
		{"two instances, 1 row per call", 2, 1, false},
		{"two instances, 10 rows per call", 2, 10, false},
		{"four instances, 25 rows per call", 4, 25, false},
		{"four instances, 1000 rows per call", 4, 1000, false},
		{"four instances, on_error fail", 4, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			keys := fmt.Sprintf("workers = %d\ncall_rows = %d\n", tc.workers, tc.rows)
			if tc.fail {
				keys += "on_error = \"fail\"\n"
			}
			cfg := groupPipelineWith(t, b.String(), keys)
			got := &groupRows{}
			plan := prepare(t, cfg, mem, map[string]protocol.Connector{"groups": got})
			defer plan.Close(context.Background())
			sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
			if tc.fail {
				if err == nil || !strings.Contains(err.Error(), "rule trend") {
					t.Fatalf("err = %v, want the rule's error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got.rows {
				id, _, _ := strings.Cut(r, ":")
				ids = append(ids, id)
			}
			if strings.Join(ids, " ") != strings.Join(want, " ") {
				t.Errorf("groups out of key order or missing:\n got %v\nwant %v", ids, want)
			}
			if sum.DeadLettered() != int64(deadRows) {
				t.Errorf("dead-lettered %d rows, want the poisoned groups' %d", sum.DeadLettered(), deadRows)
			}
			// A call holds at most call_rows rows, or one group (12 rows at
			// most): each call that succeeds emits one batch.
			st, _ := sum.Stage("trend")
			minCalls := (st.RowsIn - int64(deadRows) + int64(max(tc.rows, 12)) - 1) / int64(max(tc.rows, 12))
			if tc.rows == 1 {
				minCalls = int64(len(want)) // one call per group
			}
			if st.Batches < minCalls {
				t.Errorf("%d calls emitted, want at least %d with call_rows = %d", st.Batches, minCalls, tc.rows)
			}
		})
	}
}
