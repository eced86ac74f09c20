// Package metrics exposes a running pipeline to Prometheus and to health
// checks: per stage rows in and out, dead letters, batches, bytes and the
// time spent per batch, plugin restarts and the age of the last checkpoint,
// plus /healthz and /readyz.
//
// A Run is a stream.Observer: give it to pipeline.RunOptions.Observer, and
// serve its Handler (Serve does both the listening checks and the server).
// The counts of rows, dead letters and batches are read at scrape time from
// the stages' own counters (stream.Stats), the ones the run summary prints,
// so a scrape after the run shows exactly the summary's numbers.
package metrics

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigie-edu/vigie/engine/stream"
)

// Namespace prefixes every metric name.
const Namespace = "vigie"

// BusyBuckets are the buckets, in seconds, of the per-batch time histogram:
// from 100µs (a map rule on a small batch) to about 30s (a sink flushing a
// large Parquet row group).
var BusyBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

// Run collects the metrics of one pipeline run. Create it with New; it is
// safe for concurrent use.
type Run struct {
	pipeline string
	reg      *prometheus.Registry

	mu     sync.Mutex
	stages []*stream.Stage

	bytes *prometheus.CounterVec
	busy  *prometheus.HistogramVec

	ready      atomic.Bool
	checkpoint atomic.Int64 // unix nanoseconds of the last checkpoint, 0: none
	restarts   func() map[string]int
}

var _ stream.Observer = (*Run)(nil)

// New returns the metrics of a run of the named pipeline, in a registry of
// their own (with the Go runtime and process collectors).
func New(pipeline string) *Run {
	r := &Run{pipeline: pipeline, reg: prometheus.NewRegistry()}
	labels := prometheus.Labels{"pipeline": pipeline}
	r.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "stage_bytes_total", ConstLabels: labels,
		Help: "Bytes of Arrow data a stage received (direction=in) or sent (direction=out).",
	}, []string{"stage", "kind", "direction"})
	r.busy = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "stage_batch_seconds", ConstLabels: labels, Buckets: BusyBuckets,
		Help: "Time a stage spent on one batch: from receiving it to asking for the next (for a source: reading it).",
	}, []string{"stage", "kind"})
	r.reg.MustRegister(r.bytes, r.busy, (*stageCollector)(r),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Registry is where the run's metrics are registered; callers may add
// their own (a connector's lag, say).
func (r *Run) Registry() *prometheus.Registry { return r.reg }

// Started implements stream.Observer.
func (r *Run) Started(st *stream.Stage) {
	r.mu.Lock()
	r.stages = append(r.stages, st)
	r.mu.Unlock()
}

// Batch implements stream.Observer.
func (r *Run) Batch(st *stream.Stage, in bool, bytes int64) {
	dir := "out"
	if in {
		dir = "in"
	}
	r.bytes.WithLabelValues(st.Name, string(st.Kind), dir).Add(float64(bytes))
}

// Busy implements stream.Observer.
func (r *Run) Busy(st *stream.Stage, d time.Duration) {
	r.busy.WithLabelValues(st.Name, string(st.Kind)).Observe(d.Seconds())
}

// SetReady says whether the run is ready (prepared and moving data):
// /readyz answers 200 while it is, 503 otherwise.
func (r *Run) SetReady(ready bool) { r.ready.Store(ready) }

// Checkpointer is implemented by observers that track checkpoints
// (Run, console.Watch). It is the seam for the engine's checkpoints: once
// a checkpoint is complete, the engine calls Checkpointed on its
// pipeline.RunOptions.Observer when that Observer implements Checkpointer.
type Checkpointer interface {
	Checkpointed(t time.Time)
}

var _ Checkpointer = (*Run)(nil)

// Checkpointed records that the engine completed a checkpoint at t; the
// gauge vigie_checkpoint_age_seconds then tells how long ago that was. A
// run that never checkpoints exposes no such gauge.
func (r *Run) Checkpointed(t time.Time) { r.checkpoint.Store(t.UnixNano()) }

// WatchRestarts makes vigie_plugin_restarts_total report what restarts
// returns (pluginhost.Host.Restarts: restarts by connector name). Call it
// before serving.
func (r *Run) WatchRestarts(restarts func() map[string]int) { r.restarts = restarts }

// Handler serves /metrics (Prometheus text or OpenMetrics), /healthz (200
// while the process serves) and /readyz (see SetReady). With a token,
// /metrics answers 401 to a request without "Authorization: Bearer TOKEN";
// the health checks stay open (they tell nothing about the data).
func (r *Run) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	if token != "" {
		metrics = requireBearer(token, metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !r.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// stageCollector reports the stages' own counters at scrape time.
type stageCollector Run

var (
	descRowsIn = prometheus.NewDesc(Namespace+"_stage_rows_in_total",
		"Rows a stage received from its inputs.", []string{"pipeline", "stage", "kind"}, nil)
	descRowsOut = prometheus.NewDesc(Namespace+"_stage_rows_out_total",
		"Rows a stage sent downstream (a sink: rows written, counted when it commits).", []string{"pipeline", "stage", "kind"}, nil)
	descDead = prometheus.NewDesc(Namespace+"_stage_dead_letters_total",
		"Rows a stage dead-lettered.", []string{"pipeline", "stage", "kind"}, nil)
	descBatches = prometheus.NewDesc(Namespace+"_stage_batches_total",
		"Batches a stage sent downstream.", []string{"pipeline", "stage", "kind"}, nil)
	descRestarts = prometheus.NewDesc(Namespace+"_plugin_restarts_total",
		"Times a connector's plugin process was restarted after dying.", []string{"pipeline", "connector"}, nil)
	descCheckpoint = prometheus.NewDesc(Namespace+"_checkpoint_age_seconds",
		"Seconds since the run's last completed checkpoint.", []string{"pipeline"}, nil)
	descReady = prometheus.NewDesc(Namespace+"_run_ready",
		"1 while the run is prepared and moving data, 0 otherwise.", []string{"pipeline"}, nil)
)

func (c *stageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRowsIn, descRowsOut, descDead, descBatches, descRestarts, descCheckpoint, descReady} {
		ch <- d
	}
}

func (c *stageCollector) Collect(ch chan<- prometheus.Metric) {
	r := (*Run)(c)
	r.mu.Lock()
	stages := append([]*stream.Stage(nil), r.stages...)
	r.mu.Unlock()
	for _, st := range stages {
		l := []string{r.pipeline, st.Name, string(st.Kind)}
		ch <- prometheus.MustNewConstMetric(descRowsIn, prometheus.CounterValue, float64(st.Stats.RowsIn.Load()), l...)
		ch <- prometheus.MustNewConstMetric(descRowsOut, prometheus.CounterValue, float64(st.Stats.RowsOut.Load()), l...)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(st.Stats.DeadLettered.Load()), l...)
		ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(st.Stats.BatchesOut.Load()), l...)
	}
	if r.restarts != nil {
		restarts := maps.Clone(r.restarts())
		for name, n := range restarts {
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(n), r.pipeline, name)
		}
	}
	if at := r.checkpoint.Load(); at != 0 {
		ch <- prometheus.MustNewConstMetric(descCheckpoint, prometheus.GaugeValue, time.Since(time.Unix(0, at)).Seconds(), r.pipeline)
	}
	ready := 0.0
	if r.ready.Load() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready, r.pipeline)
}
