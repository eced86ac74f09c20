package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// alertsToml is a pipeline over events.csv whose group rule
// testdata/lastalerts gives each student's last open alerts, turned into
// changes by an alerts stage written to the "text" sink (or sink).
func alertsToml(wasm, alertsExtra, sink string) string {
	return fmt.Sprintf(`
[pipeline]
name = "changes"
state_dir = "state"

[[source]]
name = "events"
connector = "csv"
[source.options]
path = "events.csv"
columns = { student_id = "utf8", day = "int32", open = "utf8", codes = "utf8", level = "utf8", score = "float64" }

[[rule]]
name = "ew"
input = "events"
module = %q
group_by = ["student_id"]
order_by = "day"

[[alerts]]
name = "changes"
input = "ew"
%s
[[sink]]
name = "out"
input = "changes"
connector = %q
`, wasm, alertsExtra, sink)
}

// failingSink refuses every batch.
type failingSink struct{}

func (failingSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "failing", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (failingSink) Validate(context.Context, protocol.Config) error { return nil }
func (s failingSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return s, nil
}
func (failingSink) Write(context.Context, arrow.RecordBatch) error { return errors.New("disk full") }
func (failingSink) Close(context.Context) error                    { return nil }
func (failingSink) Abort(context.Context) error                    { return nil }

// runAlerts writes events.csv in dir and runs the pipeline once, returning
// "id change student code level risk" per change row.
func runAlerts(t *testing.T, dir, toml, events string) ([]string, error) {
	t.Helper()
	rows, _, err := runAlertsDead(t, dir, toml, events)
	return rows, err
}

// runAlertsDead is runAlerts that also returns the rows the run
// dead-lettered.
func runAlertsDead(t *testing.T, dir, toml, events string) ([]string, int64, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "events.csv"), []byte("student_id,day,open,codes,level,score\n"+events), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	got := &textRows{}
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{
		Connectors: connectors{map[string]protocol.Connector{"text": got, "failing": failingSink{}}},
		Rules:      hosttest.NewRuntime(t), Mem: mem,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close(ctx)
	sum, err := plan.Run(ctx, pipeline.RunOptions{})
	if err != nil {
		return nil, 0, err
	}
	var rows []string
	for _, r := range got.rows {
		f := map[string]string{}
		for _, kv := range strings.Split(r, " ") {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		rows = append(rows, strings.Join([]string{f["alert_id"], f["change"], f["student_id"], f["code"], f["alert_level"], f["risk"]}, " "))
		if f["rule_name"] != "lastalerts" || f["rule_version"] != "0.2.0" || len(f["rule_sha256"]) != 64 {
			t.Errorf("row %q: no rule provenance", r)
		}
	}
	slices.Sort(rows)
	return rows, sum.DeadLettered(), nil
}

func TestAlertsStageDeadLettersUnreadableOpenAlerts(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "lastalerts"))
	dir := t.TempDir()
	got, dead, err := runAlertsDead(t, dir, alertsToml(wasm, "", "text"),
		"S1,2,a1:ABS:2025-01-02,ABS,alert,0.7\nS2,2,no colon here,ABS,alert,0.7\nS3,2,:ABS:2025-01-02,ABS,alert,0.7\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a1 opened S1 ABS alert 0.7"}; !slices.Equal(got, want) || dead != 2 {
		t.Errorf("got %q and %d dead letters, want %q and 2 (S2, S3)", got, dead, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", "changes.dead_letter.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `open alert ""no colon here"" is not id:CODE:opening day`) || !strings.Contains(string(b), `""student_id"":""S3""`) {
		t.Errorf("dead letters:\n%s", b)
	}
}

func TestAlertsStageAnnouncesChangesOnce(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "lastalerts"))
	dir := t.TempDir()
	toml := alertsToml(wasm, "", "text")
	first := "S1,1,,,ok,0.1\n" +
		"S1,2,a1:ABS:2025-01-02;a2:MARK:2025-01-02,ABS;MARK,alert,0.7\n" +
		"S2,1,,,ok,0.0\n" +
		"S3,5,b1:ABS:2025-01-05,ABS,alert,0.6\n"
	steps := []struct {
		name   string
		events string
		want   []string
	}{
		{"first run: every open alert is opened", first, []string{
			"a1 opened S1 ABS alert 0.7", "a2 opened S1 MARK alert 0.7", "b1 opened S3 ABS alert 0.6"}},
		{"identical rerun: nothing", first, nil},
		{"risk moves, reasons and level do not: nothing", strings.ReplaceAll(first, "0.6", "0.65"), nil},
		{"one closed, one changed level, one new", "S1,3,a1:ABS:2025-01-02,ABS,watch,0.4\n" +
			"S2,4,c1:PLATFORM:2025-01-04,PLATFORM,alert,0.5\n" +
			"S3,6,b1:ABS:2025-01-05,ABS,alert,0.66\n", []string{
			"a1 updated S1 ABS watch 0.4", "a2 cleared S1 MARK watch 0.4", "c1 opened S2 PLATFORM alert 0.5"}},
		{"a student absent from the input keeps its alerts; all cleared", "S1,9,,,ok,0.1\n", []string{
			"a1 cleared S1 ABS ok 0.1"}},
		{"rerun after clearing: nothing", "S1,9,,,ok,0.1\n", nil},
		{"S2 and S3 still announced: cleared when seen closed", "S2,9,,,ok,0.1\nS3,9,,,ok,0.2\n", []string{
			"b1 cleared S3 ABS ok 0.2", "c1 cleared S2 PLATFORM ok 0.1"}},
	}
	for _, s := range steps {
		got, err := runAlerts(t, dir, toml, s.events)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("%s:\n got %q\nwant %q", s.name, got, s.want)
		}
	}
}

func TestAlertsStageKeepsNothingWhenTheSinkFails(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "lastalerts"))
	dir := t.TempDir()
	events := "S1,2,a1:ABS:2025-01-02,ABS,alert,0.7\n"
	if _, err := runAlerts(t, dir, alertsToml(wasm, "", "failing"), events); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the sink's", err)
	}
	got, err := runAlerts(t, dir, alertsToml(wasm, "", "text"), events)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a1 opened S1 ABS alert 0.7"}; !slices.Equal(got, want) {
		t.Errorf("after a failed run: got %q, want %q (the failed run's announcement must not be kept)", got, want)
	}
}

func TestAlertsStageUpdateOn(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "lastalerts"))
	dir := t.TempDir()
	toml := alertsToml(wasm, `update_on = ["alert_level"]`, "text")
	if _, err := runAlerts(t, dir, toml, "S1,2,a1:ABS:2025-01-02,ABS,alert,0.7\n"); err != nil {
		t.Fatal(err)
	}
	got, err := runAlerts(t, dir, toml, "S1,3,a1:ABS:2025-01-02,ABS;MARK,alert,0.8\n")
	if err != nil || got != nil {
		t.Errorf("reason codes changed, update_on only alert_level: got %q, %v; want nothing", got, err)
	}
	got, err = runAlerts(t, dir, toml, "S1,4,a1:ABS:2025-01-02,ABS;MARK,watch,0.4\n")
	if want := []string{"a1 updated S1 ABS watch 0.4"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("level changed: got %q, %v; want %q", got, err, want)
	}
}

func TestAlertsStageConfigErrors(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "lastalerts"))
	tests := []struct {
		name, toml, want string
	}{
		{"unknown column", alertsToml(wasm, `open = "open_alertz"`, "text"),
			`pipeline.toml:23: alerts[0].open: column "open_alertz" is not in the output of "ew"`},
		{"unknown update_on column", alertsToml(wasm, `update_on = ["level"]`, "text"),
			`pipeline.toml:23: alerts[0].update_on: column "level" is not in the output of "ew"`},
		{"wrong type", alertsToml(wasm, `risk = "reason"`, "text"),
			`pipeline.toml:23: alerts[0].risk: column "reason" of "ew" has type utf8; expected float64 or float32`},
		{"input a source", strings.Replace(alertsToml(wasm, "", "text"), "input = \"ew\"", "input = \"events\"", 1),
			`pipeline.toml:22: alerts[0].input: stage "events" is a source: the input of an alerts stage must be a group rule`},
		{"no state_dir", strings.Replace(alertsToml(wasm, "", "text"), "state_dir = \"state\"\n", "", 1),
			`pipeline.toml:19: alerts[0]: an alerts stage keeps the alerts it announced between runs: it needs [pipeline] state_dir`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"events.csv": "student_id,day,open,codes,level,score\n"})
			cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(tc.toml))
			if err == nil {
				var plan *pipeline.Plan
				plan, err = pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{map[string]protocol.Connector{"text": &textRows{}}}, Rules: hosttest.NewRuntime(t)})
				if err == nil {
					plan.Close(context.Background())
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// perRowAlertEvents: students whose open alerts change over days, one
// row per event in day order, each student's rows spread over the file.
func perRowAlertEvents() string {
	var b strings.Builder
	states := []string{
		",,ok,0.1",
		"a#:ABS:2025-01-02,ABS,alert,0.7",
		"a#:ABS:2025-01-02;m#:MARK:2025-01-03,ABS;MARK,alert,0.8",
		"a#:ABS:2025-01-02,ABS,watch,0.4",
		",,ok,0.2",
		"b#:ABS:2025-01-09,ABS,alert,0.6",
	}
	for day := range 12 {
		for s := range 5 {
			if (day+s)%3 == 0 {
				continue
			}
			st := strings.ReplaceAll(states[(day+s)%len(states)], "#", fmt.Sprint(s))
			fmt.Fprintf(&b, "S%d,%d,%s\n", s, day, st)
		}
	}
	return b.String()
}

// runPerRowAlerts writes events.csv in dir and runs the alerts stage
// behind the lastalerts rule with emit = "per_row"; it returns "id change
// student day seq" per change, in output order.
func runPerRowAlerts(t *testing.T, dir, toml, events string) []string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "events.csv"), []byte("student_id,day,open,codes,level,score\n"+events), 0o644); err != nil {
		t.Fatal(err)
	}
	return runPerRowAlertsFile(t, dir, toml)
}

// TestAlertsStagePerRow: behind a group rule with emit = "per_row", the
// alerts stage announces each change at the row that caused it, with that
// row's event time and arrival sequence, the same whatever the batch
// cuts; a replay of the same rows (offset column, state kept) announces
// the same changes again from the versioned state, not nothing and not
// more; the alerts still open at the end are the ones a batch run
// (emit = "at_end") opens, with the same ids.
func TestAlertsStagePerRow(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "lastalerts"))
	events := perRowAlertEvents()
	perRow := func(batch int) string {
		toml := strings.Replace(alertsToml(wasm, "", "text"), "order_by = \"day\"\n", "order_by = \"day\"\nemit = \"per_row\"\n", 1)
		return strings.Replace(toml, "state_dir = \"state\"\n", fmt.Sprintf("state_dir = \"state\"\nbatch_rows = %d\n", batch), 1)
	}
	want := runPerRowAlerts(t, t.TempDir(), perRow(1000), events)
	if len(want) < 10 {
		t.Fatalf("only %d changes: %q", len(want), want)
	}
	for _, batch := range []int{1, 4} {
		if got := runPerRowAlerts(t, t.TempDir(), perRow(batch), events); !slices.Equal(got, want) {
			t.Errorf("batch_rows = %d:\n got %q\nwant %q", batch, got, want)
		}
	}
	// The changes follow each student's rows: opened at the row whose day
	// first lists the alert.
	if want[0] != "a1 opened S1 0 0" {
		t.Errorf("first change %q, want a1 opened by S1's row of day 0 (arrival 0)", want[0])
	}

	// A replay, with offsets: the same changes, from the stored versions.
	var withOffset strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(events), "\n") {
		fmt.Fprintf(&withOffset, "%s,%d\n", line, i)
	}
	dir := t.TempDir()
	toml := strings.Replace(perRow(16), "emit = \"per_row\"\n", "emit = \"per_row\"\nkeep_state = true\noffset_column = \"offset\"\n", 1)
	toml = strings.Replace(toml, "score = \"float64\" }", "score = \"float64\", offset = \"int64\" }", 1)
	replay := func() []string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "events.csv"), []byte("student_id,day,open,codes,level,score,offset\n"+withOffset.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return runPerRowAlertsFile(t, dir, toml)
	}
	first := replay()
	if !slices.Equal(first, want) {
		t.Fatalf("with offsets:\n got %q\nwant %q", first, want)
	}
	if again := replay(); !slices.Equal(again, want) {
		t.Errorf("replay:\n got %q\nwant %q", again, want)
	}

	// Batch mode: one row per student at the end; its opened ids are the
	// stream's alerts still open at the end.
	open := map[string]bool{}
	for _, c := range want {
		f := strings.Fields(c)
		open[f[0]] = f[1] != "cleared"
	}
	var stillOpen []string
	for id, o := range open {
		if o {
			stillOpen = append(stillOpen, id)
		}
	}
	slices.Sort(stillOpen)
	batch, err := runAlerts(t, t.TempDir(), alertsToml(wasm, "", "text"), events)
	if err != nil {
		t.Fatal(err)
	}
	var batchIDs []string
	for _, r := range batch {
		batchIDs = append(batchIDs, strings.Fields(r)[0])
	}
	slices.Sort(batchIDs)
	if len(stillOpen) == 0 || !slices.Equal(batchIDs, stillOpen) {
		t.Errorf("batch run opens %q; the per-row run leaves %q open", batchIDs, stillOpen)
	}
}

// runPerRowAlertsFile is runPerRowAlerts on the events.csv already in dir.
func runPerRowAlertsFile(t *testing.T, dir, toml string) []string {
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
		t.Fatal(err)
	}
	defer plan.Close(ctx)
	if _, err := plan.Run(ctx, pipeline.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range got.rows {
		f := map[string]string{}
		for _, kv := range strings.Split(r, " ") {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		rows = append(rows, strings.Join([]string{f["alert_id"], f["change"], f["student_id"], f["event_time"], f["arrival_seq"]}, " "))
	}
	return rows
}
