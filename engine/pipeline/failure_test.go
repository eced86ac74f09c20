package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/pipeline"
)

func TestDeadLetterThresholdStopsTheRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string // keys added to the rule
		x     func(i int) int
		want  []string // in the error; none: the run succeeds
	}{
		{"every row fails", "", negative,
			[]string{`stage "r": rule hostile 0.0.1 (sha256 `, "1000 of the last 1000 rows dead-lettered (100.0%)", "dead_letter_max_share = 0.1", "bad batch: x is negative"}},
		{"every row fails, short window", "dead_letter_window = 10\n", negative,
			[]string{`stage "r": rule hostile 0.0.1 (sha256 `, "10 of the last 10 rows dead-lettered (100.0%)"}},
		{"threshold off", "dead_letter_max_share = 1.0\n", negative, nil},
		{"no failure", "", func(i int) int { return i }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := setupX(t, 1500, failRule("dead_letter")+tc.extra, parquetSink, tc.x)
			plan := prepare(t, cfg, mem, nil)
			defer plan.Close(context.Background())
			sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
			if tc.want == nil {
				if err != nil || sum.Status() != "ok" {
					t.Fatalf("run: %v (%s)", err, sum.Line())
				}
				return
			}
			if err == nil || sum.Status() != "failed" {
				t.Fatalf("a run past the threshold ended with %v (%s)", err, sum.Line())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if _, err := os.Stat(filepath.Join(cfg.Dir, "out", "r.parquet")); !os.IsNotExist(err) {
				t.Errorf("a failed run left an output file (stat: %v)", err)
			}
		})
	}
}

func TestBisectionBudget(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// fail.wasm fails every batch whose first x is negative: with every
	// row negative, finding the failing rows of a 1000-row batch takes
	// 1999 calls. Three calls in, the rest of the batch is dead-lettered
	// without being evaluated.
	cfg := setupX(t, 2000, failRule("dead_letter")+"dead_letter_max_share = 1.0\nbisect_max_calls = 3\nworkers = 1\n", parquetSink, negative)
	plan := prepare(t, cfg, mem, nil)
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.DeadLettered() != 2000 {
		t.Fatalf("dead-lettered %d rows, want 2000", sum.DeadLettered())
	}
	b, err := os.ReadFile(cfg.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	// Per batch: calls on rows 0-999, 0-499, 0-249, then the budget is
	// spent: all 1000 rows carry the budget reason (none was isolated).
	if n := strings.Count(string(b), "bisection budget of the batch is spent (calls: 3,"); n != 2000 {
		t.Errorf("%d dead letters name the spent budget, want 2000:\n%.600s", n, b)
	}
}

func TestSourceDeadLetterThreshold(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		bad         int // rows out of 200 with a bad x
		fails       bool
	}{
		{"every row bad", "", 200, true},
		{"5% bad", "", 10, false},
		{"every row bad, threshold off", "dead_letter_max_share = 1.0\n", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			var b strings.Builder
			b.WriteString("student_id,x\n")
			for i := range 200 {
				x := fmt.Sprint(i)
				if i%(200/tc.bad) == 0 {
					x = "n/a"
				}
				fmt.Fprintf(&b, "S%05d,%s\n", i, x)
			}
			cfg := pipelineIn(t, "att.csv", b.String(), fmt.Sprintf(`[pipeline]
name = "t"
[[source]]
name = "att"
connector = "csv"
%s[source.options]
path = "att.csv"
columns = { x = "int32" }
[[sink]]
name = "out"
input = "att"
connector = "parquet"
[sink.options]
path = "out/att.parquet"
`, tc.extra))
			plan := prepare(t, cfg, mem, nil)
			defer plan.Close(context.Background())
			sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
			if got := sum.DeadLettered(); got != int64(tc.bad) && !tc.fails {
				t.Errorf("dead-lettered %d rows, want %d", got, tc.bad)
			}
			if !tc.fails {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `stage "att": source connector csv: `) || !strings.Contains(err.Error(), "rows dead-lettered (100.0%)") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
