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
