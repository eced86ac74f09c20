package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/rules/host/hosttest"
)

// connectors serves the built-ins in-process, plus test connectors.
type connectors struct{ extra map[string]protocol.Connector }

func (c connectors) Connector(ctx context.Context, name string) (protocol.Connector, error) {
	if x, ok := c.extra[name]; ok {
		return x, nil
	}
	return builtin.Registry().Get(name)
}

// blockingSink takes one batch, then blocks until its context ends.
type blockingSink struct{ got chan struct{} }

func (s *blockingSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "blocking", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (s *blockingSink) Validate(context.Context, protocol.Config) error { return nil }
func (s *blockingSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return s, nil
}
func (s *blockingSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	select {
	case s.got <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}
func (s *blockingSink) Close(context.Context) error { return nil }
func (s *blockingSink) Abort(context.Context) error { return nil }

// setup writes a CSV of n attendance rows and a pipeline using it.
func setup(t *testing.T, n int, rule, sink string) *config.Pipeline {
	t.Helper()
	return setupX(t, n, rule, sink, func(i int) int { return i % 5 })
}

// setupX is setup with column x computed by x.
func setupX(t *testing.T, n int, rule, sink string, x func(i int) int) *config.Pipeline {
	t.Helper()
	var b strings.Builder
	b.WriteString("student_id,half_days,absent_half_days,x\n")
	for i := range n {
		fmt.Fprintf(&b, "S%05d,40,%d,%d\n", i, i%12, x(i))
	}
	return pipelineIn(t, "att.csv", b.String(), fmt.Sprintf(`
[pipeline]
name = "t"
batch_rows = 1000

[[source]]
name = "att"
connector = "csv"
[source.options]
path = "att.csv"
columns = { half_days = "int32", absent_half_days = "int32", x = "int32" }

%s

[[sink]]
name = "out"
input = "r"
%s
`, rule, sink))
}

// pipelineIn writes data as the file name in a fresh directory and parses
// toml as that directory's pipeline.toml.
func pipelineIn(t *testing.T, name, data, toml string) *config.Pipeline {
	t.Helper()
	dir := writeFiles(t, map[string]string{name: data})
	cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func absenceRule(t *testing.T) string {
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "absence"))
	return fmt.Sprintf("[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = %q\n", wasm)
}

// negative makes every row poison for the fail.wasm test rule, which fails
// a batch whose first x is negative.
func negative(i int) int { return -1 - i%5 }

func failRule(policy string) string {
	abs, _ := filepath.Abs(filepath.Join("..", "..", "rules", "host", "testdata", "fail.wasm"))
	return fmt.Sprintf("[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = %q\non_error = %q\n", abs, policy)
}

const parquetSink = "connector = \"parquet\"\n[sink.options]\npath = \"out/r.parquet\"\n"

func prepare(t *testing.T, cfg *config.Pipeline, mem memory.Allocator, extra map[string]protocol.Connector) *pipeline.Plan {
	t.Helper()
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: connectors{extra}, Rules: hosttest.NewRuntime(t), Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestRunCountsAndNoLeak(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := setup(t, 2500, absenceRule(t), parquetSink)
	plan := prepare(t, cfg, mem, nil)
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"att", "r", "out"} {
		st, _ := sum.Stage(name)
		if st.RowsOut != 2500 {
			t.Errorf("stage %s: %+v, want 2500 rows out", name, st)
		}
	}
	if st, _ := sum.Stage("r"); st.Batches != 3 {
		t.Errorf("rule emitted %d batches, want 3 (batch_rows 1000)", st.Batches)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "out", "r.parquet")); err != nil {
		t.Error(err)
	}
}

func TestRuleErrorDeadLettersTheBatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := setupX(t, 1500, failRule("dead_letter")+"dead_letter_max_share = 1.0\n", parquetSink, negative)
	plan := prepare(t, cfg, mem, nil)
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.DeadLettered() != 1500 {
		t.Fatalf("dead-lettered %d rows, want all 1500: %s", sum.DeadLettered(), sum.Line())
	}
	b, err := os.ReadFile(cfg.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1501 {
		t.Fatalf("dead letter file has %d lines", len(lines))
	}
	for _, want := range []string{"r,rule hostile 0.0.1 (sha256 ", "bad batch: x is negative", `""student_id"":""S00000""`} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("dead letter %q lacks %q", lines[1], want)
		}
	}
}

func TestRuleErrorFailsTheRun(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := setupX(t, 1500, failRule("fail"), parquetSink, negative)
	plan := prepare(t, cfg, mem, nil)
	defer plan.Close(context.Background())
	_, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `stage "r": rule hostile:`) || !strings.Contains(err.Error(), "bad batch: x is negative") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "out", "r.parquet")); !os.IsNotExist(err) {
		t.Errorf("a failed run left an output file (stat: %v)", err)
	}
}

func TestCancelMidRunReleasesEverything(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sink := &blockingSink{got: make(chan struct{}, 1)}
	cfg := setup(t, 20000, absenceRule(t), "connector = \"blocking\"\n")
	plan := prepare(t, cfg, mem, map[string]protocol.Connector{"blocking": sink})
	defer plan.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sink.got // a batch reached the sink: the run is mid-way
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := plan.Run(ctx, pipeline.RunOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestBisectionDeadLettersOnlyPoisonRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "poison"))
	// One row in five is poison: the threshold is off for this test.
	rule := fmt.Sprintf("[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = %q\nworkers = 3\ndead_letter_max_share = 1.0\n", wasm)
	got := &collectSink{}
	cfg := setup(t, 2000, rule, "connector = \"collect\"\n")
	plan := prepare(t, cfg, mem, map[string]protocol.Connector{"collect": got})
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// x = i % 5: every fifth row is poison.
	if sum.DeadLettered() != 400 {
		t.Errorf("dead-lettered %d rows, want 400: %s", sum.DeadLettered(), sum.Line())
	}
	want := []string{}
	for i := range 2000 {
		if i%5 != 4 {
			want = append(want, fmt.Sprintf("S%05d:%d", i, i%5))
		}
	}
	if strings.Join(got.rows, " ") != strings.Join(want, " ") {
		t.Errorf("good rows lost, duplicated or out of order: got %d rows, want %d", len(got.rows), len(want))
	}
	b, err := os.ReadFile(cfg.DeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "x is 4 at row 0") || !strings.Contains(string(b), `""student_id"":""S00004""`) {
		t.Errorf("dead letters lack the error or the row:\n%.500s", b)
	}
}

// collectSink keeps "student_id:y" of every row it is given, in order.
type collectSink struct{ rows []string }

func (s *collectSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "collect", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (s *collectSink) Validate(context.Context, protocol.Config) error { return nil }
func (s *collectSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return s, nil
}
func (s *collectSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	ids := rec.Column(rec.Schema().FieldIndices("student_id")[0]).(*array.String)
	ys := rec.Column(rec.Schema().FieldIndices("y")[0]).(*array.Int32)
	for i := range ids.Len() {
		s.rows = append(s.rows, fmt.Sprintf("%s:%d", ids.Value(i), ys.Value(i)))
	}
	return nil
}
func (s *collectSink) Close(context.Context) error { return nil }
func (s *collectSink) Abort(context.Context) error { return nil }

// hostileRule is a rule stage running a module of rules/host/testdata with
// the given extra keys.
func hostileRule(name, extra string) string {
	abs, _ := filepath.Abs(filepath.Join("..", "..", "rules", "host", "testdata", name+".wasm"))
	return fmt.Sprintf("[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = %q\nworkers = 1\n%s\n", abs, extra)
}

func TestRuleLimitsFromPipelineFile(t *testing.T) {
	for _, tc := range []struct {
		module, limits, want string
	}{
		{"loop", "[rule.limits]\ntimeout = \"100ms\"", "time limit of 100ms per call"},
		{"memory_bomb", "[rule.limits]\nmemory_pages = 64", "memory limit"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			// Rows 0-3 are poison (x < 0), the rest behave: the engine must
			// stop each poison evaluation at the limit. Row 0 alone goes
			// past the limit: the rule is then treated as broken on the
			// batch and the rest of it is dead-lettered without more calls.
			cfg := setupX(t, 10, hostileRule(tc.module, "dead_letter_max_share = 1.0\n"+tc.limits), parquetSink, func(i int) int {
				if i < 4 {
					return -1
				}
				return i
			})
			plan := prepare(t, cfg, mem, nil)
			defer plan.Close(context.Background())
			done := make(chan struct{})
			var sum *stream.Summary
			var err error
			go func() {
				defer close(done)
				sum, err = plan.Run(context.Background(), pipeline.RunOptions{})
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("a rule past its limit hung the run")
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.DeadLettered() != 10 {
				t.Errorf("dead-lettered %d rows, want all 10: %s", sum.DeadLettered(), sum.Line())
			}
			if st, _ := sum.Stage("out"); st.RowsOut != 0 {
				t.Errorf("sink wrote %d rows, want 0", st.RowsOut)
			}
			b, rerr := os.ReadFile(cfg.DeadLetter)
			if rerr != nil || !strings.Contains(string(b), tc.want) || strings.Count(string(b), "treated as broken") != 9 {
				t.Errorf("dead letters lack %q, or 9 rows not evaluated: %v\n%.1000s", tc.want, rerr, b)
			}
		})
	}
}

// meetingConnectors hands out the built-ins, but each call waits until
// every expected call has started (or fails after a while): it only
// succeeds when Prepare asks for the connectors side by side.
type meetingConnectors struct {
	arrived chan struct{}
	want    int
}

func (c meetingConnectors) Connector(ctx context.Context, name string) (protocol.Connector, error) {
	c.arrived <- struct{}{}
	deadline := time.After(5 * time.Second)
	for len(c.arrived) < c.want {
		select {
		case <-deadline:
			return nil, fmt.Errorf("connector %q asked for alone: %d of %d calls started", name, len(c.arrived), c.want)
		case <-time.After(time.Millisecond):
		}
	}
	return builtin.Registry().Get(name)
}

// TestPrepareStartsConnectorsTogether checks that Prepare asks for the
// source's and the sink's connectors at once (plugin processes then start
// side by side), and that their errors still point at their stages.
func TestPrepareStartsConnectorsTogether(t *testing.T) {
	ctx := context.Background()
	cfg := setup(t, 10, "[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = \"none.wasm\"\n", parquetSink)
	_, err := pipeline.Prepare(ctx, cfg, pipeline.Env{
		Connectors: meetingConnectors{arrived: make(chan struct{}, 2), want: 2},
		Rules:      hosttest.NewRuntime(t),
	})
	// The rule's module does not exist: that is the only error expected.
	if err == nil || !strings.Contains(err.Error(), "rule[0].module") || strings.Contains(err.Error(), "asked for alone") {
		t.Fatalf("got %v, want only the rule's module error", err)
	}
}
