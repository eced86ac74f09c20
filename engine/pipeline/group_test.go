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
	"github.com/vigie-edu/vigie/rules/host/hosttest"
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

[[sink]]
name = "out"
input = "trend"
connector = "groups"
`, hosttest.BuildGoRule(t, filepath.Join("testdata", "trend"))))
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
