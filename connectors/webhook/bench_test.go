package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/webhook"
)

// BenchmarkDeliveries measures signed deliveries per second to a local
// receiver (httptest on loopback, reading each body and answering 204
// without verifying, so that the figure is the sink's): one change per
// b.N, written in batches of 1000, the time including the outbox (a
// record per message, an fsync at Close) and Close waiting for the last
// acknowledgement.
//
//	go test ./connectors/webhook -run '^$' -bench Deliveries -benchtime 20000x
func BenchmarkDeliveries(b *testing.B) {
	for _, bc := range []struct {
		name        string
		concurrency int64
		batch       int64
	}{
		{"concurrency=1", 1, 1},
		{"concurrency=4", 4, 1},
		{"concurrency=16", 16, 1},
		{"concurrency=4/batch=100", 4, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				requests.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			opts := map[string]any{
				"url":         srv.URL,
				"secret_env":  "VIGIE_BENCH_WEBHOOK_SECRET",
				"outbox":      b.TempDir(),
				"concurrency": bc.concurrency,
				"batch":       bc.batch,
			}
			b.Setenv("VIGIE_BENCH_WEBHOOK_SECRET", secretNew+" "+secretOld)
			mem := memory.NewGoAllocator()
			ctx := context.Background()
			b.ResetTimer()
			w, err := webhook.Sink{}.Open(ctx, protocol.Config{Pipeline: "bench", Stage: "hook", Options: opts}, mem, changesSchema)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i += 1000 {
				rec := changes(b, mem, i, min(1000, b.N-i))
				if err := w.Write(ctx, rec); err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
			if err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			want := (int64(b.N) + bc.batch - 1) / bc.batch
			if got := requests.Load(); got < want {
				b.Fatalf("%d requests, want %d", got, want)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
			b.ReportMetric(float64(requests.Load())/b.Elapsed().Seconds(), "requests/s")
		})
	}
}
