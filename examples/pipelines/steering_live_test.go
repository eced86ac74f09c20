package pipelines_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// liveSource is a csv source of a steering pipeline played through Kafka
// in a continuous run: the file's rows, sorted by their time column (the
// order they were recorded in), become JSON messages of one topic.
type liveSource struct {
	path    string // as in the pipeline file, e.g. academy/evaluations.csv
	timeCol string // the column whose order the messages follow; "": file order
	topic   string
}

// sourceBlock matches a csv source's options: its path line and its
// columns line.
var sourceBlock = regexp.MustCompile(`connector = "csv"\n\[source\.options\]\npath = "([^"]+)"\ncolumns = \{([^}]*)\}`)

// runLive turns the csv sources of the pipeline file toml (in dir) into
// Kafka sources reading to the end of their topic (the run is
// continuous: aggregates close their windows on the watermark), produces
// each file's rows to its topic in time order, writes the outputs under
// out_live/ and runs it. It returns the run's folder of outputs.
func runLive(t *testing.T, toml string, sources []liveSource) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topics := map[string]int32{}
	for _, s := range sources {
		topics[s.topic] = 1 // one partition: the messages keep their order
	}
	c := kafkatest.Start(t, kafkatest.Config{Topics: topics})
	b, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	dir := filepath.Dir(toml)
	brokers := c.BrokersTOML()
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, src := range sources {
		var types map[string]string
		for _, m := range sourceBlock.FindAllStringSubmatch(text, -1) {
			if m[1] != src.path {
				continue
			}
			types = map[string]string{}
			for _, kv := range strings.Split(m[2], ",") {
				k, v, _ := strings.Cut(kv, "=")
				types[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
			}
			text = strings.Replace(text, m[0], fmt.Sprintf("connector = \"kafka\"\n[source.options]\nbrokers = %s\ntopics = [%q]\nstop_at_end = true\ncolumns = {%s}", brokers, src.topic, m[2]), 1)
		}
		if types == nil {
			t.Fatalf("%s reads no csv %s", toml, src.path)
		}
		rows := readback.CSV(t, filepath.Join(dir, src.path))
		h := rows[0]
		tc := slices.Index(h, src.timeCol)
		body := rows[1:]
		key := func(r []string) time.Time {
			v, err := time.Parse(time.RFC3339, r[tc])
			if err != nil {
				v, err = time.Parse(time.DateOnly, r[tc])
			}
			if err != nil {
				t.Fatalf("%s: %s = %q", src.path, src.timeCol, r[tc])
			}
			return v
		}
		if tc >= 0 {
			slices.SortStableFunc(body, func(a, b []string) int { return key(a).Compare(key(b)) })
		}
		recs := make([]*kgo.Record, 0, len(body))
		for _, r := range body {
			m := map[string]any{}
			for i, name := range h {
				switch types[name] {
				case "":
				case "float64", "int64", "int32":
					v, err := strconv.ParseFloat(r[i], 64)
					if err != nil {
						t.Fatalf("%s: %s = %q", src.path, name, r[i])
					}
					m[name] = v
				case "bool":
					m[name] = r[i] == "true"
				default:
					m[name] = r[i]
				}
			}
			v, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: src.topic, Partition: 0, Value: v})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	text = strings.ReplaceAll(text, `"out/`, `"out_live/`)
	// Small batches, so that windows close one after the other as the
	// watermark moves, as they would on a day of entries.
	text = strings.Replace(text, "[pipeline]\n", "[pipeline]\nbatch_rows = 200\n", 1)
	live := filepath.Join(dir, "live_"+filepath.Base(toml))
	if err := os.WriteFile(live, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Run(t, live)
	return filepath.Join(dir, "out_live")
}

// sameTables checks that each file of batch has the same columns and the
// same rows, in any order, in live. Numbers agree to 1e-9 relative: a sum
// (and a mean) adds its values in arrival order, which differs between a
// file and its events replayed in time order, so its last bits may.
func sameTables(t *testing.T, batch, live string, files []string) {
	t.Helper()
	for _, f := range files {
		a, b := readback.CSV(t, filepath.Join(batch, f)), readback.CSV(t, filepath.Join(live, f))
		// Columns by name: a Kafka source orders its columns map by name,
		// a csv source by the file's header.
		if x, y := slices.Sorted(slices.Values(a[0])), slices.Sorted(slices.Values(b[0])); !slices.Equal(x, y) {
			t.Errorf("%s: columns %q in the continuous run, %q in the batch one", f, b[0], a[0])
			continue
		}
		at := make([]int, len(a[0]))
		for c, name := range a[0] {
			at[c] = slices.Index(b[0], name)
		}
		for i, r := range b {
			o := make([]string, len(r))
			for c := range o {
				o[c] = r[at[c]]
			}
			b[i] = o
		}
		if len(a) != len(b) {
			t.Errorf("%s: %d rows in the continuous run, %d in the batch one", f, len(b)-1, len(a)-1)
			continue
		}
		if len(a) == 1 {
			t.Errorf("%s: empty", f)
		}
		// The key of a row: its fields that are not fractional numbers.
		key := func(r []string) string {
			var k []string
			for _, v := range r {
				if !strings.Contains(v, ".") {
					k = append(k, v)
				}
			}
			return strings.Join(k, ",")
		}
		sortRows := func(rows [][]string) [][]string {
			out := slices.Clone(rows[1:])
			slices.SortFunc(out, func(x, y []string) int { return strings.Compare(key(x), key(y)) })
			return out
		}
		ra, rb := sortRows(a), sortRows(b)
		bad := 0
		for i := range ra {
			same := len(ra[i]) == len(rb[i])
			for c := 0; same && c < len(ra[i]); c++ {
				x, y := ra[i][c], rb[i][c]
				if x == y {
					continue
				}
				fx, ex := strconv.ParseFloat(x, 64)
				fy, ey := strconv.ParseFloat(y, 64)
				same = ex == nil && ey == nil && math.Abs(fx-fy) <= 1e-9*math.Max(math.Abs(fx), math.Abs(fy))
			}
			if !same && bad < 3 {
				t.Errorf("%s: batch row %q, continuous row %q", f, ra[i], rb[i])
				bad++
			}
		}
	}
}

// TestEvaluationsContinuous runs evaluations.toml in batch over the
// generated files, then continuously over the same results played through
// Kafka in the order classes entered them: every table is the same.
func TestEvaluationsContinuous(t *testing.T) {
	toml := sandbox(t, "evaluations.toml")
	dir := filepath.Dir(toml)
	generateEvaluations(t, dir)
	pipelinetest.Run(t, toml)
	live := runLive(t, toml, []liveSource{
		{"academy/evaluations.csv", "entered_at", "results"},
		{"academy/primary_evaluations.csv", "entered_at", "primary"},
	})
	var files []string
	for _, tb := range evalTables {
		files = append(files, tb.file)
	}
	sameTables(t, filepath.Join(dir, "out"), live, files)
	if dead, err := os.ReadFile(filepath.Join(live, "evaluations.dead_letter.csv")); err == nil && len(dead) > 0 {
		t.Errorf("dead letters in the continuous run:\n%.500s", dead)
	}
}

// TestResourcesContinuous runs resources.toml in batch, then continuously
// over the teacher absences and enrolments played through Kafka in date
// order (the projection too, as a topic read to its end): every table is
// the same, weekly windows closing on the watermark.
func TestResourcesContinuous(t *testing.T) {
	toml, dir := resourcesPipeline(t)
	pipelinetest.Run(t, toml)
	live := runLive(t, toml, []liveSource{
		{"academy/teacher_absences.csv", "date", "absences"},
		{"academy/enrolments.csv", "date", "enrolments"},
		{"academy/enrolment_projection.csv", "", "projection"},
	})
	sameTables(t, filepath.Join(dir, "out"), live, []string{"resources_school_week.csv", "resources_enrolment_week.csv", "resources_enrolment_to_date.csv", "resources_schools.csv"})
	if dead, err := os.ReadFile(filepath.Join(live, "resources.dead_letter.csv")); err == nil && len(dead) > 0 {
		t.Errorf("dead letters in the continuous run:\n%.500s", dead)
	}
}
