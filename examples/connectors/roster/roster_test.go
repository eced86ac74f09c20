package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/pluginhost"
)

// build compiles this example into dir as a third-party plugin.
func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, pluginhost.ExternalPrefix+"roster"), ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func TestConformanceAsARealPlugin(t *testing.T) {
	h := pluginhost.NewHost(pluginhost.Options{Dirs: []string{build(t)}})
	defer h.Close()
	c, err := h.Connector(context.Background(), "roster")
	if err != nil {
		t.Fatal(err)
	}
	conformance.TestSource(t, c.(protocol.Source), conformance.SourceCase{
		Options: map[string]any{"students": int64(8), "school": "0310001X"},
		WantRows: []string{
			"S000001|0310001X|7B|2011", "S000002|0310001X|6A|2010", "S000003|0310001X|6A|2014",
			"S000004|0310001X|8A|2015", "S000005|0310001X|6B|2015", "S000006|0310001X|6B|2014",
			"S000007|0310001X|6D|2011", "S000008|0310001X|6D|2014",
		},

		Bad: []conformance.BadCase{
			{Options: map[string]any{"students": "many"}, Want: `option "students": expected an integer`},
			{Options: map[string]any{"students": int64(-1)}, Want: "expected at least 0, got -1"},
			{Options: map[string]any{"studnets": int64(3)}, Want: `did you mean "students"?`},
		},
	})
}

func TestRunsInAPipeline(t *testing.T) {
	plugDir := build(t)
	dir := t.TempDir()
	toml := `
[pipeline]
name = "roster"
batch_rows = 1000
plugins_dir = "` + plugDir + `"

[[source]]
name = "students"
connector = "roster"
[source.options]
students = 2500

[[sink]]
name = "out"
input = "students"
connector = "csv_file"
[sink.options]
path = "students.csv"
`
	if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "pipeline.toml"))
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	h := pluginhost.NewHost(pluginhost.Options{Builtins: builtin.Registry(), Dirs: []string{cfg.PluginsDir}})
	defer h.Close()
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: h, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close(ctx)
	sum, err := plan.Run(ctx, pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.SourceRows() != 2500 {
		t.Errorf("read %d rows", sum.SourceRows())
	}
	out, err := os.ReadFile(filepath.Join(dir, "students.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2501 || lines[0] != "student_id,school,class,birth_year" || !strings.HasPrefix(lines[2500], "S002500,0750001A,") {
		t.Errorf("output: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}
