package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestPartsOnlyAfterCommit: in a continuous run (the replay source) a
// parquet part appears in the output folder only once the checkpoint that
// recorded it committed. The first run cannot write its checkpoint record
// (a folder stands where the record's temporary file goes) and fails
// after the sink flushed its first part: no reader of the folder may see
// that part, which the next run, finding no checkpoint, takes back. That
// run, with nothing in the way, commits and publishes its part.
func TestPartsOnlyAfterCommit(t *testing.T) {
	academy, err := filepath.Abs(filepath.Join("..", "..", "connectors", "replay", "testdata", "academy"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	toml := filepath.Join(dir, "p.toml")
	if err := os.WriteFile(toml, []byte(`[pipeline]
name = "parts"
state_dir = "state"
checkpoint_interval = "1h"

[[source]]
name = "events"
connector = "replay"
[source.options]
dir = "`+academy+`"
speed = "max"

[[sink]]
name = "out"
input = "events"
connector = "parquet"
[sink.options]
path = "out"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The record is written to checkpoint.json.tmp and renamed: a folder
	// there makes the commit fail.
	block := filepath.Join(dir, "state", "checkpoint.json.tmp")
	if err := os.MkdirAll(block, 0o755); err != nil {
		t.Fatal(err)
	}
	visible := func() []string {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				out = append(out, e.Name())
			}
		}
		return out
	}

	if _, err := pipelinetest.RunErr(t, toml); err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("run with its record blocked: %v, want a checkpoint error", err)
	}
	if got := visible(); len(got) != 0 {
		t.Errorf("after a run whose checkpoint never committed the output folder shows %q, want no part", got)
	}

	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	sum := pipelinetest.Run(t, toml)
	if got := visible(); len(got) != 1 || got[0] != "part-00000001.parquet" {
		t.Errorf("after a committed run the output folder shows %q, want part 1", got)
	}
	if sum.Stages[0].RowsOut == 0 {
		t.Error("the replay read no rows")
	}
}
