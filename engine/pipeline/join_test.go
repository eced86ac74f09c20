package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/rules/host/hosttest"
)

// textRows keeps every row as "col=value ..." text, and the schema.
type textRows struct {
	schema *arrow.Schema
	rows   []string
}

func (s *textRows) Spec() protocol.Spec {
	return protocol.Spec{Name: "text", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (s *textRows) Validate(context.Context, protocol.Config) error { return nil }
func (s *textRows) Open(_ context.Context, _ protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	s.schema = schema
	return s, nil
}
func (s *textRows) Write(ctx context.Context, rec arrow.RecordBatch) error {
	for i := range int(rec.NumRows()) {
		var parts []string
		for c, f := range rec.Schema().Fields() {
			parts = append(parts, f.Name+"="+rec.Column(c).ValueStr(i))
		}
		s.rows = append(s.rows, strings.Join(parts, " "))
	}
	return nil
}
func (s *textRows) Close(context.Context) error { return nil }
func (s *textRows) Abort(context.Context) error { return nil }

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runText(t *testing.T, dir, toml string) (*textRows, string, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	got := &textRows{}
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: connectors{map[string]protocol.Connector{"text": got}}, Rules: hosttest.NewRuntime(t), Mem: mem})
	if err != nil {
		return nil, "", err
	}
	defer plan.Close(ctx)
	sum, err := plan.Run(ctx, pipeline.RunOptions{})
	if err != nil {
		return nil, "", err
	}
	return got, sum.Line(), nil
}

const joinFiles = `
[pipeline]
name = "j"
batch_rows = 2

[[source]]
name = "students"
connector = "csv"
[source.options]
path = "students.csv"

[[source]]
name = "absences"
connector = "csv"
[source.options]
path = "absences.csv"

[[join]]
name = "enriched"
input = "absences"
dimension = "students"
on = ["student_id"]
columns = ["class_id"]
how = "%s"

[[sink]]
name = "out"
input = "enriched"
connector = "text"
`

func TestJoin(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"students.csv": "student_id,class_id,school\nS1,6A,X\nS2,6B,X\nS3,5A,Y\n",
		"absences.csv": "student_id,date\nS2,2025-09-01\nS9,2025-09-02\nS1,2025-09-03\n,2025-09-04\nS2,2025-09-05\n",
	})
	got, _, err := runText(t, dir, fmt.Sprintf(joinFiles, "left"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"student_id=S2 date=2025-09-01 class_id=6B",
		"student_id=S9 date=2025-09-02 class_id=(null)",
		"student_id=S1 date=2025-09-03 class_id=6A",
		"student_id=(null) date=2025-09-04 class_id=(null)",
		"student_id=S2 date=2025-09-05 class_id=6B",
	}
	if strings.Join(got.rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("left join:\n%s\nwant\n%s", strings.Join(got.rows, "\n"), strings.Join(want, "\n"))
	}

	got, line, err := runText(t, dir, fmt.Sprintf(joinFiles, "inner"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.rows) != 3 || !strings.Contains(line, "2 dead-lettered") {
		t.Errorf("inner join: %d rows, %s", len(got.rows), line)
	}
	dl, err := os.ReadFile(filepath.Join(dir, "out", "j.dead_letter.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dl), `no row of ""students"" has key (S9)`) {
		t.Errorf("dead letters:\n%s", dl)
	}
}

func TestJoinRefusesBadKeysAndDuplicates(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"students.csv": "student_id,class_id\nS1,6A\nS1,6B\n",
		"absences.csv": "student_id,date,class_id\nS1,2025-09-01,6A\n",
	})
	_, _, err := runText(t, dir, fmt.Sprintf(joinFiles, "left"))
	if err == nil || !strings.Contains(err.Error(), `column "class_id" of "students" is already in "absences"`) {
		t.Errorf("clash: err = %v", err)
	}
	dir = writeFiles(t, map[string]string{
		"students.csv": "student_id,class_id\nS1,6A\nS1,6B\n",
		"absences.csv": "student_id,date\nS1,2025-09-01\n",
	})
	_, _, err = runText(t, dir, fmt.Sprintf(joinFiles, "left"))
	if err == nil || !strings.Contains(err.Error(), `dimension "students" has two rows for key (S1)`) {
		t.Errorf("duplicate key: err = %v", err)
	}
}

func TestUnion(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"marks.csv":    "student_id,date,mark\nS1,2025-09-10,12.5\nS2,2025-09-11,8\n",
		"absences.csv": "student_id,date,half_days\nS1,2025-09-12,2\n",
	})
	toml := `
[pipeline]
name = "u"

[[source]]
name = "marks"
connector = "csv"
[source.options]
path = "marks.csv"

[[source]]
name = "absences"
connector = "csv"
[source.options]
path = "absences.csv"
columns = { half_days = "int32" }

[[union]]
name = "timeline"
inputs = ["marks", "absences"]

[[sink]]
name = "out"
input = "timeline"
connector = "text"
`
	got, _, err := runText(t, dir, toml)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got.schema.Fields() {
		names = append(names, f.Name+":"+f.Type.String())
	}
	if strings.Join(names, " ") != "student_id:utf8 date:date32 mark:float64 half_days:int32" {
		t.Errorf("union schema %v", names)
	}
	joined := strings.Join(got.rows, "\n")
	for _, want := range []string{
		"student_id=S1 date=2025-09-10 mark=12.5 half_days=(null)",
		"student_id=S1 date=2025-09-12 mark=(null) half_days=2",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("union rows lack %q:\n%s", want, joined)
		}
	}
	if len(got.rows) != 3 {
		t.Errorf("union has %d rows, want 3", len(got.rows))
	}

	// A column of two types that do not widen is refused.
	bad := strings.Replace(toml, `columns = { half_days = "int32" }`, `columns = { date = "utf8" }`, 1)
	if _, _, err := runText(t, dir, bad); err == nil || !strings.Contains(err.Error(), `column "date" is date32 in "marks" but utf8 in "absences"`) {
		t.Errorf("type clash: err = %v", err)
	}
}
