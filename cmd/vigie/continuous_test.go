package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// TestContinuousRunSIGTERM runs `vigie run` on a pipeline whose Kafka
// source never ends, its connectors in plugin processes (max_delay crosses
// the process boundary in protocol.Config): records produced while it runs
// reach the output topic (read_committed) while it still runs; SIGTERM then
// drains, the sink commits, the process exits 130 and leaves no plugin
// behind, and the output holds every record produced once.
func TestContinuousRunSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": 2, "out": 2}})
	dir := t.TempDir()
	c.WritePipeline(t, filepath.Join(dir, "live.toml"), `name = "kafka_live"
batch_rows = 100000
max_delay = "50ms"
`, `group = "vigie-live"
columns = { student_id = "utf8", n = "int64" }
`, "", "events")
	cmd := exec.CommandContext(ctx, vigie(t), "run", "live.toml")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range vigieProcesses(t, dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	prod := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	out := c.CommittedConsumer(t, "out")
	seen := map[string]int{}
	var produced []string
	n := 0
	poll := func() {
		kafkatest.Poll(ctx, t, out, 500*time.Millisecond, func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for w := range 3 {
		var vals []string
		for i := range 10 {
			id := fmt.Sprintf("S%d", n%7)
			r := &kgo.Record{Topic: "events", Partition: int32(i % 2), Value: fmt.Appendf(nil, `{"student_id": %q, "n": %d}`, id, n)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			vals = append(vals, fmt.Sprintf(`{"n":%d,"student_id":%q}`, n, id))
			n++
		}
		produced = append(produced, vals...)
		for missing := len(vals); missing > 0; {
			select {
			case err := <-exited:
				t.Fatalf("vigie exited (%v) during wave %d:\n%s%s", err, w, &stdout, &stderr)
			default:
			}
			if ctx.Err() != nil {
				t.Fatalf("wave %d: %d of %d records never reached the output:\n%s%s", w, missing, len(vals), &stdout, &stderr)
			}
			poll()
			missing = 0
			for _, v := range vals {
				if seen[v] == 0 {
					missing++
				}
			}
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		t.Fatalf("vigie did not stop after SIGTERM:\n%s%s", &stdout, &stderr)
	}
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != exitInterrupted {
		t.Fatalf("exit code %d (err %v), want %d:\n%s%s", code, err, exitInterrupted, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), `pipeline "kafka_live" interrupted: 30 rows read`) {
		t.Errorf("summary does not say interrupted with 30 rows read:\n%s%s", &stdout, &stderr)
	}
	for range 3 {
		poll()
	}
	for _, v := range produced {
		if seen[v] != 1 {
			t.Errorf("record %s is %d times in the output, want once", v, seen[v])
		}
	}
	if len(seen) != len(produced) {
		t.Errorf("output has %d distinct records, want %d", len(seen), len(produced))
	}
	waitGone(t, dir, 10*time.Second)
}
