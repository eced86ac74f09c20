package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// Engine SIGKILL tests of the file outputs of a continuous run (issue 14's
// leftovers): the parquet sink's parts and the dead letter file. Like
// TestEngineSIGKILL, a reference run and a run SIGKILLed 3 to 5 times at
// random, over events of 10K students with hostile messages among them (one
// in sigkillHostileEvery: bad JSON, or a number that is not one), which the
// Kafka source dead-letters. VIGIE_SIGKILL_FILE_EVENTS sets the number of
// events (default sigkillFileEvents), VIGIE_SIGKILL_SEED the kill times.
const (
	sigkillFileEvents   = 150_000
	sigkillHostileEvery = 150
)

// TestEngineSIGKILLParquet: Kafka source → map rule → parquet sink, the
// commit point the checkpoint record in state_dir. After the kills, the
// parts of the killed run's output folder hold, student by student, the
// same rows in the same order as the reference run's, and its dead letter
// file every hostile message exactly once.
func TestEngineSIGKILLParquet(t *testing.T) {
	testSIGKILLFiles(t, "parquet")
}

// TestEngineSIGKILLDeadLetters: TestEngineSIGKILL's pipeline (the Kafka
// sink's transaction the commit point) with hostile messages: the dead
// letter file's length is recorded in the checkpoint record committed in
// that transaction; after the kills every hostile message is dead-lettered
// exactly once, and the output topic equals the reference run's.
func TestEngineSIGKILLDeadLetters(t *testing.T) {
	testSIGKILLFiles(t, "kafka_topic")
}

func testSIGKILLFiles(t *testing.T, sink string) {
	events, rng := sigkillParams(t, "VIGIE_SIGKILL_FILE_EVENTS", sigkillFileEvents, sigkillStudents)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"events": sigkillPartitions, "ref": sigkillPartitions, "killed": sigkillPartitions}})
	hostile := produceHostileEvents(ctx, t, c, events)
	messages := events + len(hostile)

	dir := t.TempDir()
	rule, err := filepath.Abs(filepath.Join("..", "..", "examples", "rules", "bench_map_wat", "bench_map.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ref", "killed"} {
		writeFilesPipeline(t, c, filepath.Join(dir, name+".toml"), name, rule, sink)
	}
	covered := func() int64 {
		if sink == "kafka_topic" {
			_, n := lastCheckpoint(ctx, t, c, "killed.checkpoints")
			return n
		}
		return fileCheckpointCovers(t, filepath.Join(dir, "killed.state", "checkpoint.json"))
	}
	var seen func() map[string]os.FileInfo
	if sink == "parquet" {
		seen = watchParts(ctx, filepath.Join(dir, "killed.parquet"))
	}
	killRunsCovered(ctx, t, dir, messages, rng, covered)
	if seen != nil {
		// A part a reader saw is never taken back: it was published only
		// once its checkpoint committed.
		for name, fi := range seen() {
			now, err := os.Stat(filepath.Join(dir, "killed.parquet", name))
			if err != nil || !os.SameFile(fi, now) {
				t.Errorf("part %s, seen in the folder during the runs, was taken back or replaced (%v)", name, err)
			}
		}
	}

	var ref, killed map[string][]string
	if sink == "kafka_topic" {
		ref, killed = readToEnd(ctx, t, c, "ref"), readToEnd(ctx, t, c, "killed")
	} else {
		ref, killed = readParts(t, filepath.Join(dir, "ref.parquet")), readParts(t, filepath.Join(dir, "killed.parquet"))
	}
	if n := total(ref); n != events {
		t.Errorf("reference output: %d rows, want %d", n, events)
	}
	sameRows(t, ref, killed)

	for _, name := range []string{"ref", "killed"} {
		got := deadLettered(t, filepath.Join(dir, name+".dead.csv"))
		twice := 0
		for raw, n := range got {
			if n > 1 {
				if twice++; twice <= 5 {
					t.Errorf("%s run: %q dead-lettered %d times", name, raw, n)
				}
			}
		}
		missing := 0
		for _, raw := range hostile {
			if got[raw] == 0 {
				if missing++; missing <= 5 {
					t.Errorf("%s run: %q not dead-lettered", name, raw)
				}
			}
		}
		if twice > 0 || missing > 0 || len(got) != len(hostile) {
			t.Errorf("%s run: %d distinct dead letters (%d twice or more, %d missing), want the %d hostile messages once each", name, len(got), twice, missing, len(hostile))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".killed.dead.csv.*")); len(left) != 0 {
		t.Errorf("temporary dead letter files left after the last run: %v", left)
	}
	if sink == "parquet" {
		if left, _ := filepath.Glob(filepath.Join(dir, "killed.parquet", ".*")); len(left) != 0 {
			t.Errorf("temporary parts left after the last run: %v", left)
		}
	}
}

// watchParts lists the parts of the folder dir, as a reader would, every
// millisecond or so until the returned function is called, which returns
// every part seen, with what it was when first seen.
func watchParts(ctx context.Context, dir string) func() map[string]os.FileInfo {
	ctx, cancel := context.WithCancel(ctx)
	seen := map[string]os.FileInfo{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if _, ok := seen[e.Name()]; ok || !strings.HasPrefix(e.Name(), "part-") {
					continue
				}
				if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
					seen[e.Name()] = fi
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() map[string]os.FileInfo {
		cancel()
		<-done
		return seen
	}
}

// produceHostileEvents produces produceEvents' events with a hostile
// message after every sigkillHostileEvery-th, keyed like the student's
// events, and returns the hostile messages.
func produceHostileEvents(ctx context.Context, t *testing.T, c *kafkatest.Cluster, events int) []string {
	t.Helper()
	cl := c.Client(t, kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	var hostile []string
	produce := func(id, v string) {
		cl.Produce(ctx, &kgo.Record{Topic: "events", Key: []byte(id), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	for i := range events {
		id := fmt.Sprintf("S%05d", i%sigkillStudents)
		produce(id, fmt.Sprintf(`{"student_id": %q, "n": %d, "a": %g, "b": %g, "c": %g}`, id, i, float64(i%7)/7, float64(i%10)/10, float64(i%3)/3))
		if i%sigkillHostileEvery == 0 {
			v := fmt.Sprintf(`{"student_id": %q, "n": "hostile %d"}`, id, i)
			if i%(2*sigkillHostileEvery) == 0 {
				v = fmt.Sprintf(`{"student_id": %q, "n": %d, "hostile`, id, i) // cut short
			}
			produce(id, v)
			hostile = append(hostile, v)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return hostile
}

// fileSinkExt is the extension of the output path of each file sink of
// writeFilesPipeline.
var fileSinkExt = map[string]string{"parquet": ".parquet", "csv_file": ".csv", "jsonl_file": ".jsonl"}

// writeFilesPipeline writes writeSigkillPipeline's pipeline, its output
// to sink: "kafka_topic" (topic name) or a file sink of fileSinkExt
// (name plus its extension, a folder of parts for parquet; the checkpoint
// record in name.state).
func writeFilesPipeline(t *testing.T, c *kafkatest.Cluster, path, name, rule, sink string) {
	t.Helper()
	writeSigkillPipeline(t, c, path, name, rule)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Smaller batches and a shorter interval: more checkpoints, parts and
	// kill points. With the 100ms of TestEngineSIGKILL an idle machine
	// ran the 60K events in 4 checkpoints and a run could end before its
	// kill (seen: 2 kills of 3).
	toml := strings.Replace(string(b), "batch_rows = 8192\n", "batch_rows = 1024\n", 1)
	toml = strings.Replace(toml, "checkpoint_interval = \"100ms\"\n", "checkpoint_interval = \"20ms\"\n", 1)
	if !strings.Contains(toml, "checkpoint_interval = \"20ms\"") {
		t.Fatal("the SIGKILL pipeline has no checkpoint_interval to shorten")
	}
	if sink == "kafka_topic" {
		if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	toml, _, ok := strings.Cut(toml, "[[sink]]")
	if !ok {
		t.Fatalf("%s: no [[sink]]", path)
	}
	toml = strings.Replace(toml, "[pipeline]\n", fmt.Sprintf("[pipeline]\nstate_dir = \"%s.state\"\n", name), 1)
	ext, ok := fileSinkExt[sink]
	if !ok {
		t.Fatalf("no file sink %q", sink)
	}
	toml += fmt.Sprintf(`[[sink]]
name = "out"
input = "score"
connector = %q
[sink.options]
path = "%s%s"
`, sink, name, ext)
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileCheckpointCovers returns the number of messages the checkpoint
// record file at path covers (the sum of its Kafka offsets), 0 before
// the first.
func fileCheckpointCovers(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return 0 // not written yet
	}
	var cp struct {
		Data struct {
			Sources map[string]struct {
				Offsets map[string]map[string]int64
			}
		}
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatalf("checkpoint record %s: %v", b, err)
	}
	var n int64
	for _, src := range cp.Data.Sources {
		for _, parts := range src.Offsets {
			for _, next := range parts {
				n += next
			}
		}
	}
	return n
}

// killRunsCovered runs ref.toml in dir to its end, then killed.toml,
// SIGKILLed 3 to 5 times a random 0-30ms after its last checkpoint covers
// a random share (10% to 75%) of the messages, and restarted until it
// ends by itself (killRuns, with the coverage of checkpoints given).
func killRunsCovered(ctx context.Context, t *testing.T, dir string, messages int, rng *rand.Rand, covered func() int64) {
	t.Helper()
	start := time.Now()
	out, code := runToEnd(ctx, t, dir, "ref.toml")
	if code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, out)
	}
	t.Logf("reference run: %s\n%s", time.Since(start).Round(time.Millisecond), summaryOf(out))
	start = time.Now()
	shares := make([]float64, 3+rng.IntN(3))
	for i := range shares {
		shares[i] = 0.1 + 0.65*rng.Float64()
	}
	slices.Sort(shares)
	runs, killed, failed, ended := 0, 0, 0, false
	for i := 0; i < len(shares) && !ended; {
		runs++
		extra := time.Duration(rng.IntN(30)) * time.Millisecond
		var out string
		var code int
		ended, out, code = runKilledAt(ctx, t, dir, "killed.toml", func() bool {
			return float64(covered()) >= shares[i]*float64(messages)
		}, extra)
		switch {
		case ended && code != 0:
			if failed++; failed > 5 {
				t.Fatalf("%d runs failed by themselves; the last:\n%s", failed, out)
			}
			t.Logf("run %d failed by itself (exit %d), restarted:\n%s", runs, code, summaryOf(out))
			ended = false
		case ended:
			t.Logf("run %d ended by itself before its kill at %.0f%% of the input", runs, 100*shares[i])
		default:
			killed++
			t.Logf("run %d: SIGKILL at %.0f%% of the input (+%s)", runs, 100*shares[i], extra)
			i++
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
	t.Logf("%d runs, %d killed, %d failed by themselves, %s in all", runs, killed, failed, time.Since(start).Round(time.Millisecond))
	if killed < 3 {
		t.Errorf("only %d of the runs were killed before they ended, want at least 3", killed)
	}
}

// readParts reads the parts of a parquet sink's output folder in order
// and returns each student's rows (every column, as text) in order.
func readParts(t *testing.T, dir string) map[string][]string {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, "part-*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) == 0 {
		t.Fatalf("%s: no parts", dir)
	}
	slices.Sort(parts)
	out := map[string][]string{}
	for _, p := range parts {
		tbl := readback.Parquet(t, p)
		rdr := array.NewTableReader(tbl, 0)
		id := tbl.Schema().FieldIndices("student_id")
		if len(id) != 1 {
			t.Fatalf("%s: no student_id column: %s", p, tbl.Schema())
		}
		for rdr.Next() {
			rec := rdr.RecordBatch()
			for i := range int(rec.NumRows()) {
				cells := make([]string, rec.NumCols())
				for j, col := range rec.Columns() {
					cells[j] = col.ValueStr(i)
				}
				student := rec.Column(id[0]).ValueStr(i)
				out[student] = append(out[student], strings.Join(cells, "|"))
			}
		}
		rdr.Release()
	}
	return out
}

// deadLettered counts the raw values of the dead letter file at path.
func deadLettered(t *testing.T, path string) map[string]int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		entries, _ := os.ReadDir(filepath.Dir(path))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%v (the folder holds %q)", err, names)
	}
	rows := readback.CSV(t, path)
	if len(rows) == 0 {
		t.Fatalf("%s: empty", path)
	}
	col := readback.Columns(rows[0])
	raw, ok := col["raw"]
	if !ok {
		t.Fatalf("%s: no raw column: %q", path, rows[0])
	}
	out := map[string]int{}
	for _, r := range rows[1:] {
		out[r[raw]]++
	}
	return out
}
