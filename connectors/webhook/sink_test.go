package webhook_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/webhook"
)

// Test secrets: "whsec_" and the base64 of 32 bytes.
var (
	secretNew = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	secretOld = "whsec_" + base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
)

// changesSchema is the shape of an alerts stage's output (the columns the
// sink knows by name).
var changesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "alert_id", Type: arrow.BinaryTypes.String},
	{Name: "change", Type: arrow.BinaryTypes.String},
	{Name: "student_id", Type: arrow.BinaryTypes.String},
	{Name: "code", Type: arrow.BinaryTypes.String},
	{Name: "reason_codes", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "reason", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "risk", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "alert_level", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// changes returns n alert changes, alert ids from first on.
func changes(t testing.TB, mem memory.Allocator, first, n int) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, changesSchema)
	defer b.Release()
	for i := first; i < first+n; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("A%05d", i))
		b.Field(1).(*array.StringBuilder).Append([]string{"opened", "updated", "cleared"}[i%3])
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("S%04d", i/2))
		b.Field(3).(*array.StringBuilder).Append("ABS")
		b.Field(4).(*array.StringBuilder).Append("ABS;GRD")
		b.Field(5).(*array.StringBuilder).Append("absences up, grades down")
		b.Field(6).(*array.Float64Builder).Append(0.5 + float64(i%50)/100)
		b.Field(7).(*array.StringBuilder).Append("high")
	}
	return b.NewRecordBatch()
}

// options returns the sink options for url, with a test schedule (no
// jitter, delays of milliseconds) and the secret in an environment
// variable; extra overrides.
func options(t *testing.T, url string, extra map[string]any) map[string]any {
	t.Helper()
	env := "VIGIE_TEST_WEBHOOK_SECRET"
	t.Setenv(env, secretNew+" "+secretOld)
	o := map[string]any{
		"url":            url,
		"secret_env":     env,
		"outbox":         filepath.Join(t.TempDir(), "outbox"),
		"retry_schedule": []any{"0s", "10ms", "20ms", "40ms", "80ms"},
		"jitter":         0.0,
		"timeout":        "2s",
		"drain_timeout":  "20s",
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

// run opens the sink, writes the batches and closes it; it returns the
// rows the writer says it dead-lettered.
func run(t *testing.T, opts map[string]any, recs ...arrow.RecordBatch) int64 {
	t.Helper()
	ctx := context.Background()
	w, err := webhook.Sink{Log: testLog(t)}.Open(ctx, protocol.Config{Pipeline: "p", Stage: "hook", Options: opts}, memory.DefaultAllocator, changesSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return w.(protocol.DeadLetterCounter).DeadLettered()
}

// testLog returns a logger writing to the test's log.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// deadLetters reads the outbox's dead letters.
func deadLetters(t *testing.T, outbox string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(outbox, "dead_letters.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestDeliversSignedChanges(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// The receiver knows only the old secret: during a rotation the sink
	// signs with both.
	rc := newReceiver(t, []string{secretOld}, nil)
	opts := options(t, rc.url(), nil)
	run(t, opts, changes(t, mem, 0, 30))
	got := rc.check()
	if len(got) != 30 {
		t.Fatalf("%d changes acknowledged, want 30", len(got))
	}
	seen := map[string]bool{}
	for id, body := range got {
		if !strings.HasPrefix(id, "msg_") {
			t.Errorf("id %q does not start with msg_", id)
		}
		var ev struct {
			Type      string         `json:"type"`
			Timestamp string         `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatal(err)
		}
		if want := "alert." + ev.Data["change"].(string); ev.Type != want {
			t.Errorf("type %q, want %q", ev.Type, want)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", ev.Timestamp, err)
		}
		if len(ev.Data) != len(changesSchema.Fields()) || ev.Data["reason"] != "absences up, grades down" {
			t.Errorf("data %v: want every column", ev.Data)
		}
		seen[ev.Data["alert_id"].(string)] = true
	}
	if len(seen) != 30 {
		t.Errorf("%d distinct alerts, want 30", len(seen))
	}
	if dl := deadLetters(t, opts["outbox"].(string)); len(dl) != 0 {
		t.Errorf("dead letters: %v", dl)
	}
}

// TestReceiverRejectsWrongSecret shows the receiver's verification can
// fail: a sink signing with a secret the receiver does not know is
// refused (401) on every attempt and ends in the dead letters.
func TestReceiverRejectsWrongSecret(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key of thirty-two bytes!"))
	rc := newReceiver(t, []string{other}, nil)
	opts := options(t, rc.url(), map[string]any{"retry_schedule": []any{"0s", "1ms"}})
	run(t, opts, changes(t, mem, 0, 2))
	rc.mu.Lock()
	bad := len(rc.bad)
	rc.mu.Unlock()
	if bad != 4 {
		t.Errorf("%d requests refused, want 4 (2 changes, 2 attempts)", bad)
	}
	dl := deadLetters(t, opts["outbox"].(string))
	if len(dl) != 2 || dl[0]["last_status"] != 401.0 {
		t.Errorf("dead letters %v: want 2 with last_status 401", dl)
	}
}

func TestFaults(t *testing.T) {
	status := func(code int, times int) func(int, http.ResponseWriter, *http.Request) bool {
		return func(attempt int, w http.ResponseWriter, _ *http.Request) bool {
			if attempt <= times {
				w.WriteHeader(code)
				return true
			}
			return false
		}
	}
	tests := []struct {
		name  string
		fault func(attempt int, w http.ResponseWriter, r *http.Request) bool
		extra map[string]any
		tries int // attempts per change
	}{
		{name: "500 twice", fault: status(500, 2), tries: 3},
		{name: "503 then 502 then 504", fault: func(attempt int, w http.ResponseWriter, _ *http.Request) bool {
			if attempt <= 3 {
				w.WriteHeader([]int{503, 502, 504}[attempt-1])
				return true
			}
			return false
		}, tries: 4},
		{name: "redirect is a failure", fault: func(attempt int, w http.ResponseWriter, r *http.Request) bool {
			if attempt == 1 {
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
				return true
			}
			return false
		}, tries: 2},
		{name: "timeout", extra: map[string]any{"timeout": "100ms"}, fault: func(attempt int, w http.ResponseWriter, r *http.Request) bool {
			if attempt == 1 {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
				return true
			}
			return false
		}, tries: 2},
		{name: "connection reset", fault: func(attempt int, w http.ResponseWriter, _ *http.Request) bool {
			if attempt <= 2 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(err)
				}
				if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
					tc.SetLinger(0) // a reset, not a clean close
				}
				conn.Close()
				return true
			}
			return false
		}, tries: 3},
		{name: "slow receiver", extra: map[string]any{"concurrency": int64(3)}, fault: func(int, http.ResponseWriter, *http.Request) bool {
			time.Sleep(30 * time.Millisecond)
			return false
		}, tries: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rc := newReceiver(t, []string{secretNew}, tc.fault)
			opts := options(t, rc.url(), tc.extra)
			const n = 12
			run(t, opts, changes(t, mem, 0, n))
			got := rc.check()
			if len(got) != n {
				t.Fatalf("%d changes acknowledged, want %d", len(got), n)
			}
			tries, most := rc.counts()
			for id, k := range tries {
				if k != tc.tries {
					t.Errorf("id %s: %d attempts, want %d", id, k, tc.tries)
				}
			}
			if c, ok := tc.extra["concurrency"].(int64); ok && most > int(c) {
				t.Errorf("%d requests in flight at once, concurrency is %d", most, c)
			}
			if dl := deadLetters(t, opts["outbox"].(string)); len(dl) != 0 {
				t.Errorf("dead letters: %v", dl)
			}
		})
	}
}

// TestRetryAfterPausesEndpoint: a 429 with Retry-After: 1 holds back
// the refused change and every other one for that second.
func TestRetryAfterPausesEndpoint(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var first atomic.Bool
	rc := newReceiver(t, []string{secretNew}, func(attempt int, w http.ResponseWriter, _ *http.Request) bool {
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	// One request at a time, so that none is in flight beside the
	// refused one: every other must wait for the second to pass.
	opts := options(t, rc.url(), map[string]any{"concurrency": int64(1)})
	run(t, opts, changes(t, mem, 0, 5))
	if got := rc.check(); len(got) != 5 {
		t.Fatalf("%d changes acknowledged, want 5", len(got))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var refused time.Time
	for _, ds := range rc.tries {
		if len(ds) == 2 {
			refused = ds[0].at
			if gap := ds[1].at.Sub(ds[0].at); gap < 900*time.Millisecond {
				t.Errorf("retried %s after a 429 with Retry-After: 1", gap)
			}
		}
	}
	if refused.IsZero() {
		t.Fatal("no change was retried")
	}
	early := 0
	for _, ds := range rc.tries {
		for _, d := range ds {
			if d.at.After(refused) && d.at.Sub(refused) < 900*time.Millisecond {
				early++
			}
		}
	}
	if early > 0 {
		t.Errorf("%d requests within the Retry-After second", early)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rc := newReceiver(t, []string{secretNew}, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusGone)
		return true
	})
	opts := options(t, rc.url(), map[string]any{"concurrency": int64(1)})
	if n := run(t, opts, changes(t, mem, 0, 5)); n != 5 {
		t.Errorf("the writer says it dead-lettered %d rows, want 5", n)
	}
	tries, _ := rc.counts()
	if len(tries) != 1 {
		t.Errorf("%d ids tried after a 410, want 1", len(tries))
	}
	outbox := opts["outbox"].(string)
	dl := deadLetters(t, outbox)
	if len(dl) != 5 {
		t.Fatalf("%d dead letters, want 5", len(dl))
	}
	for _, d := range dl {
		if !strings.Contains(d["reason"].(string), "410 Gone") {
			t.Errorf("reason %q does not say 410 Gone", d["reason"])
		}
	}
	// The endpoint stays disabled for the next run: its rows go to the
	// dead letters without a request.
	if n := run(t, opts, changes(t, mem, 100, 3)); n != 3 {
		t.Errorf("second run: the writer says it dead-lettered %d rows, want 3", n)
	}
	if tries2, _ := rc.counts(); len(tries2) != 1 {
		t.Errorf("a disabled endpoint received %d ids", len(tries2))
	}
	if dl := deadLetters(t, outbox); len(dl) != 8 {
		t.Errorf("%d dead letters, want 8", len(dl))
	}
}

func TestExhaustedGoesToDeadLetters(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rc := newReceiver(t, []string{secretNew}, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	opts := options(t, rc.url(), map[string]any{"retry_schedule": []any{"0s", "5ms", "5ms"}})
	if n := run(t, opts, changes(t, mem, 0, 4)); n != 4 {
		t.Errorf("the writer says it dead-lettered %d rows, want 4", n)
	}
	dl := deadLetters(t, opts["outbox"].(string))
	if len(dl) != 4 {
		t.Fatalf("%d dead letters, want 4", len(dl))
	}
	for _, d := range dl {
		if d["last_status"] != 500.0 || d["attempts"] != 3.0 || !strings.Contains(d["reason"].(string), "3 attempts failed") {
			t.Errorf("dead letter %v: want 3 attempts, last status 500", d)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(d["body"].(string)), &body); err != nil || body["data"] == nil {
			t.Errorf("dead letter body %q: %v", d["body"], err)
		}
	}
	for id, k := range func() map[string]int { c, _ := rc.counts(); return c }() {
		if k != 3 {
			t.Errorf("id %s: %d attempts, want 3", id, k)
		}
	}
}

// TestOutboxKeepsUndelivered: a run whose receiver is down leaves its
// changes in the outbox; the next run delivers them with the same ids,
// and rows the receiver acknowledged are not sent again when written
// again.
func TestOutboxKeepsUndelivered(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	downIDs := map[string]bool{}
	rc := newReceiver(t, []string{secretNew}, func(attempt int, w http.ResponseWriter, r *http.Request) bool {
		if down.Load() {
			mu.Lock()
			downIDs[r.Header.Get("webhook-id")] = true
			mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	// The retry is due after Close gave up: the messages stay in the
	// outbox.
	opts := options(t, rc.url(), map[string]any{"retry_schedule": []any{"0s", "300ms", "300ms"}, "drain_timeout": "100ms"})
	run(t, opts, changes(t, mem, 0, 6))
	if len(rc.check()) != 0 {
		t.Fatal("acknowledged while down")
	}
	if len(downIDs) != 6 {
		t.Fatalf("%d ids tried while down, want 6", len(downIDs))
	}
	down.Store(false)
	opts["drain_timeout"] = "20s"
	run(t, opts) // a run that writes nothing delivers what the outbox holds
	got := rc.check()
	if len(got) != 6 {
		t.Fatalf("%d delivered after restart, want 6", len(got))
	}
	for id := range downIDs {
		if _, ok := got[id]; !ok {
			t.Errorf("id %s tried while down was not delivered under the same id", id)
		}
	}
	// Writing the same changes again sends nothing.
	run(t, opts, changes(t, mem, 0, 6))
	tries, _ := rc.counts()
	for id, k := range tries {
		if k != 2 {
			t.Errorf("id %s: %d attempts, want 2 (one down, one acknowledged)", id, k)
		}
	}
}

func TestBodies(t *testing.T) {
	type event struct {
		ID        string         `json:"id"`
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	type batch struct {
		Type      string  `json:"type"`
		Timestamp string  `json:"timestamp"`
		Data      []event `json:"data"`
	}
	tests := []struct {
		name  string
		extra map[string]any
		check func(t *testing.T, got map[string]string)
	}{
		{name: "batched", extra: map[string]any{"batch": int64(4)}, check: func(t *testing.T, got map[string]string) {
			if len(got) != 3 { // 10 rows in requests of 4, 4, 2
				t.Fatalf("%d requests, want 3", len(got))
			}
			rows := map[string]bool{}
			for _, body := range got {
				var b batch
				if err := json.Unmarshal([]byte(body), &b); err != nil {
					t.Fatal(err)
				}
				if b.Type != "vigie.batch" || b.Timestamp == "" {
					t.Errorf("batch type %q timestamp %q", b.Type, b.Timestamp)
				}
				for _, e := range b.Data {
					if !strings.HasPrefix(e.ID, "msg_") || e.Type != "alert."+e.Data["change"].(string) {
						t.Errorf("event id %q type %q", e.ID, e.Type)
					}
					rows[e.Data["alert_id"].(string)] = true
				}
			}
			if len(rows) != 10 {
				t.Errorf("%d rows in the batches, want 10", len(rows))
			}
		}},
		{name: "thin", extra: map[string]any{"thin": true}, check: func(t *testing.T, got map[string]string) {
			for _, body := range got {
				var e event
				json.Unmarshal([]byte(body), &e)
				var cols []string
				for k := range e.Data {
					cols = append(cols, k)
				}
				slices.Sort(cols)
				if want := []string{"alert_id", "change", "code", "reason_codes", "student_id"}; !slices.Equal(cols, want) {
					t.Errorf("thin columns %v, want %v", cols, want)
				}
			}
		}},
		{name: "thin columns and event type", extra: map[string]any{"thin": true, "thin_columns": []any{"alert_id"}, "event_type": "school.alert"}, check: func(t *testing.T, got map[string]string) {
			for _, body := range got {
				var e event
				json.Unmarshal([]byte(body), &e)
				if len(e.Data) != 1 || e.Data["alert_id"] == nil || e.Type != "school.alert" {
					t.Errorf("body %s", body)
				}
			}
		}},
		{name: "id column", extra: map[string]any{"id_column": "alert_id"}, check: func(t *testing.T, got map[string]string) {
			for id, body := range got {
				var e event
				json.Unmarshal([]byte(body), &e)
				if id != e.Data["alert_id"] {
					t.Errorf("id %q for alert %v", id, e.Data["alert_id"])
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rc := newReceiver(t, []string{secretNew}, nil)
			run(t, options(t, rc.url(), tc.extra), changes(t, mem, 0, 10))
			got := rc.check()
			if tc.name != "batched" && len(got) != 10 {
				t.Fatalf("%d requests, want 10", len(got))
			}
			tc.check(t, got)
		})
	}
}

// TestIDsAreStable: the same change gets the same id in another run, a
// different update of one alert another id.
func TestIDsAreStable(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids := func(extra map[string]any, rec arrow.RecordBatch) map[string]string {
		rc := newReceiver(t, []string{secretNew}, nil)
		run(t, options(t, rc.url(), extra), rec)
		out := map[string]string{}
		for id, body := range rc.check() {
			var e struct {
				Data map[string]any `json:"data"`
			}
			json.Unmarshal([]byte(body), &e)
			out[e.Data["alert_id"].(string)+"/"+e.Data["reason_codes"].(string)] = id
		}
		return out
	}
	a := ids(nil, changes(t, mem, 0, 5))
	b := ids(nil, changes(t, mem, 0, 5))
	if !maps.Equal(a, b) || len(a) != 5 {
		t.Errorf("ids differ between runs:\n%v\n%v", a, b)
	}
	// Another value of reason_codes makes another update.
	rec := changes(t, mem, 0, 1)
	cols := slices.Clone(rec.Columns())
	rb := array.NewStringBuilder(mem)
	rb.Append("GRD")
	codes := rb.NewArray()
	rb.Release()
	cols[4] = codes
	other := array.NewRecordBatch(changesSchema, cols, 1)
	codes.Release()
	rec.Release()
	c := ids(nil, other)
	if c["A00000/GRD"] == "" || c["A00000/GRD"] == a["A00000/ABS;GRD"] {
		t.Errorf("another update of alert A00000 has id %q, the first %q", c["A00000/GRD"], a["A00000/ABS;GRD"])
	}
}

// TestTLS: an https endpoint whose certificate a private authority signs
// is reached with tls_ca_file, and refused without it (the change ends in
// the dead letters with the certificate error).
func TestTLS(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rc := newReceiver(t, []string{secretNew}, nil)
	tlsSrv := httptest.NewTLSServer(rc.srv.Config.Handler)
	defer tlsSrv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := options(t, tlsSrv.URL+"/hook", map[string]any{"tls_ca_file": ca})
	run(t, opts, changes(t, mem, 0, 3))
	if got := rc.check(); len(got) != 3 {
		t.Fatalf("%d delivered over TLS, want 3", len(got))
	}
	opts = options(t, tlsSrv.URL+"/hook", map[string]any{"retry_schedule": []any{"0s"}})
	run(t, opts, changes(t, mem, 10, 1))
	dl := deadLetters(t, opts["outbox"].(string))
	if len(dl) != 1 || !strings.Contains(dl[0]["reason"].(string), "certificate") {
		t.Errorf("without the CA: dead letters %v, want one certificate error", dl)
	}
}

// TestOutboxTakenOver: a second writer on one outbox folder in one
// process takes it over; the first one says so instead of writing.
func TestOutboxTakenOver(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rc := newReceiver(t, []string{secretNew}, nil)
	opts := options(t, rc.url(), nil)
	ctx := context.Background()
	cfg := protocol.Config{Pipeline: "p", Stage: "hook", Options: opts}
	w1, err := webhook.Sink{Log: testLog(t)}.Open(ctx, cfg, mem, changesSchema)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := webhook.Sink{Log: testLog(t)}.Open(ctx, cfg, mem, changesSchema)
	if err != nil {
		t.Fatal(err)
	}
	rec := changes(t, mem, 0, 2)
	defer rec.Release()
	if err := w1.Write(ctx, rec); err == nil || !strings.Contains(err.Error(), "another writer opened it") {
		t.Errorf("first writer's Write: %v", err)
	}
	if err := w2.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w1.Abort(ctx)
	if got := rc.check(); len(got) != 2 {
		t.Errorf("%d delivered, want 2", len(got))
	}
}
