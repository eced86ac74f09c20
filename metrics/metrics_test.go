package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/metrics"
)

// batch returns a batch of n int64 rows.
func batch(mem memory.Allocator, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil))
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
	}
	return b.NewRecordBatch()
}

// scrape reads url with the Prometheus text parser.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// value returns the value of the family's series with the given labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestScrapeDuringAndAfterRun runs a graph source → rule → sink with a
// Run observing it, scrapes /metrics while the source is held after its
// first batches, then after the run, and checks every stage's numbers
// against the run summary.
func TestScrapeDuringAndAfterRun(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	m := metrics.New("test")
	srv := httptest.NewServer(m.Handler(""))
	defer srv.Close()

	hold, resume := make(chan struct{}), make(chan struct{})
	g := stream.NewGraph("test")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.AddSource("src", stream.SourceFunc(func(ctx context.Context, st *stream.Stage, out *stream.Outbox) error {
		for i := range 5 {
			if i == 3 {
				close(hold)
				<-resume
			}
			if err := out.Send(ctx, batch(mem, 10+i)); err != nil {
				return err
			}
		}
		return st.DeadLetter(stream.DeadLetter{Reason: "bad"}, stream.DeadLetter{Reason: "worse"})
	})))
	// The rule keeps every other batch.
	must(g.AddTransform("keep", "src", stream.TransformFunc(func(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
		for i := 0; ; i++ {
			rec, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if i%2 == 1 {
				rec.Release()
				continue
			}
			if err := out.Send(ctx, rec); err != nil {
				return err
			}
		}
	})))
	must(g.AddSink("snk", "keep", stream.SinkFunc(func(ctx context.Context, st *stream.Stage, in *stream.Inbox) error {
		var n int64
		for {
			rec, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				st.Stats.RowsOut.Add(n)
				return nil
			}
			if err != nil {
				return err
			}
			n += rec.NumRows()
			rec.Release()
		}
	})))

	m.SetReady(true)
	done := make(chan *stream.Summary)
	go func() {
		sum, err := g.Run(context.Background(), stream.RunOptions{Observer: m, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Error(err)
		}
		done <- sum
	}()

	<-hold
	during := scrape(t, srv.URL+"/metrics", "")
	if got := value(t, during, "vigie_stage_rows_out_total", map[string]string{"stage": "src"}); got != 10+11+12 {
		t.Errorf("during the run: src rows out = %v, want 33 (three batches sent)", got)
	}
	if got := value(t, during, "vigie_stage_batches_total", map[string]string{"stage": "src"}); got != 3 {
		t.Errorf("during the run: src batches = %v, want 3", got)
	}
	if got := value(t, during, "vigie_run_ready", nil); got != 1 {
		t.Errorf("vigie_run_ready = %v during the run, want 1", got)
	}
	close(resume)
	sum := <-done

	after := scrape(t, srv.URL+"/metrics", "")
	for _, st := range sum.Stages {
		l := map[string]string{"stage": st.Name, "kind": string(st.Kind), "pipeline": "test"}
		for name, want := range map[string]int64{
			"vigie_stage_rows_in_total":      st.RowsIn,
			"vigie_stage_rows_out_total":     st.RowsOut,
			"vigie_stage_dead_letters_total": st.DeadLettered,
			"vigie_stage_batches_total":      st.Batches,
		} {
			if got := value(t, after, name, l); got != float64(want) {
				t.Errorf("%s{stage=%q} = %v, summary says %d", name, st.Name, got, want)
			}
		}
	}
	// The summary itself, so that the comparison above compares something.
	if src, _ := sum.Stage("src"); src.RowsOut != 10+11+12+13+14 || src.DeadLettered != 2 {
		t.Errorf("summary: src = %+v", src)
	}
	if snk, _ := sum.Stage("snk"); snk.RowsIn != 10+12+14 {
		t.Errorf("summary: snk = %+v", snk)
	}
	// Bytes: what the rule sent is what the sink received, at least 8
	// bytes per int64 row.
	in := value(t, after, "vigie_stage_bytes_total", map[string]string{"stage": "snk", "direction": "in"})
	out := value(t, after, "vigie_stage_bytes_total", map[string]string{"stage": "keep", "direction": "out"})
	if in != out || in < 8*(10+12+14) {
		t.Errorf("bytes: keep sent %v, snk received %v, want equal and at least %d", out, in, 8*(10+12+14))
	}
	// One busy sample per batch the sink and the rule received; the
	// source's four gaps between five sends.
	for stage, want := range map[string]float64{"snk": 3, "keep": 5, "src": 4} {
		if got := value(t, after, "vigie_stage_batch_seconds", map[string]string{"stage": stage}); got != want {
			t.Errorf("batch_seconds{stage=%s} has %v samples, want %v", stage, got, want)
		}
	}
	if _, ok := after["vigie_checkpoint_age_seconds"]; ok {
		t.Error("checkpoint age exposed by a run that never checkpointed")
	}
	m.Checkpointed(time.Now().Add(-time.Minute))
	if age := value(t, scrape(t, srv.URL+"/metrics", ""), "vigie_checkpoint_age_seconds", nil); age < 60 || age > 3600 {
		t.Errorf("checkpoint age = %vs, want about 60", age)
	}
}

func TestRestartsAndHealth(t *testing.T) {
	m := metrics.New("p")
	m.WatchRestarts(func() map[string]int { return map[string]int{"csv": 2} })
	srv := httptest.NewServer(m.Handler("s3cret"))
	defer srv.Close()

	status := func(path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"metrics without token", "/metrics", "", http.StatusUnauthorized},
		{"metrics with a wrong token", "/metrics", "Bearer nope", http.StatusUnauthorized},
		{"metrics with the token", "/metrics", "Bearer s3cret", http.StatusOK},
		{"healthz needs no token", "/healthz", "", http.StatusOK},
		{"readyz before the run", "/readyz", "", http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(tc.path, tc.auth); got != tc.want {
				t.Errorf("GET %s = %d, want %d", tc.path, got, tc.want)
			}
		})
	}
	m.SetReady(true)
	if got := status("/readyz", ""); got != http.StatusOK {
		t.Errorf("readyz once ready = %d", got)
	}
	if got := value(t, scrape(t, srv.URL+"/metrics", "s3cret"), "vigie_plugin_restarts_total", map[string]string{"connector": "csv"}); got != 2 {
		t.Errorf("restarts = %v, want 2", got)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:9464", false, true},
		{"[::1]:9464", false, true},
		{"localhost:9464", false, true},
		{"127.0.0.2:0", false, true},
		{"0.0.0.0:9464", false, false},
		{":9464", false, false},
		{"10.1.2.3:9464", false, false},
		{"example.org:9464", false, false},
		{"0.0.0.0:9464", true, true},
		{"nonsense", true, false},
	} {
		err := metrics.CheckAddr(tc.addr, tc.remote)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, %v) = %v, want ok=%v", tc.addr, tc.remote, err, tc.ok)
		}
		if !tc.ok && !tc.remote && err != nil && !errors.Is(err, metrics.ErrNotLoopback) {
			t.Errorf("CheckAddr(%q): %v is not ErrNotLoopback", tc.addr, err)
		}
	}
	if _, err := metrics.Serve("0.0.0.0:0", false, http.NotFoundHandler(), slog.New(slog.DiscardHandler)); !errors.Is(err, metrics.ErrNotLoopback) {
		t.Errorf("Serve on 0.0.0.0 without allowRemote: %v", err)
	}
	s, err := metrics.Serve("127.0.0.1:0", false, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Errorf("Addr = %s", s.Addr())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Error(err)
	}
}
