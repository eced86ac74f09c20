//go:build unix

package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildVigie builds the vigie binary into a temporary folder.
func buildVigie(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vigie")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/vigie").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEngineKilledDuringDelivery runs `vigie run` on a pipeline of alert
// changes (a CSV file) into the webhook sink, the sink running in its
// plugin process as in production, against a slow receiver; it SIGKILLs
// the engine and its plugins while deliveries are under way, runs the
// pipeline again, and checks that every change arrived, each under one
// webhook-id on every attempt of both runs, every request signed.
func TestEngineKilledDuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vigie binary")
	}
	bin := buildVigie(t)
	const n = 120
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("alert_id,change,student_id,code,reason_codes\n")
	for i := range n {
		fmt.Fprintf(&csv, "A%04d,opened,S%04d,ABS,ABS;GRD\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "changes.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		okCount int
	)
	rc := newReceiver(t, []string{secretNew}, func(attempt int, w http.ResponseWriter, r *http.Request) bool {
		time.Sleep(20 * time.Millisecond) // slow: the run is still delivering when killed
		if attempt == 1 && strings.HasSuffix(r.Header.Get("webhook-id"), "a") {
			w.WriteHeader(http.StatusInternalServerError) // some fail once
			return true
		}
		mu.Lock()
		okCount++
		mu.Unlock()
		return false
	})
	rc.allowDuplicates = true // a 2xx the killed sink had no time to record is sent again
	pipeline := fmt.Sprintf(`
[pipeline]
name = "kill"
state_dir = "state"

[[source]]
name = "changes"
connector = "csv"
[source.options]
path = "changes.csv"
columns = { alert_id = "utf8", change = "utf8", student_id = "utf8", code = "utf8", reason_codes = "utf8" }

[[sink]]
name = "hook"
input = "changes"
connector = "webhook"
[sink.options]
url = %q
secret_env = "VIGIE_KILL_TEST_SECRET"
outbox = "state/hook.outbox"
retry_schedule = ["0s", "50ms", "100ms", "200ms"]
concurrency = 2
drain_timeout = "60s"
`, rc.url())
	if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, "run", "pipeline.toml")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "VIGIE_KILL_TEST_SECRET="+secretNew)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	cmd, out := start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		k := okCount
		mu.Unlock()
		if k >= n/4 {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			t.Fatalf("only %d deliveries in a minute; output:\n%s", k, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The engine and its plugin processes, as a crash would take them.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	mu.Lock()
	atKill := okCount
	mu.Unlock()
	if atKill >= n {
		t.Fatalf("all %d delivered before the kill: the test kills nothing", n)
	}
	t.Logf("killed after %d acknowledged deliveries of %d", atKill, n)

	cmd, out = start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	got := rc.check()
	byAlert := map[string]map[string]bool{}
	rc.mu.Lock()
	for id, ds := range rc.tries {
		for _, d := range ds {
			var ev struct {
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal([]byte(d.body), &ev); err != nil {
				t.Fatal(err)
			}
			a := ev.Data["alert_id"].(string)
			if byAlert[a] == nil {
				byAlert[a] = map[string]bool{}
			}
			byAlert[a][id] = true
		}
	}
	dups := 0
	for _, k := range rc.acked {
		dups += k - 1
	}
	rc.mu.Unlock()
	if len(got) != n {
		t.Errorf("%d changes acknowledged, want %d", len(got), n)
	}
	for a, ids := range byAlert {
		if len(ids) != 1 {
			t.Errorf("alert %s sent under %d webhook-ids", a, len(ids))
		}
	}
	if len(byAlert) != n {
		t.Errorf("%d alerts reached the receiver, want %d", len(byAlert), n)
	}
	// At most the requests in flight at the kill are acknowledged twice.
	if dups > 2 {
		t.Errorf("%d changes acknowledged twice; at most 2 (the concurrency) were in flight at the kill", dups)
	}
	t.Logf("%d acknowledged twice (in flight at the kill)", dups)
}
