package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// TestEngineStopFiles: the csv_file and jsonl_file sinks of a continuous
// run (Kafka source → map rule → file, the checkpoint record in
// state_dir), interrupted four times and restarted: SIGKILLed, stopped
// with SIGTERM (the run drains, its sinks take their last checkpoint and
// close), SIGKILLed, stopped again, then run to its end. The file then
// holds, student by student, the same rows in the same order as a
// reference run's: a restart after a stop goes on with the output the
// stopped run committed, and one after a kill truncates it to the last
// checkpoint. VIGIE_STOP_FILE_EVENTS sets the number of events (default
// stopFileEvents: a run over all of them takes about 2 s, so that each
// interruption finds the run still going), VIGIE_SIGKILL_SEED the
// interruption points.
func TestEngineStopFiles(t *testing.T) {
	for _, sink := range []string{"csv_file", "jsonl_file"} {
		t.Run(sink, func(t *testing.T) { testStopFiles(t, sink) })
	}
}

// stopFileEvents is TestEngineStopFiles's default number of events.
const stopFileEvents = 400_000

func testStopFiles(t *testing.T, sink string) {
	events, rng := sigkillParams(t, "VIGIE_STOP_FILE_EVENTS", stopFileEvents, sigkillStudents)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions}})
	produceEvents(ctx, t, c, events)

	dir := t.TempDir()
	rule, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ref", "killed"} {
		writeFilesPipeline(t, c, filepath.Join(dir, name+".toml"), name, rule, sink)
	}
	covered := func() int64 {
		return fileCheckpointCovers(t, filepath.Join(dir, "killed.state", "checkpoint.json"))
	}
	signals := []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL, syscall.SIGTERM}
	interruptRuns(ctx, t, dir, events, rng, covered, signals, 30*time.Millisecond)

	read := readCSVRows
	if sink == "jsonl_file" {
		read = readJSONLRows
	}
	ext := fileSinkExt[sink]
	ref, killed := read(t, filepath.Join(dir, "ref"+ext)), read(t, filepath.Join(dir, "killed"+ext))
	if n := total(ref); n != events {
		t.Errorf("reference output: %d rows, want %d", n, events)
	}
	sameRows(t, ref, killed)
	if left, _ := filepath.Glob(filepath.Join(dir, ".killed"+ext+".*")); len(left) != 0 {
		t.Errorf("temporary files left after the last run: %v", left)
	}
}

// interruptRuns runs ref.toml in dir to its end, then killed.toml, sent
// each of signals in turn a random 0 to maxExtra after its last checkpoint covers
// a random share (10% to 75%, increasing) of the messages and it committed
// one checkpoint of its own, and restarted
// until it ends by itself. A run sent SIGTERM must exit 130 (interrupted).
func interruptRuns(ctx context.Context, t *testing.T, dir string, messages int, rng *rand.Rand, covered func() int64, signals []syscall.Signal, maxExtra time.Duration) {
	t.Helper()
	start := time.Now()
	out, code := runToEnd(ctx, t, dir, "ref.toml")
	if code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, out)
	}
	t.Logf("reference run: %s\n%s", time.Since(start).Round(time.Millisecond), summaryOf(out))
	start = time.Now()
	// One share in each of len(signals) equal bands, so that every run
	// has some input left to process before its signal.
	shares := make([]float64, len(signals))
	for i := range shares {
		shares[i] = 0.1 + 0.65*(float64(i)+rng.Float64())/float64(len(signals))
	}
	runs, interrupted, failed, ended := 0, 0, 0, false
	sent := map[syscall.Signal]int{}
	for i := 0; i < len(signals) && !ended; {
		runs++
		extra := time.Duration(rng.Int64N(int64(maxExtra)))
		// The run must commit a checkpoint of its own first: the record
		// left by the last run may already cover the share, and a SIGTERM
		// before the signal handlers are set kills the process.
		before := covered()
		cmd, buf, exited := startVigie(ctx, t, dir, "killed.toml")
		code := -1
		for ended = false; !ended && (covered() == before || float64(covered()) < shares[i]*float64(messages)); {
			select {
			case code = <-exited:
				ended = true
			case <-time.After(20 * time.Millisecond):
			}
		}
		if !ended {
			select {
			case code = <-exited:
				ended = true
			case <-time.After(extra):
			}
		}
		if !ended {
			if err := cmd.Process.Signal(signals[i]); err != nil {
				t.Fatal(err)
			}
			select {
			case code = <-exited:
			case <-ctx.Done():
				t.Fatalf("run %d did not exit after %s:\n%s", runs, signals[i], buf)
			}
			if signals[i] == syscall.SIGTERM && code != 0 && code != exitInterrupted {
				t.Fatalf("run %d: exit %d after SIGTERM, want %d:\n%s", runs, code, exitInterrupted, buf)
			}
			if signals[i] == syscall.SIGTERM && code == exitInterrupted {
				t.Logf("run %d: summary after SIGTERM:\n%s", runs, summaryOf(buf.String()))
			}
			if code != 0 {
				interrupted++
				sent[signals[i]]++
				t.Logf("run %d: %s at %.0f%% of the input (+%s)", runs, signals[i], 100*shares[i], extra)
				i++
				continue
			}
			ended = true // it ended by itself as the signal came
		}
		switch {
		case code != 0:
			if failed++; failed > 5 {
				t.Fatalf("%d runs failed by themselves; the last:\n%s", failed, buf)
			}
			t.Logf("run %d failed by itself (exit %d), restarted:\n%s", runs, code, summaryOf(buf.String()))
			ended = false
		default:
			t.Logf("run %d ended by itself before its %s at %.0f%% of the input", runs, signals[i], 100*shares[i])
		}
	}
	for !ended {
		runs++
		out, code := runToEnd(ctx, t, dir, "killed.toml")
		if ended = code == 0; !ended {
			if failed++; failed > 5 {
				t.Fatalf("%d runs failed by themselves; the last:\n%s", failed, out)
			}
		} else {
			t.Logf("last run:\n%s", summaryOf(out))
		}
	}
	t.Logf("%d runs, %d interrupted, %d failed by themselves, %s in all", runs, interrupted, failed, time.Since(start).Round(time.Millisecond))
	for _, sig := range slices.Compact(slices.Sorted(slices.Values(signals))) {
		if sent[sig] == 0 {
			t.Errorf("no run was interrupted by %s before it ended (%d interrupted in all)", sig, interrupted)
		}
	}
}

// readCSVRows reads a csv_file sink's output and returns each student's
// rows (every column, as text) in order.
func readCSVRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	rows := readback.CSV(t, path)
	if len(rows) == 0 {
		t.Fatalf("%s: empty", path)
	}
	id, ok := readback.Columns(rows[0])["student_id"]
	if !ok {
		t.Fatalf("%s: no student_id column: %q", path, rows[0])
	}
	out := map[string][]string{}
	for _, r := range rows[1:] {
		out[r[id]] = append(out[r[id]], strings.Join(r, "|"))
	}
	return out
}

// readJSONLRows reads a jsonl_file sink's output and returns each
// student's rows (the lines) in order.
func readJSONLRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var row struct {
			StudentID string `json:"student_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil || row.StudentID == "" {
			t.Fatalf("%s:%d: not a row with a student_id (%v): %q", path, line, err, sc.Text())
		}
		out[row.StudentID] = append(out[row.StudentID], sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
