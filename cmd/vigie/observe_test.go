package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
	"github.com/vigie-edu/vigie/metrics"
)

// earlyWarning copies the default pipeline, its data and its rule into a
// temporary folder and returns the path of its pipeline.toml.
func earlyWarning(t *testing.T) string {
	t.Helper()
	root := filepath.Join("..", "..")
	dir := t.TempDir()
	for _, f := range []string{"pipeline.toml", "examples/data/students.csv", "examples/data/absences.csv",
		"examples/data/grades.csv", "examples/data/activity.csv"} {
		copyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
	}
	wasm := hosttest.BuildGoRule(t, filepath.Join(root, "examples", "rules", "early_warning"))
	copyFile(t, wasm, filepath.Join(dir, "examples", "rules", "early_warning", "early_warning.wasm"))
	return filepath.Join(dir, "pipeline.toml")
}

// TestRunListenMetrics runs the default pipeline with --listen, scrapes
// /metrics with the Prometheus text parser once the run is over (before
// the listener closes) and checks every stage's counts against the
// summary the run printed.
func TestRunListenMetrics(t *testing.T) {
	file := earlyWarning(t)
	var fams map[string]*dto.MetricFamily
	var ready int
	afterRunHook = func(addr string) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		if fams, err = p.TextToMetricFamilies(resp.Body); err != nil {
			t.Error(err)
		}
		r, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			ready = r.StatusCode
			r.Body.Close()
		}
	}
	defer func() { afterRunHook = nil }()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--in-process", "--progress", "none", "--listen", "127.0.0.1:0", file}, &stdout, &stderr); code != exitOK {
		t.Fatalf("run exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	if fams == nil {
		t.Fatal("metrics were not scraped")
	}
	if ready != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the run = %d, want 503", ready)
	}
	series := func(name, stage string) float64 {
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("no %s{stage=%q}", name, stage)
		return 0
	}
	row := regexp.MustCompile(`^\s*(\S+)\s+(source|rule|sink|join|union|alerts)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)
	stages := 0
	for _, line := range strings.Split(stdout.String(), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		stages++
		for i, name := range []string{"vigie_stage_rows_in_total", "vigie_stage_rows_out_total", "vigie_stage_dead_letters_total", "vigie_stage_batches_total"} {
			want, _ := strconv.ParseFloat(m[3+i], 64)
			if got := series(name, m[1]); got != want {
				t.Errorf("%s{stage=%q} = %v, the summary says %v", name, m[1], got, want)
			}
		}
	}
	if stages != 9 {
		t.Errorf("%d stages in the summary, want 9:\n%s", stages, stdout.String())
	}
	if series("vigie_stage_rows_out_total", "students") != 600 {
		t.Errorf("students rows out = %v, want 600", series("vigie_stage_rows_out_total", "students"))
	}
}

func TestRunListenRefusesRemote(t *testing.T) {
	file := earlyWarning(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"run", "--in-process", "--progress", "none", "--listen", "0.0.0.0:0", file}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "not a loopback address") {
		t.Errorf("run --listen 0.0.0.0:0 exited %d:\n%s", code, stderr.String())
	}
}

func TestMultiObserverCheckpointed(t *testing.T) {
	m := metrics.New("p")
	var obs stream.Observer = multiObserver{m, metrics.NewProgress(metrics.ProgressOptions{})}
	c, ok := obs.(metrics.Checkpointer)
	if !ok {
		t.Fatal("the run's observer does not take checkpoints")
	}
	c.Checkpointed(time.Now().Add(-2 * time.Minute))
	srv := httptest.NewServer(m.Handler(""))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := fams["vigie_checkpoint_age_seconds"]
	if f == nil || f.GetMetric()[0].GetGauge().GetValue() < 120 {
		t.Errorf("checkpoint age: %v", f)
	}
}
