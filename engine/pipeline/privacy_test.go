package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// TestRuleSeesOnlyDeclaredInputs runs testdata/snoop.wasm, a rule that
// scans all of its memory for the bytes "SECRET-X", over rows where they
// are in a column it declares (it finds them: the scan works) or only in
// one it does not declare (it must not find them: the engine passes a
// rule its declared inputs and nothing else).
func TestRuleSeesOnlyDeclaredInputs(t *testing.T) {
	snoop, err := filepath.Abs(filepath.Join("testdata", "snoop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, note string
		want           string
	}{
		{name: "secret in a declared column", id: "S1", note: "SECRET-X1", want: "1"},
		{name: "secret in an undeclared column", id: "SECRET-X1", note: "n", want: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			var b strings.Builder
			b.WriteString("student_id,mark,note\n")
			for i := range 50 {
				fmt.Fprintf(&b, "%s%d,%d.5,%s\n", tt.id, i, i%20, tt.note)
			}
			cfg := pipelineIn(t, "in.csv", b.String(), fmt.Sprintf(`
[pipeline]
name = "t"

[[source]]
name = "in"
connector = "csv"
[source.options]
path = "in.csv"
columns = { student_id = "utf8", mark = "float64", note = "utf8" }

[[rule]]
name = "snoop"
input = "in"
module = %q
workers = 1

[[sink]]
name = "out"
input = "snoop"
connector = "csv_file"
[sink.options]
path = "out/out.csv"
`, snoop))
			plan := prepare(t, cfg, mem, nil)
			defer plan.Close(context.Background())
			if _, err := plan.Run(context.Background(), pipeline.RunOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(cfg.Dir, "out", "out.csv"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(got)), "\n")
			if len(lines) != 51 {
				t.Fatalf("%d lines out", len(lines))
			}
			for _, l := range lines[1:] {
				if !strings.HasSuffix(l, ","+tt.want) {
					t.Fatalf("row %q: found should be %s", l, tt.want)
				}
			}
		})
	}
}

// TestPrivacyPrepare checks what Prepare refuses and reports about
// personal data.
func TestPrivacyPrepare(t *testing.T) {
	const key = "VIGIE_PIPELINE_TEST_KEY"
	data := "student_id,class_id,mark\nS1,c1,12\nS2,c1,9\n"
	base := `
[pipeline]
name = "t"

[privacy]
pseudonymise = ["student_id"]
personal = ["class_id"]
key_env = "` + key + `"

[[source]]
name = "grades"
connector = "csv"
[source.options]
path = "g.csv"
columns = { student_id = "utf8", class_id = "utf8", mark = "float64" }

[[sink]]
name = "analysts"
input = "grades"
connector = "csv_file"
columns = ["student_id", "mark"]
[sink.options]
path = "out/a.csv"

[[sink]]
name = "team"
input = "grades"
connector = "csv_file"
reidentify = { column = "student_id", lookup = "grades" }
[sink.options]
path = "out/t.csv"
`
	t.Run("no key", func(t *testing.T) {
		cfg := pipelineIn(t, "g.csv", data, base)
		_, err := pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{}, Rules: hosttest.NewRuntime(t)})
		if err == nil || !strings.Contains(err.Error(), "environment variable "+key+" is not set") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Setenv(key, strings.Repeat("k", 32))
	t.Run("unknown kept column", func(t *testing.T) {
		cfg := pipelineIn(t, "g.csv", data, strings.Replace(base, `columns = ["student_id", "mark"]`, `columns = ["student_id", "grade"]`, 1))
		_, err := pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{}, Rules: hosttest.NewRuntime(t)})
		if err == nil || !strings.Contains(err.Error(), `column "grade" is not in the sink's input`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("misspelt columns", func(t *testing.T) {
		cfg := pipelineIn(t, "g.csv", data, strings.Replace(strings.Replace(base, `pseudonymise = ["student_id"]`, `pseudonymise = ["student_id", "studnet_id"]`, 1), `personal = ["class_id"]`, `personal = ["clas_id"]`, 1))
		_, err := pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{}, Rules: hosttest.NewRuntime(t)})
		if err == nil || !strings.Contains(err.Error(), `privacy.pseudonymise: no source has a column "studnet_id"`) || !strings.Contains(err.Error(), `privacy.personal: no stage has a column "clas_id"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("flows and outputs", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		cfg := pipelineIn(t, "g.csv", data, base)
		plan := prepare(t, cfg, mem, nil)
		defer plan.Close(context.Background())
		var flows []string
		for _, f := range plan.PersonalFlows() {
			flows = append(flows, f.Output+": "+strings.Join(f.Columns, ", "))
		}
		want := "analysts: student_id (pseudonym) | team: student_id (clear, re-identified), class_id (clear)"
		if got := strings.Join(flows, " | "); got != want {
			t.Errorf("flows:\n got %s\nwant %s", got, want)
		}
		if _, err := plan.Run(context.Background(), pipeline.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(filepath.Join(cfg.Dir, "out", "a.csv"))
		tm, _ := os.ReadFile(filepath.Join(cfg.Dir, "out", "t.csv"))
		if strings.Contains(string(a), "S1") || !strings.HasPrefix(string(a), "student_id,mark\nps_") {
			t.Errorf("analysts' output:\n%s", a)
		}
		if string(tm) != "student_id,class_id,mark\nS1,c1,12\nS2,c1,9\n" {
			t.Errorf("team's output:\n%s", tm)
		}
	})
}

// TestRetention: kept state older than retention.state (by event time,
// against the wall clock) is gone from the next run; dead letters and
// outputs last written longer ago than their retention are removed.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "trend"))
	toml := fmt.Sprintf(`
[pipeline]
name = "kept"
state_dir = "state"
dead_letter = "out/dl.csv"

[privacy]
retention = { state = "365d", dead_letter = "30d", outputs = "60d" }

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

[[sink]]
name = "out"
input = "trend"
connector = "csv_file"
[sink.options]
path = "out/trend.csv"
`, wasm)
	day := func(ago int) string { return time.Now().AddDate(0, 0, -ago).Format(time.DateOnly) }
	plan := func(t *testing.T, mem memory.Allocator) *pipeline.Plan {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(toml))
		if err != nil {
			t.Fatal(err)
		}
		return prepare(t, cfg, mem, nil)
	}
	run := func(week string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "week.csv"), []byte("student_id,date,x\n"+week), 0o644); err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		p := plan(t, mem)
		defer p.Close(context.Background())
		if _, err := p.Run(context.Background(), pipeline.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "out", "trend.csv"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Old is seen 400 and 10 days ago, Gone only 400 days ago; both are
	// kept by the first run, which reads them.
	first := run(fmt.Sprintf("Old,%s,1\nOld,%s,2\nGone,%s,5\n", day(400), day(10), day(400)))
	if !strings.Contains(first, "Gone,") || !strings.Contains(first, "Old,1,2,2") {
		t.Fatalf("first run:\n%s", first)
	}
	// The next run reads one new row; the state past a year is gone.
	second := run(fmt.Sprintf("New,%s,7\n", day(1)))
	if strings.Contains(second, "Gone,") || !strings.Contains(second, "Old,2,2,1") || !strings.Contains(second, "New,7,7,1") {
		t.Errorf("second run, past retention:\n%s", second)
	}

	// 45 days on, the dead letters (30d) expire, the outputs (60d) not yet;
	// 90 days on, the outputs too.
	if err := os.WriteFile(filepath.Join(dir, "out", "dl.csv"), []byte("stage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := plan(t, mem)
	defer p.Close(context.Background())
	r, err := p.ApplyRetention(context.Background(), time.Now().AddDate(0, 0, 45))
	if err != nil || len(r.Files) != 1 || filepath.Base(r.Files[0]) != "dl.csv" {
		t.Fatalf("45 days on: %+v, %v", r, err)
	}
	r, err = p.ApplyRetention(context.Background(), time.Now().AddDate(0, 0, 90))
	if err != nil || len(r.Files) != 1 || filepath.Base(r.Files[0]) != "trend.csv" {
		t.Fatalf("90 days on: %+v, %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "trend.csv")); !os.IsNotExist(err) {
		t.Errorf("expired output still there: %v", err)
	}
}

// TestRetentionOfParts: a continuous run's parquet output is a folder of
// parts; retention.outputs expires each part by its own last write, and
// leaves the folder and the newer parts.
func TestRetentionOfParts(t *testing.T) {
	cfg := pipelineIn(t, "att.csv", "student_id,x\nS1,1\n", `
[pipeline]
name = "parts"

[privacy]
retention = { outputs = "60d" }

[[source]]
name = "att"
connector = "csv"
[source.options]
path = "att.csv"
columns = { x = "int32" }

[[sink]]
name = "out"
input = "att"
connector = "parquet"
[sink.options]
path = "out/r.parquet"
`)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := prepare(t, cfg, mem, nil)
	defer p.Close(context.Background())
	folder := cfg.Resolve("out/r.parquet")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, ago := range []int{100, 70, 10} {
		part := filepath.Join(folder, fmt.Sprintf("part-%08d.parquet", i+1))
		if err := os.WriteFile(part, []byte("PAR1"), 0o644); err != nil {
			t.Fatal(err)
		}
		when := time.Now().AddDate(0, 0, -ago)
		if err := os.Chtimes(part, when, when); err != nil {
			t.Fatal(err)
		}
	}
	r, err := p.ApplyRetention(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, f := range r.Files {
		removed = append(removed, filepath.Base(f))
	}
	if want := []string{"part-00000001.parquet", "part-00000002.parquet"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	if _, err := os.Stat(filepath.Join(folder, "part-00000003.parquet")); err != nil {
		t.Errorf("the recent part: %v", err)
	}
}
