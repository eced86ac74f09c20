package pipelines_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/privacy"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// clearMark starts every clear student identifier in the leak test's
// copy of the academy: "S0001" becomes "ELEVE-S0001" (and the absence
// ids that embed it, "ELEVE-S0001-A1"), long enough that finding it in a
// file is never chance.
const clearMark = "ELEVE-S"

// hostile rows, appended to the copies of the inputs: each is
// dead-lettered and each holds a clear identifier, in its own column or
// in another.
var hostile = map[string]string{
	"grades.csv":   "ELEVE-S0003,maths,T1,ELEVE-S0003,ok\nELEVE-S0004,maths\n",
	"absences.csv": "X1,ELEVE-S0005,0751020B-6eA,not-a-date,AM,true,maladie,,\n",
	"activity.csv": "ELEVE-S0006,2025-13-45\n",
}

type registry struct{ *protocol.Registry }

func (r registry) Connector(_ context.Context, name string) (protocol.Connector, error) {
	return r.Get(name)
}

// runLogged runs the pipeline file with the built-in connectors
// in-process and every log line, at debug level, written to log.
func runLogged(t *testing.T, path string, log *bytes.Buffer) *stream.Summary {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: registry{builtin.Registry()}, Rules: rt, Mem: mem, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close(ctx)
	sum, err := plan.Run(ctx, pipeline.RunOptions{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	sum.Print(log)
	return sum
}

// TestNoClearIdentifierLeaks is the leak test of docs/privacy.md: the
// early-warning job with privacy on (private.toml) runs twice with pseudonymisation on, hostile rows
// dead-lettered, state kept; then every file the runs wrote (Parquet
// decoded, CSV, dead letters, the audit log, the state store both as raw
// files and decoded key by key) and the captured logs are searched for a
// clear student identifier. Only the declared delivery may hold one, and
// it must.
func TestNoClearIdentifierLeaks(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"students.csv", "absences.csv", "grades.csv", "activity.csv"} {
		b, err := os.ReadFile(filepath.Join("..", "data", name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "S0", clearMark+"0") + hostile[name]
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data", name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "rules", "early_warning"))
	src, err := os.ReadFile("private.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), `"../rules/early_warning/early_warning.wasm"`, `"`+filepath.ToSlash(wasm)+`"`, 1)
	text = strings.ReplaceAll(text, `"../data/`, `"`+filepath.ToSlash(dir)+`/data/`)
	toml := filepath.Join(dir, "private.toml")
	if err := os.WriteFile(toml, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIE_PSEUDONYM_KEY", strings.Repeat("leak-test-key-", 4))

	var logs bytes.Buffer
	sum := runLogged(t, toml, &logs)
	if n := sum.DeadLettered(); n != 4 {
		t.Errorf("%d rows dead-lettered, want the 4 hostile rows", n)
	}
	delivery := filepath.Join(dir, "out", "team_list.csv")
	team := readback.CSV(t, delivery)
	if len(team) < 2 || strings.Join(team[0], ",") != "student_id,class_id,change,code,reason" {
		t.Fatalf("team list: %v", team[:min(len(team), 2)])
	}
	for _, r := range team[1:] {
		if !strings.HasPrefix(r[0], clearMark) {
			t.Errorf("team list row %v: student_id is not a clear identifier", r)
		}
		if r[1] == "" {
			// class_id comes from the roster, joined on the pseudonym:
			// the same student has the same pseudonym in every source.
			t.Errorf("team list row %v: no class_id, the join across sources failed", r)
		}
	}
	alerts := readback.CSV(t, filepath.Join(dir, "out", "private_alerts.csv"))
	if id := alerts[1][readback.Columns(alerts[0])["student_id"]]; !privacy.IsPseudonym(id) {
		t.Errorf("alerts.csv student_id %q is not a pseudonym", id)
	}
	dl, err := os.ReadFile(filepath.Join(dir, "out", "private.dead_letter.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dl), privacy.Prefix) || !strings.Contains(string(dl), "withheld") {
		t.Errorf("dead letters neither pseudonymise the quoted value nor withhold raw rows:\n%s", dl)
	}
	scanForLeaks(t, dir, delivery, logs.String())

	// A second run reads the kept state (the alerts announced, each
	// student's timeline) and rewrites the outputs from it.
	runLogged(t, toml, &logs)
	scanForLeaks(t, dir, delivery, logs.String())
}

// scanForLeaks searches every file under dir but the inputs and the
// delivery (Parquet also decoded, the state store also key by key) and
// the logs for a clear identifier.
func scanForLeaks(t *testing.T, dir, delivery, logs string) {
	t.Helper()
	scanned := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(rel, "data"+string(filepath.Separator)) || rel == "private.toml" || path == delivery {
			return nil // the inputs, and the declared delivery
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.Index(b, []byte(clearMark)); i >= 0 {
			t.Errorf("%s holds a clear identifier: …%s…", rel, b[max(0, i-40):min(len(b), i+40)])
		}
		if strings.HasSuffix(path, ".parquet") {
			_, rows := readParquet(t, path)
			if s := strings.Join(rows, "\n"); strings.Contains(s, clearMark) {
				t.Errorf("%s (decoded) holds a clear identifier", rel)
			}
			kv := readback.OpenParquet(t, path).ParquetReader().MetaData().KeyValueMetadata()
			if v := kv.FindValue(privacy.MetaKeyID); v == nil || !strings.HasPrefix(*v, "k") {
				t.Errorf("%s: no key id in the Parquet key-value metadata (%v)", rel, kv)
			}
		}
		scanned[filepath.ToSlash(rel)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"out/private_alerts.parquet", "out/private_alerts.csv", "out/private_changes.csv", "out/private.dead_letter.csv", "out/early_warning_private.audit.jsonl"} {
		if !scanned[want] {
			t.Errorf("%s was not written: the scan would miss it (scanned %v)", want, scanned)
		}
	}
	if i := strings.Index(logs, clearMark); i >= 0 {
		t.Errorf("the logs hold a clear identifier: %s", logs[max(0, i-80):min(len(logs), i+40)])
	}
	scanState(t, filepath.Join(dir, "out", "private.state"))
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(string, ...any)     {}
func (quietLogger) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// scanState opens the state store and searches every key and value,
// decompressed, for a clear identifier.
func scanState(t *testing.T, dir string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
		if bytes.Contains(it.Key(), []byte(clearMark)) || bytes.Contains(it.Value(), []byte(clearMark)) {
			t.Errorf("state key %q holds a clear identifier", it.Key())
		}
	}
	if n == 0 {
		t.Error("the state store is empty: nothing was scanned")
	}
}
