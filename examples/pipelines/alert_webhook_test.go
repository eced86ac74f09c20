package pipelines_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestAlertWebhook runs alert_webhook.toml against a local receiver that
// checks each signature: every change of the CSV output arrives once,
// signed, under a webhook-id; a rerun, which announces nothing, sends
// nothing.
func TestAlertWebhook(t *testing.T) {
	key := []byte("example secret of 32 bytes long!")
	t.Setenv("VIGIE_WEBHOOK_SECRET", "whsec_"+base64.StdEncoding.EncodeToString(key))
	var (
		mu     sync.Mutex
		alerts []string
		ids    = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		if !slices.Contains(strings.Fields(r.Header.Get("webhook-signature")), want) {
			t.Errorf("request %s: bad signature", id)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if ids[id] {
			t.Errorf("id %s sent twice", id)
		}
		ids[id] = true
		alerts = append(alerts, ev.Data["student_id"].(string)+" "+ev.Data["alert_id"].(string)+" "+ev.Type)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	toml, dir := ewPipeline(t, "alert_webhook.toml", "early_warning")
	src, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), `"http://127.0.0.1:8088/alerts"`, `"`+srv.URL+`/alerts"`, 1)
	if s == string(src) {
		t.Fatal("no url to replace in alert_webhook.toml")
	}
	if err := os.WriteFile(toml, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, toml)
	h, rows := changeRows(t, filepath.Join(dir, "out", "alert_webhook.csv"))
	var want []string
	for _, r := range rows {
		want = append(want, r[h["student_id"]]+" "+r[h["alert_id"]]+" alert."+r[h["change"]])
	}
	if len(want) == 0 {
		t.Fatal("no alert change to deliver")
	}
	mu.Lock()
	got := slices.Clone(alerts)
	mu.Unlock()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %d changes, want the %d of the CSV output\n got %q\nwant %q", len(got), len(want), got, want)
	}
	t.Logf("%d alert changes delivered", len(got))

	pipelinetest.Run(t, toml)
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != len(got) {
		t.Errorf("the rerun sent %d more requests", len(alerts)-len(got))
	}
}
