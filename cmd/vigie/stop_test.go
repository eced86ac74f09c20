package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/rules/host/hosttest"
)

// TestSignalsStopAnEndlessRule sends real SIGTERMs to vigie run while its
// rule loops for ever (time limit 10 minutes): one SIGTERM ends the run
// once stop_timeout has passed, two end it at once.
func TestSignalsStopAnEndlessRule(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stopTimeout string
		signals     int
		want        string // on stdout or stderr
	}{
		{"one SIGTERM, stop_timeout 2s", "2s", 1, "the graceful stop took longer than stop_timeout (2s)"},
		{"two SIGTERMs, stop_timeout 10m", "10m", 2, "aborting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in.csv"), []byte(hosttest.PoisonCSV(2000)), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := fmt.Sprintf(`[pipeline]
name = "loop"
stop_timeout = %q
[[source]]
name = "in"
connector = "csv"
[source.options]
path = "in.csv"
columns = { x = "int32" }
[[rule]]
name = "r"
input = "in"
module = %q
[rule.limits]
timeout = "10m"
[[sink]]
name = "out"
input = "r"
connector = "parquet"
[sink.options]
path = "out/r.parquet"
`, tc.stopTimeout, hosttest.Module(t, "loop"))
			if err := os.WriteFile(filepath.Join(dir, "loop.toml"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, vigie(t), "run", "--log-level", "info", "loop.toml")
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Let the rule call start (plugins up, rows read), then signal.
			time.Sleep(3 * time.Second)
			start := time.Now()
			for range tc.signals {
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			err := cmd.Wait()
			took := time.Since(start)
			t.Logf("%s: exited %v after %s", tc.name, err, took.Round(time.Millisecond))
			if ctx.Err() != nil {
				t.Fatalf("vigie did not stop within 2 minutes:\n%s%s", stdout.String(), stderr.String())
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 130 {
				t.Fatalf("exit: %v, want code 130:\n%s%s", err, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.want) || !strings.Contains(out, `pipeline "loop" interrupted`) {
				t.Errorf("output lacks %q or the interrupted summary:\n%s", tc.want, out)
			}
		})
	}
}
